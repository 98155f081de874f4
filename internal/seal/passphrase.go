package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of a passphrase KEK. They
// are stored in the clear beside each ciphertext the KEK makes, with the
// salt, so the passphrase alone reopens it.
type Argon2Params struct {
	Time    uint32 // passes over memory
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon2Params follow the second recommendation of RFC 9106
// (t=3, m=64 MiB, p=4).
var DefaultArgon2Params = Argon2Params{Time: 3, Memory: 64 * 1024, Threads: 4}

// Bounds on parameters read from a ciphertext header: a crafted header must
// not make Decrypt allocate gigabytes or spin for minutes.
const (
	maxArgonTime   = 16
	maxArgonMemory = 1024 * 1024 // 1 GiB in KiB
	saltSize       = 16
	passHeaderSize = 1 + 4 + 4 + 1 + saltSize
	passVersion    = 1
)

func (p Argon2Params) validate() error {
	switch {
	case p.Time == 0 || p.Time > maxArgonTime:
		return fmt.Errorf("argon2id time %d out of range 1..%d", p.Time, maxArgonTime)
	case p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > maxArgonMemory:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.Memory, 8*uint32(max(p.Threads, 1)), maxArgonMemory)
	case p.Threads == 0:
		return errors.New("argon2id threads must be at least 1")
	}
	return nil
}

// PassphraseKEK derives an AES-256-GCM key from a passphrase with argon2id.
// Each ciphertext starts with a clear header (version, parameters, salt);
// the header is authenticated as part of the associated data. The derived
// key for the latest salt is cached, so only the first Encrypt and a
// Decrypt under a new salt pay for argon2id.
type PassphraseKEK struct {
	_          [0]func()
	passphrase []byte
	params     Argon2Params
	rand       io.Reader

	mu  sync.Mutex // guards enc, dec
	enc *derived   // key used for Encrypt, made on first use
	dec *derived   // last key derived for Decrypt
}

type derived struct {
	header []byte
	aead   *aesGCM
}

// NewPassphraseKEK returns a KEK from passphrase. A zero params means
// DefaultArgon2Params; rnd nil means crypto/rand. An empty passphrase is
// refused.
func NewPassphraseKEK(passphrase []byte, params Argon2Params, rnd io.Reader) (*PassphraseKEK, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("seal: passphrase KEK: empty passphrase")
	}
	if params == (Argon2Params{}) {
		params = DefaultArgon2Params
	}
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("seal: passphrase KEK: %v", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	return &PassphraseKEK{passphrase: bytes.Clone(passphrase), params: params, rand: rnd}, nil
}

// String never shows the passphrase.
func (k *PassphraseKEK) String() string { return "seal.PassphraseKEK(redacted)" }

// GoString is String.
func (k *PassphraseKEK) GoString() string { return k.String() }

func (k *PassphraseKEK) derive(p Argon2Params, salt []byte) (*derived, error) {
	h := make([]byte, 0, passHeaderSize)
	h = append(h, passVersion)
	h = binary.BigEndian.AppendUint32(h, p.Time)
	h = binary.BigEndian.AppendUint32(h, p.Memory)
	h = append(h, p.Threads)
	h = append(h, salt...)
	key := argon2.IDKey(k.passphrase, salt, p.Time, p.Memory, p.Threads, KEKKeySize)
	a, err := newAESGCM(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	return &derived{header: h, aead: a}, nil
}

// Encrypt wraps plaintext; the output is header || AES-GCM ciphertext.
func (k *PassphraseKEK) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	k.mu.Lock()
	d := k.enc
	if d == nil {
		salt := make([]byte, saltSize)
		if _, err := io.ReadFull(k.rand, salt); err != nil {
			k.mu.Unlock()
			return nil, fmt.Errorf("seal: passphrase KEK: reading randomness: %w", err)
		}
		var err error
		if d, err = k.derive(k.params, salt); err != nil {
			k.mu.Unlock()
			return nil, fmt.Errorf("seal: passphrase KEK: %w", err)
		}
		k.enc = d
	}
	k.mu.Unlock()
	ct, err := d.aead.Encrypt(plaintext, concatAD(d.header, associatedData))
	if err != nil {
		return nil, fmt.Errorf("seal: passphrase KEK: %w", err)
	}
	return append(bytes.Clone(d.header), ct...), nil
}

// Decrypt opens what Encrypt made with the same passphrase.
func (k *PassphraseKEK) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	if len(ciphertext) < passHeaderSize {
		return nil, errors.New("seal: passphrase KEK: ciphertext too short")
	}
	h := ciphertext[:passHeaderSize]
	if h[0] != passVersion {
		return nil, fmt.Errorf("seal: passphrase KEK: unknown header version %d", h[0])
	}
	p := Argon2Params{
		Time:    binary.BigEndian.Uint32(h[1:5]),
		Memory:  binary.BigEndian.Uint32(h[5:9]),
		Threads: h[9],
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("seal: passphrase KEK: header: %v", err)
	}
	k.mu.Lock()
	var d *derived
	switch {
	case k.enc != nil && bytes.Equal(k.enc.header, h):
		d = k.enc
	case k.dec != nil && bytes.Equal(k.dec.header, h):
		d = k.dec
	default:
		var err error
		if d, err = k.derive(p, h[10:]); err != nil {
			k.mu.Unlock()
			return nil, fmt.Errorf("seal: passphrase KEK: %w", err)
		}
	}
	k.mu.Unlock()
	pt, err := d.aead.Decrypt(ciphertext[passHeaderSize:], concatAD(d.header, associatedData))
	if err != nil {
		return nil, errors.New("seal: passphrase KEK: wrong passphrase or altered ciphertext")
	}
	k.mu.Lock()
	if d != k.enc {
		k.dec = d
	}
	k.mu.Unlock()
	return pt, nil
}

// concatAD joins the fixed-size header and the caller's associated data.
// The header's size is fixed, so the join is unambiguous.
func concatAD(header, ad []byte) []byte {
	out := make([]byte, 0, len(header)+len(ad))
	return append(append(out, header...), ad...)
}
