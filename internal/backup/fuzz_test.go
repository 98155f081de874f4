package backup

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"moat/internal/seal"
)

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
	want, err := Write(&buf, Config{KEK: kek, Items: []Item{
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
		m, err := Verify(bytes.NewReader(b), kek)
		// The fuzz workers each write their own backup (fresh stream key),
		// so compare contents, not bytes: whatever verifies holds exactly
		// the files written.
		if err == nil && !reflect.DeepEqual(m.Files, want.Files) {
			t.Fatalf("a backup with other contents verified: %+v", m.Files)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, seal.ErrWrongKEK) {
			t.Fatalf("error %v is neither ErrCorrupt nor seal.ErrWrongKEK", err)
		}
	})
}
