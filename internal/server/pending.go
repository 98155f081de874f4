package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"moat/internal/mtls"
)

// The API's connections are bounded per source and in all (mtls.Pending),
// far below the server unit's 65536 descriptors, while nobody is known to
// hold them: in their handshake and until their first request
// (ReadHeaderTimeout, 10s), and then, for a connection that presented no
// verified identity (the bundle, joins and re-attestations need none),
// for as long as it lives, an idle one being closed after apiIdleTimeout.
// Anyone who reaches the port may open connections and send nothing, or
// fetch the bundle once on each and keep them. A fleet behind one NAT
// address reconnecting at once takes at most maxAPIPendingPerSource
// places; the rest are closed at once and retried by their clients. A
// node's or an administrator's connection leaves the bounds at its first
// request: it is answerable for what it holds.
const (
	maxAPIPendingPerSource   = 256
	maxAPIPending            = 8192
	maxAPIAnonymousPerSource = 256
	maxAPIAnonymous          = 8192
	// apiIdleTimeout closes a connection that carried no request for that
	// long (an HTTP/2 one with no stream open): past the clients' own 90s.
	apiIdleTimeout = 2 * time.Minute
)

// pendingListener closes, at accept, a connection past a bound on the
// pending ones, and at its first request, an anonymous one past a bound
// on those; the server's ConnState moves a connection from the one to
// the other and gives its place back when it closes.
type pendingListener struct {
	net.Listener
	pending, anonymous *mtls.Pending
	shed               func()
	// identified reports whether a connection's client presented a
	// certificate that verifies now.
	identified func(tls.ConnectionState) bool

	mu       sync.Mutex
	releases map[net.Conn]*place
}

// place is what a connection holds: release gives it back; anonymous
// says it is held for the connection's life.
type place struct {
	release   func()
	anonymous bool
}

func newPendingListener(ln net.Listener, shed func(), identified func(tls.ConnectionState) bool) *pendingListener {
	return &pendingListener{Listener: ln, shed: shed, identified: identified, releases: map[net.Conn]*place{},
		pending:   &mtls.Pending{PerSource: maxAPIPendingPerSource, Total: maxAPIPending},
		anonymous: &mtls.Pending{PerSource: maxAPIAnonymousPerSource, Total: maxAPIAnonymous}}
}

func (l *pendingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.pending.Take(c.RemoteAddr())
		if !ok {
			l.shed()
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		l.releases[c] = &place{release: release}
		l.mu.Unlock()
		return c, nil
	}
}

// connState is the http.Server's ConnState. A connection past StateNew
// (a request begun, hijacked or closed) is no longer pending; at its
// first request one without a verified client certificate takes a place
// among the anonymous ones, or is closed when there is none, and keeps it
// until it closes.
func (l *pendingListener) connState(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		return
	}
	raw := c
	tc, isTLS := c.(*tls.Conn)
	if isTLS {
		raw = tc.NetConn()
	}
	l.mu.Lock()
	p := l.releases[raw]
	if p == nil || p.anonymous && (st == http.StateActive || st == http.StateIdle) {
		l.mu.Unlock()
		return
	}
	delete(l.releases, raw)
	l.mu.Unlock()
	p.release()
	if st != http.StateActive && st != http.StateIdle {
		return // closed or hijacked
	}
	if isTLS && l.identified(tc.ConnectionState()) {
		return
	}
	release, ok := l.anonymous.Take(raw.RemoteAddr())
	if !ok {
		l.shed()
		_ = raw.Close()
		return
	}
	l.mu.Lock()
	l.releases[raw] = &place{release: release, anonymous: true}
	l.mu.Unlock()
}

// connectionShed counts an API connection closed for a bound on pending
// or anonymous ones, and logs the first of a run and then one in a
// thousand.
func (s *Server) connectionShed() {
	s.m.shed.Inc()
	if n := s.shedCount.Add(1); n%1000 == 1 {
		s.log.Warn("server: too many API connections in their handshake, before their first request or without a client certificate; closing new ones",
			"per_source", maxAPIPendingPerSource, "in_all", maxAPIPending, "closed", n)
	}
}
