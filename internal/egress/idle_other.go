//go:build !linux

package egress

import (
	"net"
	"time"
)

// idleSince is nil where the kernel is not asked: the upstream is then
// watched through an idle.Conn.
func idleSince(net.Conn) func() (time.Duration, bool) { return nil }
