package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// inet_diag_req_v2 and inet_diag_msg, from linux/inet_diag.h.
const (
	reqLen      = 56
	msgLen      = 72
	msgSrc      = 8  // idiag_src in inet_diag_msg
	msgUID      = 64 // idiag_uid in inet_diag_msg
	tcpTimeWait = 6
	tcpClose    = 7
	tcpListen   = 10
)

// PeerUID returns the uid owning the socket at the other end of c, an
// accepted TCP connection from a local process: an exact lookup by the
// connection's addresses and ports. A connection whose peer socket is
// gone or closing (no owner any more) is an error.
func PeerUID(c net.Conn) (int, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, errors.New("peer uid: not a TCP connection")
	}
	// The peer socket's own view: its source is our remote end.
	src, dst := remote.AddrPort(), local.AddrPort()
	family := unix.AF_INET
	if !src.Addr().Unmap().Is4() || !dst.Addr().Unmap().Is4() {
		family = unix.AF_INET6
	}
	var uid int
	found := false
	err := ask(family, unix.IPPROTO_TCP, false, func(id []byte) {
		binary.BigEndian.PutUint16(id[0:], src.Port())
		binary.BigEndian.PutUint16(id[2:], dst.Port())
		putAddr(id[4:20], src.Addr(), family)
		putAddr(id[20:36], dst.Addr(), family)
		binary.NativeEndian.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
		binary.NativeEndian.PutUint32(id[44:], 0xffffffff)
	}, func(d []byte) error {
		if st := d[1]; st == tcpTimeWait || st == tcpClose {
			return errors.New("peer uid: the peer socket is closed")
		}
		uid, found = int(binary.NativeEndian.Uint32(d[msgUID:])), true
		return nil
	})
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, errors.New("peer uid: no answer")
	}
	return uid, nil
}

// Owner returns the uid owning the local socket a datagram or connection
// came from: over network ("udp" or "tcp"), with from as the socket's own
// address and port. It asks for the sockets of that protocol on from's
// port and takes the one bound to from's address (or, over UDP, to every
// address). ok is false when there is none, or sockets of two owners
// match: a socket of another network namespace (a container's), or one
// closed since.
func Owner(network string, from netip.AddrPort) (uid int, ok bool) {
	proto := byte(unix.IPPROTO_UDP)
	if network == "tcp" {
		proto = unix.IPPROTO_TCP
	}
	addr := from.Addr().Unmap()
	if addr.Is4() {
		if uid, ok, found := dumpOwner(unix.AF_INET, proto, from.Port(), addr); found {
			return uid, ok
		}
		addr = netip.AddrFrom16(addr.As16()) // a dual-stack socket's view
	}
	uid, ok, _ = dumpOwner(unix.AF_INET6, proto, from.Port(), addr)
	return uid, ok
}

// dumpOwner asks for the sockets of family and proto on port, and returns
// the owner of those bound to addr, else of those bound to every address
// (UDP); found says whether any was.
func dumpOwner(family int, proto byte, port uint16, addr netip.Addr) (uid int, ok, found bool) {
	exact, wild := map[int]bool{}, map[int]bool{}
	err := ask(family, proto, true, func(id []byte) {
		binary.BigEndian.PutUint16(id[0:], port) // idiag_sport
	}, func(d []byte) error {
		if binary.BigEndian.Uint16(d[4:]) != port {
			return nil
		}
		if proto == unix.IPPROTO_TCP && (d[1] == tcpTimeWait || d[1] == tcpClose || d[1] == tcpListen) {
			return nil
		}
		var local netip.Addr
		if family == unix.AF_INET {
			local = netip.AddrFrom4([4]byte(d[msgSrc : msgSrc+4]))
		} else {
			local = netip.AddrFrom16([16]byte(d[msgSrc : msgSrc+16]))
		}
		owner := int(binary.NativeEndian.Uint32(d[msgUID:]))
		switch {
		case local == addr:
			exact[owner] = true
		case local.IsUnspecified() && proto == unix.IPPROTO_UDP:
			wild[owner] = true
		}
		return nil
	})
	if err != nil {
		return 0, false, false
	}
	for _, set := range []map[int]bool{exact, wild} {
		if len(set) == 0 {
			continue
		}
		for u := range set {
			uid = u
		}
		return uid, len(set) == 1, true
	}
	return 0, false, false
}

// putAddr writes a in inet_diag's form for family: four bytes for
// AF_INET, sixteen (an IPv4 address mapped) for AF_INET6.
func putAddr(dst []byte, a netip.Addr, family int) {
	if family == unix.AF_INET {
		b := a.Unmap().As4()
		copy(dst, b[:])
		return
	}
	b := a.As16()
	copy(dst, b[:])
}

// ask sends one inet_diag request for family and proto, fill writing its
// socket ID (idiag_sport onwards), a dump of every match or an exact
// lookup, and hands each answer's inet_diag_msg to each.
func ask(family int, proto byte, dump bool, fill func(id []byte), each func(d []byte) error) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock diag: netlink: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 2}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	msg := make([]byte, unix.NLMSG_HDRLEN+reqLen)
	flags := uint16(unix.NLM_F_REQUEST)
	if dump {
		flags |= unix.NLM_F_DUMP
	}
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(msg[6:], flags)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	req := msg[unix.NLMSG_HDRLEN:]
	req[0], req[1] = byte(family), proto
	binary.NativeEndian.PutUint32(req[4:], 0xffffffff) // every state
	fill(req[8:])
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sock diag: netlink send: %w", err)
	}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("sock diag: netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("sock diag: netlink answer: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("sock diag: no such socket: %w", unix.Errno(-errno))
					}
				}
				return errors.New("sock diag: netlink error")
			case unix.SOCK_DIAG_BY_FAMILY:
			default:
				continue
			}
			if len(m.Data) < msgLen {
				return errors.New("sock diag: short netlink answer")
			}
			if err := each(m.Data); err != nil {
				return err
			}
			if !dump {
				return nil
			}
		}
	}
}
