//go:build unix

package gateway

import (
	"errors"
	"syscall"
)

// socketAlive asks the kernel, without waiting, whether a socket's peer
// has closed it or sent bytes: ok is false when c is no socket.
func socketAlive(c syscall.Conn) (alive, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	var b [1]byte
	alive = true
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Bytes (n > 0), the peer's close (n == 0) or an error other
		// than "nothing yet": not a connection to send a request on.
		alive = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true
	})
	return alive && err == nil, true
}
