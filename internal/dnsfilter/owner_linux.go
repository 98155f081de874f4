package dnsfilter

import (
	"encoding/binary"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// inet_diag_req_v2 and inet_diag_msg, from linux/inet_diag.h.
const (
	diagReqLen  = 56
	diagMsgLen  = 72
	diagSrc     = 8  // idiag_src in inet_diag_msg
	diagUID     = 64 // idiag_uid in inet_diag_msg
	tcpTimeWait = 6
	tcpClose    = 7
	tcpListen   = 10
)

// socketOwner returns the uid owning the local socket a query came from:
// over network ("udp" or "tcp"), with from as its own address and port.
// It asks the kernel's socket diagnostics (NETLINK_SOCK_DIAG, as ss
// does) for the sockets of that protocol on from's port, and takes the
// one bound to from's address (or, over UDP, to every address). ok is
// false when there is none, or sockets of two owners match: a socket of
// another network namespace (a container's), or one closed since.
func socketOwner(network string, from netip.AddrPort) (uid int, ok bool) {
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
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, false, false
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 1}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	msg := make([]byte, unix.NLMSG_HDRLEN+diagReqLen)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.SOCK_DIAG_BY_FAMILY)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	req := msg[unix.NLMSG_HDRLEN:]
	req[0], req[1] = byte(family), proto
	binary.NativeEndian.PutUint32(req[4:], 0xffffffff) // every state
	binary.BigEndian.PutUint16(req[8:], port)          // idiag_sport: the kernel keeps those on port alone
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false, false
	}
	exact, wild := map[int]bool{}, map[int]bool{}
	buf := make([]byte, 32<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, false, false
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, false, false
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return pick(exact, wild)
			case unix.NLMSG_ERROR:
				return 0, false, false
			case unix.SOCK_DIAG_BY_FAMILY:
			default:
				continue
			}
			d := m.Data
			if len(d) < diagMsgLen || binary.BigEndian.Uint16(d[4:]) != port {
				continue
			}
			if proto == unix.IPPROTO_TCP && (d[1] == tcpTimeWait || d[1] == tcpClose || d[1] == tcpListen) {
				continue
			}
			var local netip.Addr
			if family == unix.AF_INET {
				local = netip.AddrFrom4([4]byte(d[diagSrc : diagSrc+4]))
			} else {
				local = netip.AddrFrom16([16]byte(d[diagSrc : diagSrc+16]))
			}
			owner := int(binary.NativeEndian.Uint32(d[diagUID:]))
			switch {
			case local == addr:
				exact[owner] = true
			case local.IsUnspecified() && proto == unix.IPPROTO_UDP:
				wild[owner] = true
			}
		}
	}
}

// pick is the one owner of the sockets bound to the address, else of
// those bound to every address.
func pick(exact, wild map[int]bool) (uid int, ok, found bool) {
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
