package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/mesh"
)

// countedConn counts the bytes each way of a forwarded connection.
type countedConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// serveForward carries one forwarded connection of a forward grant to its
// service, through the mesh's inbound path: the intentions decide for the
// source admin/<name>, and the flow records count its bytes.
func (x *access) serveForward(ctx context.Context, conn net.Conn, ls *liveSession, peer verifiedPeer) {
	info := ls.info
	info.Detail = fmt.Sprintf("%s:%d", peer.grant.Service, peer.grant.Port)
	if err := x.reportStart(ctx, info); err != nil {
		x.a.log.Error("access: session start not on record; session refused", "session", info.ID, "err", err)
		return
	}
	id, _ := spiffeid.FromString(peer.id)
	cc := &countedConn{Conn: conn}
	err := x.a.mesh.ServeAccess(cc, id, peer.cs.PeerCertificates, peer.cs.Version, peer.grant.Service, peer.grant.Port)
	info.Ended = x.a.cfg.Now().UTC()
	info.EndReason = "closed"
	var refused *mesh.RefusedError
	switch {
	case errors.As(err, &refused):
		info.EndReason = "refused: " + refused.Response.Code
	case errors.Is(context.Cause(ctx), errGrantEnded):
		info.EndReason = "grant ended"
	case err != nil:
		info.EndReason = "error"
	}
	info.BytesIn, info.BytesOut = cc.in.Load(), cc.out.Load()
	x.finish(info)
}
