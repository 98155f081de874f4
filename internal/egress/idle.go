package egress

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultIdleTimeout is how long a relayed egress connection may move no
// byte either way before the point closes it (Envoy's tcp_proxy closes
// its idle connections after an hour too).
const DefaultIdleTimeout = time.Hour

// idleWatch closes a relayed connection once no byte moved either way for
// the idle timeout. It asks the kernel how long ago the upstream socket
// last sent or received data (TCP_INFO), so the copies stay the kernel's
// (splice) and no read is cut by a deadline; where the kernel cannot
// tell, the upstream is read and written through a conn that notes the
// time of each byte. A timer looks when the timeout could be up, so the
// connection is closed within a few milliseconds of it.
type idleWatch struct {
	timeout time.Duration
	since   func() (time.Duration, bool) // how long the upstream has been idle
	close   func()
	mu      sync.Mutex // guards timer and stopped
	timer   *time.Timer
	stopped bool
	expired atomic.Bool
}

// watchIdle starts watching up (whose conn it may wrap) for client.
func (p *Point) watchIdle(client net.Conn, up *Upstream) *idleWatch {
	w := &idleWatch{timeout: p.cfg.IdleTimeout, since: idleSince(up.conn)}
	if w.since == nil {
		ac := &activityConn{Conn: up.conn}
		ac.last.Store(time.Now().UnixNano())
		up.conn, w.since = ac, ac.idle
	}
	c := up.conn
	w.close = func() { client.Close(); c.Close() }
	w.mu.Lock()
	w.timer = time.AfterFunc(w.timeout, w.check)
	w.mu.Unlock()
	return w
}

func (w *idleWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	d, ok := w.since()
	if ok && d >= w.timeout {
		w.expired.Store(true)
		w.close()
		return
	}
	next := w.timeout - d
	if !ok {
		next = w.timeout
	}
	w.timer.Reset(max(next, time.Millisecond))
}

func (w *idleWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// fired reports whether the watch closed the connection.
func (w *idleWatch) fired() bool { return w.expired.Load() }

// activityConn notes when a byte last went through it either way.
type activityConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func (c *activityConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *activityConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *activityConn) CloseWrite() error {
	closeWrite(c.Conn)
	return nil
}

func (c *activityConn) idle() (time.Duration, bool) {
	return time.Duration(time.Now().UnixNano() - c.last.Load()), true
}
