package gateway

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"moat/internal/idle"
)

// defaultWebSocketIdle is limits.websocket_idle_timeout's default, Envoy's
// stream idle timeout, which also bounds its WebSocket upgrades. nginx
// closes an upgraded connection after 60s without data (proxy_read_timeout),
// shorter than some applications' heartbeats; HAProxy (timeout tunnel) and
// Caddy set none unless told. Five minutes outlasts any common heartbeat
// and still frees a connection held open with nothing sent.
const defaultWebSocketIdle = 5 * time.Minute

// tunnelWriter answers a WebSocket handshake. Once the service has
// switched protocols the reverse proxy takes the client's connection
// (Hijack) and copies bytes both ways until either side ends: the gateway
// no longer reads them, and net/http's timeouts no longer apply (a
// hijacked connection's deadlines are cleared). The connection it hands
// over is watched: once no byte has moved either way for the route's
// WebSocket idle timeout, both sides are closed, so that neither a client
// nor a stalled service holds the tunnel, and a place under the per-IP
// connection cap, for ever. It is also tracked until it closes, so that
// the gateway's stop can wait for it and then close it (tunnels).
type tunnelWriter struct {
	*ownHeaders
	g  *Gateway
	fw *forward
	// endRequest cancels the proxied request's context, on which the
	// reverse proxy closes the service's side of the tunnel.
	endRequest context.CancelFunc
}

// Unwrap lets http.ResponseController reach the rest of the chain.
func (w *tunnelWriter) Unwrap() http.ResponseWriter { return w.ownHeaders }

// Hijack hands over the client's connection, watched for idleness and
// tracked until it closes.
func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ownHeaders).Hijack()
	if err != nil {
		return nil, nil, err
	}
	fw := w.fw
	// Closing the client's side ends the reverse proxy's copy; ending the
	// request closes the service's.
	end := func() {
		c.Close()
		w.endRequest()
	}
	// Every byte of the tunnel passes through the client's connection,
	// one way or the other, so it alone tells how long the tunnel has
	// been idle.
	ic := idle.NewConn(c)
	tc := &tunnelConn{Conn: ic, set: &w.g.tunnels, end: end}
	if !w.g.tunnels.add(tc) {
		end()
		return nil, nil, errors.New("gateway: shutting down: no new WebSocket")
	}
	tc.watch = idle.Start(fw.route.WebSocketIdle, ic.Quiet, func() {
		w.g.log.Info("gateway: websocket closed: no byte moved either way for its idle timeout",
			"request_id", fw.reqID, "route", fw.route.Name, "client", fw.client, "idle_timeout", fw.route.WebSocketIdle)
		end()
	})
	return tc, brw, nil
}

// tunnelConn is the client's side of a WebSocket, watched and tracked.
// The reverse proxy closes it once the tunnel has ended, however it did.
type tunnelConn struct {
	*idle.Conn
	watch *idle.Watch
	set   *tunnels
	end   func() // closes both sides
}

func (c *tunnelConn) Close() error {
	c.watch.Stop()
	c.set.remove(c)
	return c.Conn.Close()
}

// tunnels is the set of open WebSocket tunnels. net/http's Shutdown
// forgets a connection once it is hijacked, so this set is what lets the
// gateway's stop wait for its tunnels and then close those left.
type tunnels struct {
	mu    sync.Mutex // guards all below
	open  map[*tunnelConn]struct{}
	empty chan struct{} // closed once open is empty, while drain waits
	shut  bool          // drain has closed the set: no tunnel is added
}

// add tracks c; false once drain has run, when c must not open.
func (ts *tunnels) add(c *tunnelConn) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.shut {
		return false
	}
	if ts.open == nil {
		ts.open = make(map[*tunnelConn]struct{})
	}
	ts.open[c] = struct{}{}
	return true
}

func (ts *tunnels) remove(c *tunnelConn) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.open, c)
	if len(ts.open) == 0 && ts.empty != nil {
		close(ts.empty)
		ts.empty = nil
	}
}

func (ts *tunnels) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.open)
}

// drain waits until no tunnel is open or ctx ends, then closes those
// still open, refuses any opened later, and returns how many it closed.
func (ts *tunnels) drain(ctx context.Context) int {
	ts.mu.Lock()
	var empty chan struct{}
	if len(ts.open) > 0 {
		empty = make(chan struct{})
		ts.empty = empty
	}
	ts.mu.Unlock()
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
		}
	}
	ts.mu.Lock()
	ts.shut = true
	left := make([]*tunnelConn, 0, len(ts.open))
	for c := range ts.open {
		left = append(left, c)
	}
	ts.mu.Unlock()
	for _, c := range left {
		c.end()
	}
	return len(left)
}
