package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
)

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
)

// aesGCM is AES-GCM laid out as Tink's AES-GCM lays it out: a random
// 12-byte nonce, then the ciphertext with its 16-byte tag. The raw KEK,
// the passphrase KEK and each data key of the keyring use it, so files
// written by the Tink-based versions of this package still open.
type aesGCM struct{ aead cipher.AEAD }

func newAESGCM(key []byte) (*aesGCM, error) {
	if len(key) != 16 && len(key) != 32 {
		return nil, errors.New("AES-GCM key must be 16 or 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &aesGCM{aead: a}, nil
}

// seal appends nonce, ciphertext and tag to dst.
func (g *aesGCM) seal(dst, plaintext, associatedData []byte) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, gcmNonceSize)...)
	nonce := dst[n:]
	rand.Read(nonce) // never fails (crypto/rand)
	return g.aead.Seal(dst, nonce, plaintext, associatedData)
}

func (g *aesGCM) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return g.seal(make([]byte, 0, gcmNonceSize+len(plaintext)+gcmTagSize), plaintext, associatedData), nil
}

func (g *aesGCM) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	if len(ciphertext) < gcmNonceSize+gcmTagSize {
		return nil, errors.New("ciphertext too short")
	}
	return g.aead.Open(nil, ciphertext[:gcmNonceSize], ciphertext[gcmNonceSize:], associatedData)
}
