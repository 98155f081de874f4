//go:build linux

package testkit

import (
	"os"
	"syscall"
	"testing"
)

// LimitOpenFiles lowers the process's limit on open files to those open
// now plus room, so that a test can show what a flood of connections does
// to a process out of descriptors. It returns a function that restores
// the limit (any number of times), which also runs when the test ends.
// Tests that call it must not run in parallel with others.
func LimitOpenFiles(tb testing.TB, room int) (restore func()) {
	tb.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		tb.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds) + room)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		tb.Fatal(err)
	}
	restored := false
	restore = func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				tb.Fatal(err)
			}
		}
	}
	tb.Cleanup(restore)
	return restore
}
