package seal

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzKeyring is a keyring with two data keys, so ciphertexts under an
// old and a new key are both in the corpus.
func fuzzKeyring(f *testing.F) (*Keyring, [][]byte) {
	k, err := Open(Config{Dir: f.TempDir(), KEK: testKEK(f, 1), Now: newClock().Now})
	if err != nil {
		f.Fatal(err)
	}
	a := k.AEAD()
	old, _ := a.Encrypt([]byte("under key one"), []byte("rec/1"))
	if _, err := k.Rotate(); err != nil {
		f.Fatal(err)
	}
	cur, _ := a.Encrypt([]byte("under key two"), []byte("rec/2"))
	empty, _ := a.Encrypt(nil, nil)
	return k, [][]byte{old, cur, empty}
}

// FuzzEnvelopeDecrypt: Decrypt on arbitrary bytes never panics and fails
// with ErrOpen unless the bytes are a real ciphertext for that record; every
// plaintext round-trips.
func FuzzEnvelopeDecrypt(f *testing.F) {
	k, seeds := fuzzKeyring(f)
	for _, s := range seeds {
		f.Add(s, []byte("rec/1"), []byte("pt"))
		f.Add(s[:len(s)/2], []byte("rec/2"), []byte(""))
	}
	f.Add([]byte{1, 0, 0, 0, 0}, []byte{}, []byte("x"))
	f.Add([]byte{}, []byte{}, []byte{})
	a := k.AEAD()
	f.Fuzz(func(t *testing.T, ct, ad, pt []byte) {
		out, err := a.Decrypt(ct, ad)
		if err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("Decrypt error %v is not ErrOpen", err)
		}
		if err == nil {
			// Only an authentic ciphertext opens; reseal and compare.
			again, err := a.Encrypt(out, ad)
			if err != nil {
				t.Fatal(err)
			}
			if back, err := a.Decrypt(again, ad); err != nil || !bytes.Equal(back, out) {
				t.Fatalf("reseal does not round-trip: %v", err)
			}
		}
		sealed, err := a.Encrypt(pt, ad)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := KeyID(sealed); err != nil || id != k.Primary() {
			t.Fatalf("KeyID = %d, %v; primary %d", id, err, k.Primary())
		}
		back, err := a.Decrypt(sealed, ad)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := a.Decrypt(sealed, append(bytes.Clone(ad), 0)); !errors.Is(err, ErrOpen) {
			t.Fatalf("opened with other associated data: %v", err)
		}
	})
}
