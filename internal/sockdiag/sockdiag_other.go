//go:build !linux

package sockdiag

import (
	"errors"
	"net"
	"net/netip"
)

// PeerUID cannot tell a local peer's uid outside Linux, so a uid-guarded
// listener refuses every connection there (fail closed).
func PeerUID(net.Conn) (int, error) {
	return 0, errors.New("peer uid: only Linux tells a local peer's uid")
}

// Owner cannot tell a local socket's owner outside Linux.
func Owner(string, netip.AddrPort) (int, bool) { return 0, false }
