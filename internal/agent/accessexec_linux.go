package agent

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// procAckTimeout bounds the wait for the kernel's answer to the
// subscription: outside the initial user and PID namespaces it never
// answers.
const procAckTimeout = 2 * time.Second

// procRecvTimeout is how long one read waits, so that the reader sees
// Close in time.
const procRecvTimeout = 200 * time.Millisecond

// procConn is a proc connector socket, read with blocking reads rather
// than through Go's poller: a program that runs for a millisecond is gone
// before a read woken by the poller gets to its arguments.
type procConn struct {
	fd     int
	buf    []byte
	closed atomic.Bool
	locked bool
}

// openProcEvents subscribes to the kernel's process events and waits for
// the kernel to accept.
func openProcEvents() (procSource, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("the kernel's process events: socket: %v", err)
	}
	// Room for bursts: a busy node forks and exits all the time, and
	// every process's events come here while a session runs.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	tv := unix.NsecToTimeval(procRecvTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("the kernel's process events: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EPERM) {
			return nil, errors.New("the kernel's process events take CAP_NET_ADMIN, which the agent lacks")
		}
		return nil, fmt.Errorf("the kernel's process events: bind: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	nl, ok := sa.(*unix.SockaddrNetlink)
	if err != nil || !ok {
		unix.Close(fd)
		return nil, fmt.Errorf("the kernel's process events: getsockname: %v", err)
	}
	var r [4]byte
	_, _ = rand.Read(r[:])
	ack := binary.NativeEndian.Uint32(r[:]) >> 1 // ack+1 does not wrap
	if err := unix.Sendto(fd, procListenMsg(nl.Pid, 1, ack), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("the kernel's process events: subscribe: %v", err)
	}
	c := &procConn{fd: fd, buf: make([]byte, 64<<10)}
	deadline := time.Now().Add(procAckTimeout)
	for time.Now().Before(deadline) {
		evs, err := c.read()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, errProcLost) {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		for _, ev := range evs {
			if ev.Kind == procEventNone && ev.Ack == ack+1 {
				if ev.Err != 0 {
					unix.Close(fd)
					return nil, fmt.Errorf("the kernel refused the subscription to its process events: %v", unix.Errno(ev.Err))
				}
				return c, nil
			}
		}
	}
	unix.Close(fd)
	return nil, errors.New("the kernel did not answer the subscription to its process events (the agent may run outside the initial namespaces)")
}

// next reads the next datagram on the calling goroutine's own thread; the
// socket is closed here once Close was called, so that no read ever finds
// another file under its number.
func (c *procConn) next() ([]procEvent, error) {
	if !c.locked {
		runtime.LockOSThread()
		c.locked = true
	}
	for {
		if c.closed.Load() {
			unix.Close(c.fd)
			runtime.UnlockOSThread()
			return nil, errors.New("closed")
		}
		evs, err := c.read()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		return evs, err
	}
}

// read reads one datagram. One not from the kernel (any process may send
// to a netlink socket's port) is skipped.
func (c *procConn) read() ([]procEvent, error) {
	n, from, err := unix.Recvfrom(c.fd, c.buf, 0)
	if errors.Is(err, unix.ENOBUFS) {
		return nil, fmt.Errorf("%w (ENOBUFS: the kernel's events overran the agent's buffer)", errProcLost)
	}
	if err != nil {
		return nil, err
	}
	if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
		return nil, unix.EAGAIN
	}
	evs, err := parseProcEvents(c.buf[:n])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errProcLost, err)
	}
	return evs, nil
}

// Close asks the reader to close the socket.
func (c *procConn) Close() error {
	c.closed.Store(true)
	return nil
}
