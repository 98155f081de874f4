package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// KEK is a key-encryption key: it wraps the keyring's data keys and the key
// of each backup. It has the shape of tink.AEAD, so any Tink AEAD, including
// one from a tink-go KMS client (Google Cloud KMS, AWS KMS, HashiCorp Vault
// Transit), is a KEK as it stands; see the package documentation.
//
// Implementations must be safe for concurrent use, and Decrypt must fail
// (never return garbage) on a ciphertext from another key.
type KEK interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// KEKKeySize is the size in bytes of a raw KEK (AES-256).
const KEKKeySize = 32

// rawKEK is a KEK holding an AES-256-GCM key in memory. It cannot be
// compared with == and prints as redacted.
type rawKEK struct {
	_    [0]func()
	name string // where the key came from, for messages; never key material
	aead *aesGCM
}

func newRawKEK(name string, key []byte) (*rawKEK, error) {
	if len(key) != KEKKeySize {
		return nil, fmt.Errorf("seal: KEK from %s: want %d key bytes, got %d", name, KEKKeySize, len(key))
	}
	a, err := newAESGCM(key)
	if err != nil {
		return nil, fmt.Errorf("seal: KEK from %s: %w", name, err)
	}
	return &rawKEK{name: name, aead: a}, nil
}

func (k *rawKEK) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return k.aead.Encrypt(plaintext, associatedData)
}

func (k *rawKEK) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	return k.aead.Decrypt(ciphertext, associatedData)
}

// String names the key's origin and never its bytes.
func (k *rawKEK) String() string { return "seal.KEK(" + k.name + ")" }

// GoString is String, so %#v does not print key material either.
func (k *rawKEK) GoString() string { return k.String() }

// EncodeKEKKey renders a raw KEK as the text held by a key file or an
// environment variable: standard base64 of 32 bytes.
func EncodeKEKKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// decodeKEKKey parses the text of a key file or environment variable.
func decodeKEKKey(text string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(b) != KEKKeySize {
		return nil, fmt.Errorf("want %d bytes, got %d", KEKKeySize, len(b))
	}
	return b, nil
}

// GenerateKeyFile creates path holding a fresh random KEK, mode 0600. It
// refuses to overwrite an existing file. rand nil means crypto/rand.
func GenerateKeyFile(path string, rnd io.Reader) (KEK, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	key := make([]byte, KEKKeySize)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return nil, fmt.Errorf("seal: key file %q: reading randomness: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %q: %w", path, err)
	}
	_, err = io.WriteString(f, EncodeKEKKey(key)+"\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("seal: key file %q: %w", path, err)
	}
	if err := syncDir(parentDir(path)); err != nil {
		return nil, fmt.Errorf("seal: key file %q: %w", path, err)
	}
	return newRawKEK(fmt.Sprintf("key file %q", path), key)
}

// OpenKeyFile loads a KEK from a key file written by GenerateKeyFile. It
// fails closed on a file that group or others may access (ErrKeyFileMode),
// on a symlink, and on content that is not one base64 key of 32 bytes.
func OpenKeyFile(path string) (KEK, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: key file %q: not a regular file (%s)", path, fi.Mode().Type())
	}
	if err := CheckPrivateMode(path, fi); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seal: key file %q: %w", path, err)
	}
	key, err := decodeKEKKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("seal: key file %q: %v", path, err)
	}
	return newRawKEK(fmt.Sprintf("key file %q", path), key)
}

// CheckPrivateMode refuses the file at path, described by fi, when group
// or others may access it (ErrKeyFileMode), as ssh(1) refuses such a
// private key: whoever else may read it holds what it keeps. Where files
// have no such modes (Windows), it refuses nothing.
func CheckPrivateMode(path string, fi fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %04o, which other local users may read: %w", path, perm, ErrKeyFileMode)
	}
	return nil
}

// EnvKEK loads a KEK from the environment variable name, which holds what
// EncodeKEKKey returns. lookup nil means os.LookupEnv. An unset or empty
// variable is an error: there is no default key.
func EnvKEK(name string, lookup func(string) (string, bool)) (KEK, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, fmt.Errorf("seal: KEK environment variable %q is not set", name)
	}
	key, err := decodeKEKKey(v)
	if err != nil {
		return nil, fmt.Errorf("seal: KEK environment variable %q: %v", name, err)
	}
	return newRawKEK(fmt.Sprintf("environment variable %q", name), key)
}

// isNotExist reports a missing file, for callers that create on absence.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
