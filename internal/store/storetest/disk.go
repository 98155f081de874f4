package storetest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SmallDisk mounts a tmpfs of size bytes on a fresh directory, unmounted
// when the test ends, so that a test can fill a real file system and free
// it again. Mounting needs root (CI runs tests as root); without it the
// test fails saying so.
func SmallDisk(tb testing.TB, size int64) string {
	tb.Helper()
	dir := tb.TempDir()
	MountSmallDisk(tb, dir, size)
	return dir
}

// Fill writes a file in dir until the file system is full and returns a
// function that deletes it, giving the space back.
func Fill(tb testing.TB, dir string) (free func()) {
	tb.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		tb.Fatalf("fill %s: %v", dir, err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				tb.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	// Whatever partial block is left goes too.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(p); err != nil {
			tb.Fatalf("free %s: %v", dir, err)
		}
	}
}
