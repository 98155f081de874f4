package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"

	"moat/internal/mtls"
)

// The API's connections in their handshake, and then until their first
// request (ReadHeaderTimeout, 10s), are bounded per source and in all
// (mtls.Pending), far below the server unit's 65536 descriptors: anyone
// who reaches the port may open connections and send nothing. A fleet
// behind one NAT address reconnecting at once takes at most
// maxAPIPendingPerSource places; the rest are closed at once and retried
// by their clients.
const (
	maxAPIPendingPerSource = 256
	maxAPIPending          = 8192
)

// pendingListener closes, at accept, a connection past a bound on the
// pending ones; the server's ConnState gives a place back once its
// connection leaves StateNew.
type pendingListener struct {
	net.Listener
	p    *mtls.Pending
	shed func()

	mu       sync.Mutex
	releases map[net.Conn]func()
}

func newPendingListener(ln net.Listener, shed func()) *pendingListener {
	return &pendingListener{Listener: ln, shed: shed, releases: map[net.Conn]func(){},
		p: &mtls.Pending{PerSource: maxAPIPendingPerSource, Total: maxAPIPending}}
}

func (l *pendingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, ok := l.p.Take(c.RemoteAddr())
		if !ok {
			l.shed()
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		l.releases[c] = release
		l.mu.Unlock()
		return c, nil
	}
}

// connState is the http.Server's ConnState: a connection past StateNew
// (a request begun, hijacked or closed) is no longer pending.
func (l *pendingListener) connState(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	l.mu.Lock()
	release := l.releases[c]
	delete(l.releases, c)
	l.mu.Unlock()
	if release != nil {
		release()
	}
}

// connectionShed counts an API connection closed for a bound on pending
// ones, and logs the first of a run and then one in a thousand.
func (s *Server) connectionShed() {
	s.m.shed.Inc()
	if n := s.shedCount.Add(1); n%1000 == 1 {
		s.log.Warn("server: too many API connections in their handshake or before their first request; closing new ones",
			"per_source", maxAPIPendingPerSource, "in_all", maxAPIPending, "closed", n)
	}
}
