package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
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
// connection cap, for ever.
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

// Hijack hands over the client's connection, watched for idleness.
func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ownHeaders).Hijack()
	if err != nil {
		return nil, nil, err
	}
	tc := &tunnelConn{Conn: c, w: w, idle: w.fw.route.WebSocketIdle, base: time.Now()}
	tc.mu.Lock()
	tc.timer = time.AfterFunc(tc.idle, tc.check)
	tc.mu.Unlock()
	return tc, brw, nil
}

// tunnelConn is the client's side of a WebSocket. Every byte of the
// tunnel passes through it, one way or the other, so it alone tells how
// long the tunnel has been idle. A timer looks when the timeout could be
// up.
type tunnelConn struct {
	net.Conn
	w    *tunnelWriter
	idle time.Duration
	base time.Time    // the monotonic start of last
	last atomic.Int64 // when a byte last moved, as time since base

	mu     sync.Mutex // guards timer and closed
	timer  *time.Timer
	closed bool
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.last.Store(int64(time.Since(c.base)))
	}
	return n, err
}

func (c *tunnelConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.last.Store(int64(time.Since(c.base)))
	}
	return n, err
}

// CloseWrite passes on the end of the service's stream, as the reverse
// proxy does for a connection that can (TLS's close_notify).
func (c *tunnelConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("gateway: close write: %w", http.ErrNotSupported)
}

func (c *tunnelConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.timer.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *tunnelConn) check() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if quiet := time.Since(c.base) - time.Duration(c.last.Load()); quiet < c.idle {
		c.timer.Reset(c.idle - quiet)
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	fw := c.w.fw
	c.w.g.log.Info("gateway: websocket closed: no byte moved either way for its idle timeout",
		"request_id", fw.reqID, "route", fw.route.Name, "client", fw.client, "idle_timeout", c.idle)
	c.Conn.Close()
	c.w.endRequest()
}
