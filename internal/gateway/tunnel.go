package gateway

import (
	"bufio"
	"context"
	"net"
	"net/http"
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
	// Every byte of the tunnel passes through the client's connection,
	// one way or the other, so it alone tells how long the tunnel has
	// been idle.
	ic := idle.NewConn(c)
	fw := w.fw
	watch := idle.Start(fw.route.WebSocketIdle, ic.Quiet, func() {
		w.g.log.Info("gateway: websocket closed: no byte moved either way for its idle timeout",
			"request_id", fw.reqID, "route", fw.route.Name, "client", fw.client, "idle_timeout", fw.route.WebSocketIdle)
		c.Close()
		w.endRequest()
	})
	return &tunnelConn{Conn: ic, watch: watch}, brw, nil
}

// tunnelConn is the client's side of a WebSocket, watched.
type tunnelConn struct {
	*idle.Conn
	watch *idle.Watch
}

func (c *tunnelConn) Close() error {
	c.watch.Stop()
	return c.Conn.Close()
}
