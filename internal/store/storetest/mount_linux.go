package storetest

import (
	"fmt"
	"syscall"
	"testing"
)

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
