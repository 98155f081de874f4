//go:build !linux

package storetest

import "testing"

// MountSmallDisk fails: tmpfs mounts are Linux's, where CI runs the tests
// that fill a disk.
func MountSmallDisk(tb testing.TB, dir string, size int64) {
	tb.Helper()
	tb.Fatalf("mount a %d-byte tmpfs on %s: tmpfs mounts need Linux", size, dir)
}
