package seal

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
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

// FuzzReadBackup: reading arbitrary bytes as a backup never panics, and
// nothing but the backup as written verifies.
func FuzzReadBackup(f *testing.F) {
	kek := testKEK(f, 5)
	var buf bytes.Buffer
	snap := []byte("store snapshot")
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("file a"), 0o600); err != nil {
		f.Fatal(err)
	}
	want, err := WriteBackup(&buf, BackupConfig{KEK: kek, Items: []BackupItem{
		{Name: "store.db", Size: int64(len(snap)), WriteTo: func(w io.Writer) (int64, error) {
			n, err := w.Write(snap)
			return int64(n), err
		}},
		{Name: "files", Path: dir},
	}})
	if err != nil {
		f.Fatal(err)
	}
	good := bytes.Clone(buf.Bytes())
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:len(backupMagic)+4])
	f.Add([]byte(backupMagic + "\x00\x00\x00\x01x"))
	flipped := bytes.Clone(good)
	flipped[len(flipped)-20] ^= 1
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := VerifyBackup(bytes.NewReader(b), kek)
		// The fuzz workers each write their own backup (fresh stream key),
		// so compare contents, not bytes: whatever verifies holds exactly
		// the files written.
		if err == nil && !reflect.DeepEqual(m.Files, want.Files) {
			t.Fatalf("a backup with other contents verified: %+v", m.Files)
		}
		if err != nil && !errors.Is(err, ErrBackup) && !errors.Is(err, ErrWrongKEK) {
			t.Fatalf("error %v is neither ErrBackup nor ErrWrongKEK", err)
		}
	})
}
