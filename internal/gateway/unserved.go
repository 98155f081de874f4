package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// KindUnserved is a request that Go's HTTP server refused, or that ended
// unread, before the gateway's handler saw it: a request line or header it
// cannot parse (400), headers past max_header_bytes (431), an Expect it
// does not know (417), or bytes of a request the client stopped sending.
// Its status is not known here; the record says which of these it can
// have been.
const KindUnserved = "unserved"

const unservedReason = "request refused by the HTTP server before routing: malformed, headers too large, unknown Expect, or incomplete when the connection ended"

// connCtxKey is the context key under which a connection's *limitedConn
// reaches the handler.
type connCtxKey struct{}

// unservedHooks wires srv so that an HTTP/1 request read off a
// connection that never reached the handler becomes a KindUnserved event.
//
// net/http calls ConnState with StateActive when it has read bytes of a
// request, before parsing them, and the handler clears the mark; a
// connection closing while marked ended in a request the server answered
// itself, or in an incomplete one. HTTP/2 connections are not marked:
// their streams are refused by stream, not by closing the connection.
func (g *Gateway) unservedHooks(srv *http.Server) {
	if srv.TLSConfig != nil {
		srv.HTTP2 = &http.HTTP2Config{CountError: g.h2Errors.count}
	}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if lc := limitedOf(c); lc != nil {
			return context.WithValue(ctx, connCtxKey{}, lc)
		}
		return ctx
	}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		lc := limitedOf(c)
		if lc == nil {
			return
		}
		switch s {
		case http.StateActive:
			// The protocol is read once: the handshake is over before
			// the first request's bytes, and copying the TLS state
			// for every request of a connection is work.
			if !lc.h1.Load() {
				if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
					return
				}
				lc.h1.Store(true)
			}
			lc.unserved.Store(true)
		case http.StateClosed:
			if lc.unserved.Swap(false) {
				g.unservedRequest(c)
			}
		}
	}
}

// served clears r's connection's mark: the handler has its request.
func served(r *http.Request) {
	if lc, ok := r.Context().Value(connCtxKey{}).(*limitedConn); ok {
		lc.unserved.Store(false)
	}
}

// limitedOf is the gateway's own connection under c, or nil.
func limitedOf(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

func (g *Gateway) unservedRequest(c net.Conn) {
	ev := event{kind: KindUnserved, reason: unservedReason, client: addrIP(c.RemoteAddr()), blocked: true, local: addrPort(c.LocalAddr())}
	g.emit(&ev)
}

// h2Errors counts what Go's HTTP/2 server refuses before the handler: a
// stream reset for a malformed request (a pseudo-header missing or out of
// place, a :path that is no path for its method, a field HTTP/2 forbids,
// trailers that break the rules) or a connection ended for a protocol
// error. The server reports these by kind only, not by connection
// (http.HTTP2Config.CountError), so they are recorded as one KindUnserved
// summary per flush with the count of each kind, naming no client.
type h2Errors struct {
	mu     sync.Mutex
	counts map[string]int
}

// maxH2ErrorKinds bounds the kinds kept between flushes; Go's server has
// about sixty, and any past the bound count as "other".
const maxH2ErrorKinds = 64

func (h *h2Errors) count(kind string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.counts == nil {
		h.counts = map[string]int{}
	}
	if _, ok := h.counts[kind]; !ok && len(h.counts) >= maxH2ErrorKinds || len(kind) > 64 {
		kind = "other"
	}
	h.counts[kind]++
}

// flush returns the summary of the errors counted since the last flush,
// or nil.
func (h *h2Errors) flush() *event {
	h.mu.Lock()
	counts := h.counts
	h.counts = nil
	h.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	kinds := make([]string, 0, len(counts))
	total := 0
	for k, n := range counts {
		kinds = append(kinds, k)
		total += n
	}
	sort.Strings(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%d", k, counts[k])
	}
	return &event{kind: KindUnserved, blocked: true, suppressed: total,
		reason: fmt.Sprintf("%d HTTP/2 streams or connections refused by the HTTP server before routing (clients not known to it): %s", total, b.String())}
}
