package egress

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// idleSince returns how long ago c's socket last sent or received data,
// as the kernel counts it (TCP_INFO's tcpi_last_data_sent and
// tcpi_last_data_recv, in milliseconds); nil when c is no TCP socket.
func idleSince(c net.Conn) func() (time.Duration, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	get := func() (time.Duration, bool) {
		var info *unix.TCPInfo
		var ierr error
		if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
			return 0, false
		}
		return time.Duration(min(info.Last_data_sent, info.Last_data_recv)) * time.Millisecond, true
	}
	if _, ok := get(); !ok {
		return nil
	}
	return get
}
