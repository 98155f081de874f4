package mesh

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// probeAfter bounds how long fromSocket waits on the poller alone after
// reads that left the socket empty; see fromSocket.
const probeAfter = time.Second

// fromSocket copies an app's TCP connection into a tunnel's stream without
// the read that finds the socket empty after each message. Go's own Read
// asks the kernel once more after every message, learns that nothing is
// waiting and only then waits for the poller: under request/response
// traffic that is a system call per message for nothing, a third of those
// an agent makes on an app's socket. Here each read also returns how much
// the socket still holds (TCP_INQ, which counts a received FIN as more to
// read); when that is nothing, the copy writes what it read to the stream
// and waits for the poller straight away. Everything that arrives after a
// read is announced by the poller after it, and one wait (RawConn.Read)
// spans all the reads, so no announcement is lost between them. One thing
// is not counted: an error (a reset) that arrived with the last data and
// was announced with it. So a wait that follows such reads lasts at most
// probeAfter; then the copy reads once as Go does, and waits without a
// bound if that read finds nothing. The copy takes its buffer when the
// poller calls it to read, and gives it back when the socket is empty.
//
// Only a stream is written from inside the wait: closing the socket (an
// agent's listener going, the agent stopping) waits for the copy to leave
// it, and a stream's write, blocked for want of window, is ended by closing
// the stream, which those who close the socket do first (see
// Mesh.closeStreamFirst). ok is false when src or dst is of another kind,
// or the kernel counts nothing: the caller copies as usual.
func (c *copier) fromSocket(src net.Conn) (rerr, werr error, ok bool) {
	tc, isTCP := src.(*net.TCPConn)
	if !isTCP || !isTunnelStream(c.dst) {
		return nil, nil, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_INQ, 1)
	}); err != nil || serr != nil {
		return nil, nil, false
	}
	r := &c.sock
	if r.probe == 0 {
		r.probe = probeAfter
	}
	for {
		probing := false
		err = rc.Read(func(fd uintptr) bool {
			for {
				if c.bp == nil {
					c.take()
				}
				nr, more, err := r.read(int(fd), *c.bp)
				switch {
				case err == unix.EINTR:
					continue
				case err == unix.EAGAIN:
					r.empty++
					c.drop()
					return false
				case err != nil:
					rerr = os.NewSyscallError("recvmsg", err)
					return true
				case nr == 0:
					rerr = io.EOF
					return true
				}
				if werr = c.deliver(nr); werr != nil {
					return true
				}
				if !more {
					c.drop()
					if !probing {
						probing = true
						_ = tc.SetReadDeadline(time.Now().Add(r.probe))
					}
					return false
				}
			}
		})
		if rerr != nil || werr != nil {
			return rerr, werr, true
		}
		if !probing || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err, nil, true // the socket closed
		}
		_ = tc.SetReadDeadline(time.Time{})
	}
}

// socketReader reads a socket with TCP_INQ set, learning with each read
// what the socket still holds; it allocates nothing per read.
type socketReader struct {
	msg   unix.Msghdr
	iov   unix.Iovec
	oob   [unix.SizeofCmsghdr + 8]byte
	probe time.Duration // probeAfter, unless a test sets it
	reads int           // system calls made
	empty int           // of them, those that found nothing
}

// read reads into p; more reports whether the socket holds more to read
// (data, or a FIN), or whether the kernel did not say.
func (r *socketReader) read(fd int, p []byte) (n int, more bool, err error) {
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	r.msg.Control = &r.oob[0]
	r.msg.SetControllen(len(r.oob))
	r.msg.Flags = 0
	r.reads++
	nr, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msg)), 0)
	if errno != 0 {
		return 0, false, errno
	}
	more = true
	if r.msg.Controllen >= unix.SizeofCmsghdr+4 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&r.oob[0]))
		if h.Level == unix.IPPROTO_TCP && h.Type == unix.TCP_CM_INQ {
			more = *(*int32)(unsafe.Pointer(&r.oob[unix.SizeofCmsghdr])) != 0
		}
	}
	return int(nr), more, nil
}
