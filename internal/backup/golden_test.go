package backup

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"moat/internal/seal"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/backup.moatbak")

// sealGolden holds the KEK, keyring and record package seal's golden test
// keeps; the golden backup holds the keyring and the record.
var sealGolden = filepath.Join("..", "seal", "testdata", "golden")

// TestGoldenBackup restores a backup written by an earlier version of this
// package: the format must stay readable. Run with -update to write a new
// one (only when a format change is intended, with a migration).
func TestGoldenBackup(t *testing.T) {
	golden := filepath.Join("testdata", "golden", "backup.moatbak")
	kekPath := filepath.Join(sealGolden, "kek")
	// git does not keep modes: the key file must be private to open.
	if err := os.Chmod(kekPath, 0o600); err != nil {
		t.Fatal(err)
	}
	kek, err := seal.OpenKeyFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		var buf bytes.Buffer
		if _, err := Write(&buf, Config{KEK: kek, Now: newClock(), Items: []Item{
			{Name: seal.KeyringFile, Path: filepath.Join(sealGolden, seal.KeyringFile)},
			{Name: "record.bin", Path: filepath.Join(sealGolden, "record.bin")},
		}}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	bk, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "r")
	m, err := Restore(bytes.NewReader(bk), kek, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 {
		t.Fatalf("golden manifest: %+v", m)
	}
	for _, name := range []string{seal.KeyringFile, "record.bin"} {
		got, _ := os.ReadFile(filepath.Join(dst, name))
		want, _ := os.ReadFile(filepath.Join(sealGolden, name))
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Fatalf("golden backup restored other bytes for %s", name)
		}
	}
	// The restored keyring opens the restored record.
	k, err := seal.Open(seal.Config{Dir: dst, KEK: kek, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := os.ReadFile(filepath.Join(dst, "record.bin"))
	if pt, err := k.AEAD().Decrypt(ct, []byte("golden/1")); err != nil || string(pt) != "golden record" {
		t.Fatalf("restored record: %q, %v", pt, err)
	}
}

// TestBackupHoldsNoPlaintext backs up a directory holding secrets in the
// clear and scans every byte of the backup for them.
func TestBackupHoldsNoPlaintext(t *testing.T) {
	secrets := map[string][]byte{
		"join token":  []byte("moatjoin.c2VjcmV0LWpvaW4tdG9rZW4tMTIzNDU2"),
		"body marker": []byte("MARKER-7f3a9c1e-body"),
	}
	dir := t.TempDir()
	for label, s := range secrets {
		if err := os.WriteFile(filepath.Join(dir, label), bytes.Repeat(s, 100), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "b.moatbak")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(f, Config{KEK: testKEK(t, 2), Items: []Item{{Name: "data", Path: dir}}}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The scan can fail: it finds the secrets in the source directory.
	if found, err := seal.ScanPlaintext(secrets, dir); err != nil || len(found) == 0 {
		t.Fatalf("the scan found nothing in the clear source: %v", err)
	}
	found, err := seal.ScanPlaintext(secrets, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s found in the clear (%s) in the backup at %d", f.Secret, f.Form, f.Offset)
	}
}
