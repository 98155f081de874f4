package storetest

import (
	"errors"
	"fmt"
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

// MountSmallDisk mounts a tmpfs of size bytes on dir (an empty directory),
// unmounted when the test ends; see SmallDisk.
func MountSmallDisk(tb testing.TB, dir string, size int64) {
	tb.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		tb.Fatalf("mount a %d-byte tmpfs on %s (this test needs root, as CI runs it): %v", size, dir, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
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
