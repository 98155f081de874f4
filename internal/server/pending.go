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
// connection whose client presented a verified identity (a node, an
// administrator, a server) counts against that identity from its first
// request, maxAPIPerIdentity at most: a compromised node cannot take the
// server's descriptors either (its agent holds one or two).
const (
	maxAPIPendingPerSource   = 256
	maxAPIPending            = 8192
	maxAPIAnonymousPerSource = 256
	maxAPIAnonymous          = 8192
	maxAPIPerIdentity        = 256
	// apiIdleTimeout closes a connection that carried no request for that
	// long (an HTTP/2 one with no stream open): past the clients' own 90s.
	apiIdleTimeout = 2 * time.Minute
)

// pendingListener closes, at accept, a connection past a bound on the
// pending ones, and at its first request, one past the bound of its
// identity or, without one, of the anonymous ones; the server's ConnState
// moves a connection from the one to the other and gives its place back
// when it closes.
type pendingListener struct {
	net.Listener
	pending, anonymous *mtls.Pending
	shed               func()
	// identify names the identity a connection's client presented, when
	// its certificate verifies now.
	identify func(tls.ConnectionState) (string, bool)

	mu       sync.Mutex // guards releases and byID
	releases map[net.Conn]*place
	byID     map[string]int // connections held, by identity
}

// place is what a connection holds: release gives it back; held says it
// is held for the connection's life (anonymous, or by an identity).
type place struct {
	release func()
	held    bool
}

func newPendingListener(ln net.Listener, shed func(), identify func(tls.ConnectionState) (string, bool)) *pendingListener {
	return &pendingListener{Listener: ln, shed: shed, identify: identify, releases: map[net.Conn]*place{}, byID: map[string]int{},
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
// first request it takes a place by the identity its client presented,
// or, without one, among the anonymous ones from its source, or is closed
// when there is none, and keeps it until it closes.
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
	if p == nil || p.held && (st == http.StateActive || st == http.StateIdle) {
		l.mu.Unlock()
		return
	}
	delete(l.releases, raw)
	l.mu.Unlock()
	p.release()
	if st != http.StateActive && st != http.StateIdle {
		return // closed or hijacked
	}
	var release func()
	ok := false
	if id, known := l.identityOf(tc, isTLS); known {
		release, ok = l.takeID(id)
	} else {
		release, ok = l.anonymous.Take(raw.RemoteAddr())
	}
	if !ok {
		l.shed()
		_ = raw.Close()
		return
	}
	l.mu.Lock()
	l.releases[raw] = &place{release: release, held: true}
	l.mu.Unlock()
}

// identityOf names the verified identity of a connection's client.
func (l *pendingListener) identityOf(tc *tls.Conn, isTLS bool) (string, bool) {
	if !isTLS {
		return "", false
	}
	return l.identify(tc.ConnectionState())
}

// takeID holds a place for a connection of identity id, or reports false
// when it holds maxAPIPerIdentity already. release, called any number of
// times, gives it back.
func (l *pendingListener) takeID(id string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID[id] >= maxAPIPerIdentity {
		return nil, false
	}
	l.byID[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.byID[id]--; l.byID[id] == 0 {
				delete(l.byID, id)
			}
		})
	}, true
}

// connectionShed counts an API connection closed for a bound on pending,
// anonymous or one identity's connections, and logs the first of a run
// and then one in a thousand.
func (s *Server) connectionShed() {
	s.m.shed.Inc()
	if n := s.shedCount.Add(1); n%1000 == 1 {
		s.log.Warn("server: too many API connections in their handshake, before their first request, without a client certificate or of one identity; closing new ones",
			"per_source", maxAPIPendingPerSource, "in_all", maxAPIPending, "per_identity", maxAPIPerIdentity, "closed", n)
	}
}
