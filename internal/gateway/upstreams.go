package gateway

import (
	"context"
	"net/http"
	"sync/atomic"
)

// upstreams is the reverse proxy's transport into the mesh: one
// http.Transport per generation of the credentials its connections are
// dialed with (Config.CredentialsChanged). Keep-alive connections are
// streams of a mesh tunnel opened with the SVID of their dial; a new
// generation sends new requests over fresh connections, which the mesh
// dials on a tunnel with the current SVID, and closes the idle ones of
// the old transport; a connection still carrying a request is closed when
// that request ends (http.Transport closes the connections that become
// idle after CloseIdleConnections, until it is used again, and an old
// transport is not).
//
// Direct requests (isDirect: most of a gateway's) take connections of
// their own (direct.go), renewed and closed with the transport's.
type upstreams struct {
	fresh  func() *http.Transport
	cur    atomic.Pointer[http.Transport]
	gens   atomic.Uint64 // transports made after the first
	direct *directPool
}

func newUpstreams(fresh func() *http.Transport, direct *directPool) *upstreams {
	u := &upstreams{fresh: fresh, direct: direct}
	u.cur.Store(fresh())
	return u
}

func (u *upstreams) RoundTrip(r *http.Request) (*http.Response, error) {
	if isDirect(r) {
		return u.direct.roundTrip(r)
	}
	return u.cur.Load().RoundTrip(r)
}

// renew starts a generation: new requests use a new transport, and the
// old one's idle connections are closed.
func (u *upstreams) renew() {
	old := u.cur.Swap(u.fresh())
	u.gens.Add(1)
	old.CloseIdleConnections()
	u.direct.renew()
}

// closeIdle closes the idle connections.
func (u *upstreams) closeIdle() {
	u.cur.Load().CloseIdleConnections()
	u.direct.closeIdle(false)
}

// closeStale closes the direct connections idle for directIdleTimeout
// (the transport times out its own).
func (u *upstreams) closeStale() { u.direct.closeIdle(true) }

// followCredentials renews the upstream connections at every change of
// the credentials they are made with, until ctx ends.
func (g *Gateway) followCredentials(ctx context.Context) {
	for {
		changed := g.cfg.CredentialsChanged()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		g.upstreams.renew()
		g.log.Debug("gateway: credentials changed: new upstream connections from now on, idle ones closed", "generation", g.upstreams.gens.Load())
	}
}
