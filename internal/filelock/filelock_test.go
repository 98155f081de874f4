package filelock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func open(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Two handles of one lock file behave as two processes would.
func TestFlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, b := open(t, path), open(t, path)
	if err := Flock(a, Exclusive); err != nil {
		t.Fatal(err)
	}
	if err := Flock(b, Exclusive|NonBlocking); !errors.Is(err, ErrLocked) {
		t.Fatalf("second exclusive lock: %v, want ErrLocked", err)
	}
	if err := Flock(b, Shared|NonBlocking); !errors.Is(err, ErrLocked) {
		t.Fatalf("shared lock under an exclusive one: %v, want ErrLocked", err)
	}
	if err := Flock(a, Unlock); err != nil {
		t.Fatal(err)
	}
	if err := Flock(a, Shared); err != nil {
		t.Fatal(err)
	}
	if err := Flock(b, Shared|NonBlocking); err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	if err := Flock(a, 0); err == nil {
		t.Fatal("a lock with no kind was taken")
	}
}
