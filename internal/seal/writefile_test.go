package seal

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "creds.pem")
	if err := WriteFileAtomic(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("read back %q, %v; want \"two\"", b, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the file (no temporaries)", len(ents))
	}
	// A write that cannot happen leaves nothing: here the parent is a file.
	f := filepath.Join(dir, "creds.pem")
	if err := WriteFileAtomic(filepath.Join(f, "child"), []byte("x"), 0o600); err == nil {
		t.Fatal("a write under a regular file succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q after a failed write, want \"two\"", b)
	}
}
