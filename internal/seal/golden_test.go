package seal

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGoldenFormats opens a keyring and a record written by an
// earlier version of this package: the on-disk formats must stay readable.
// Run with -update to write new golden files (only when a format change is
// intended, together with a migration for existing files).
func TestGoldenFormats(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	kekPath := filepath.Join(dir, "kek")
	const recordAD, recordPT = "golden/1", "golden record"
	if *update {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		kek, err := GenerateKeyFile(kekPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := Open(Config{Dir: dir, KEK: kek, Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		ct, err := k.AEAD().Encrypt([]byte(recordPT), []byte(recordAD))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "record.bin"), ct, 0o644)
	}
	// git does not keep modes: the key file must be private to open.
	if err := os.Chmod(kekPath, 0o600); err != nil {
		t.Fatal(err)
	}
	kek, err := OpenKeyFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Open(Config{Dir: dir, KEK: kek, NoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := os.ReadFile(filepath.Join(dir, "record.bin"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := k.AEAD().Decrypt(ct, []byte(recordAD))
	if err != nil || string(pt) != recordPT {
		t.Fatalf("golden record: %q, %v", pt, err)
	}
	if id, _ := KeyID(ct); id != k.Primary() {
		t.Fatalf("golden record under key %d, primary %d", id, k.Primary())
	}
}
