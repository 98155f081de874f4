//go:build !linux

package mesh

import (
	"errors"
	"net"
)

// peerUID cannot tell a local peer's uid outside Linux, so a uid-guarded
// listener refuses every connection there (fail closed).
func peerUID(net.Conn) (int, error) {
	return 0, errors.New("mesh: peer uid: only Linux tells a local peer's uid")
}
