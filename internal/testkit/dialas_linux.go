package testkit

import (
	"net"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// DialAs connects to addr over network from a socket owned by uid, as a
// process of that uid would: the kernel takes a socket's owner from the
// creating thread's filesystem uid. It needs root (CAP_SETUID); the
// connection is closed when the test ends.
func DialAs(t testing.TB, uid int, network, addr string) net.Conn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := unix.SetfsuidRetUid(uid)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout(network, addr, WaitLimit)
	_, _ = unix.SetfsuidRetUid(prev)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
