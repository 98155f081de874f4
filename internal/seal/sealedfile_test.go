package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestSealedFile(t *testing.T) {
	dir := t.TempDir()
	k := openTest(t, dir, testKEK(t, 1), newClock())
	a := k.AEAD()
	path := filepath.Join(dir, "root.key")
	if err := WriteSealedFile(path, a, "ca/root.key", []byte(testPEM)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	got, err := ReadSealedFile(path, a, "ca/root.key")
	if err != nil || string(got) != testPEM {
		t.Fatalf("read back: %v", err)
	}
	if _, err := ReadSealedFile(path, a, "ca/intermediate.key"); !errors.Is(err, ErrOpen) {
		t.Fatalf("read under another name: %v", err)
	}
}

// TestPlaintextScan seals secrets the way moat's writers do (store values,
// a key file; internal/backup checks backups) and scans every byte of the directory for them.
func TestPlaintextScan(t *testing.T) {
	secrets := map[string][]byte{
		"private key": []byte(testPEM),
		"join token":  []byte("moatjoin.c2VjcmV0LWpvaW4tdG9rZW4tMTIzNDU2"),
		"auth header": []byte("Bearer sk-live-0123456789abcdef"),
		"body marker": []byte("MARKER-7f3a9c1e-body"),
	}
	dir := t.TempDir()
	k := openTest(t, dir, testKEK(t, 1), newClock())
	a := k.AEAD()
	db := openBolt(t, filepath.Join(dir, "store.db"))
	err := db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists([]byte("kv"))
		for label, s := range secrets {
			ct, err := a.Encrypt(s, []byte(label))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(label), ct); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteSealedFile(filepath.Join(dir, "node.key"), a, "node.key", secrets["private key"]); err != nil {
		t.Fatal(err)
	}
	findings, err := ScanPlaintext(secrets, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s found in the clear (%s) in %s at %d", f.Secret, f.Form, f.Path, f.Offset)
	}

	// The scanner itself finds each form at any alignment.
	leak := t.TempDir()
	s := secrets["body marker"]
	for i, content := range [][]byte{
		append([]byte("xx"), s...),
		[]byte(hex.EncodeToString(s)),
		[]byte(base64.StdEncoding.EncodeToString(append([]byte("a"), s...))),
		[]byte(base64.RawURLEncoding.EncodeToString(append([]byte("ab"), s...))),
		[]byte(base64.StdEncoding.EncodeToString(append([]byte("abc"), s...))),
	} {
		p := filepath.Join(leak, string(rune('a'+i)))
		os.WriteFile(p, append(bytes.Repeat([]byte{0}, i), content...), 0o600)
	}
	findings, err = ScanPlaintext(map[string][]byte{"m": s}, leak)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range findings {
		files[filepath.Base(f.Path)] = true
	}
	if len(files) != 5 {
		t.Fatalf("scanner found the marker in %d of 5 files: %+v", len(files), findings)
	}
	if _, err := ScanPlaintext(map[string][]byte{"short": []byte("abc")}, leak); err == nil {
		t.Fatal("short secret accepted")
	}
}
