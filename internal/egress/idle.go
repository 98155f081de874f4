package egress

import (
	"net"
	"time"

	"moat/internal/idle"
)

// DefaultIdleTimeout is how long a relayed egress connection may move no
// byte either way before the point closes it (Envoy's tcp_proxy closes
// its idle connections after an hour too).
const DefaultIdleTimeout = time.Hour

// watchIdle closes client and up once no byte moved either way for the
// idle timeout. It asks the kernel how long ago the upstream socket last
// sent or received data (TCP_INFO), so the copies stay the kernel's
// (splice) and no read is cut by a deadline; where the kernel cannot
// tell, the upstream is read and written through an idle.Conn (which
// replaces up.conn).
func (p *Point) watchIdle(client net.Conn, up *Upstream) *idle.Watch {
	since := idleSince(up.conn)
	if since == nil {
		ic := idle.NewConn(up.conn)
		up.conn, since = ic, ic.Quiet
	}
	c := up.conn
	return idle.Start(p.cfg.IdleTimeout, since, func() { client.Close(); c.Close() })
}
