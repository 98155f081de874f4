package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerUID returns the uid owning the socket at the other end of c, an
// accepted TCP connection from a local process. It asks the kernel's
// socket diagnostics (NETLINK_SOCK_DIAG, an exact lookup by the 4-tuple,
// as ss does), which report the uid that created the socket. A connection
// whose peer socket is gone or closing (no owner any more) is refused.
func peerUID(c net.Conn) (int, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, errors.New("mesh: peer uid: not a TCP connection")
	}
	// The peer socket's own view: its source is our remote end.
	return sockDiagUID(remote, local)
}

// inet_diag_req_v2 and inet_diag_msg, from linux/inet_diag.h.
const (
	inetDiagReqLen = 56
	inetDiagMsgLen = 72
	uidOffset      = 64 // idiag_uid in inet_diag_msg
	tcpTimeWait    = 6
	tcpClose       = 7
)

func sockDiagUID(src, dst *net.TCPAddr) (int, error) {
	family, srcIP, dstIP := unix.AF_INET, src.IP.To4(), dst.IP.To4()
	if srcIP == nil || dstIP == nil {
		family, srcIP, dstIP = unix.AF_INET6, src.IP.To16(), dst.IP.To16()
	}
	if srcIP == nil || dstIP == nil {
		return 0, fmt.Errorf("mesh: peer uid: bad addresses %v → %v", src, dst)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("mesh: peer uid: netlink: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 2}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	msg := make([]byte, unix.NLMSG_HDRLEN+inetDiagReqLen)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST) // an exact lookup, not a dump
	binary.NativeEndian.PutUint32(msg[8:], 1)
	req := msg[unix.NLMSG_HDRLEN:]
	req[0], req[1] = byte(family), unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(req[4:], 0xffffffff) // every state
	id := req[8:]
	binary.BigEndian.PutUint16(id[0:], uint16(src.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(dst.Port))
	copy(id[4:20], srcIP)
	copy(id[20:36], dstIP)
	binary.NativeEndian.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(id[44:], 0xffffffff)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("mesh: peer uid: netlink send: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("mesh: peer uid: netlink receive: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 {
		return 0, fmt.Errorf("mesh: peer uid: netlink answer: %v", err)
	}
	m := msgs[0]
	switch m.Header.Type {
	case unix.NLMSG_ERROR:
		if len(m.Data) >= 4 {
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return 0, fmt.Errorf("mesh: peer uid: no such socket: %w", unix.Errno(-errno))
			}
		}
		return 0, errors.New("mesh: peer uid: netlink error")
	case unix.SOCK_DIAG_BY_FAMILY:
	default:
		return 0, fmt.Errorf("mesh: peer uid: netlink message type %d", m.Header.Type)
	}
	if len(m.Data) < inetDiagMsgLen {
		return 0, errors.New("mesh: peer uid: short netlink answer")
	}
	if st := m.Data[1]; st == tcpTimeWait || st == tcpClose {
		return 0, errors.New("mesh: peer uid: the peer socket is closed")
	}
	return int(binary.NativeEndian.Uint32(m.Data[uidOffset:])), nil
}
