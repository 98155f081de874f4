// Package idle closes a relayed connection once no byte has moved either
// way for a while: the egress path's connections to the outside and the
// gateway's WebSocket tunnels. A Watch asks how long the relay has been
// quiet only when its timeout could be up, so a busy relay pays an atomic
// store per read or write (Conn) or nothing at all (a kernel's own
// figure, such as TCP_INFO's), and no read is cut by a deadline.
package idle

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Watch calls its fire function once, when the relay it watches has been
// quiet for the timeout.
type Watch struct {
	timeout time.Duration
	since   func() (time.Duration, bool)
	fire    func()

	mu      sync.Mutex // guards timer and stopped
	timer   *time.Timer
	stopped bool
	fired   atomic.Bool
}

// Start watches a relay: since tells how long it has been quiet (false
// when it cannot tell, and the watch then looks again a timeout later),
// and fire, called at most once, ends it. fire runs without the watch's
// lock, so it may close what calls Stop; once Stop has returned, fire
// does not begin.
func Start(timeout time.Duration, since func() (time.Duration, bool), fire func()) *Watch {
	w := &Watch{timeout: timeout, since: since, fire: fire}
	w.mu.Lock()
	w.timer = time.AfterFunc(timeout, w.check)
	w.mu.Unlock()
	return w
}

func (w *Watch) check() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	d, ok := w.since()
	if ok && d >= w.timeout {
		w.stopped = true
		w.fired.Store(true)
		w.mu.Unlock()
		w.fire()
		return
	}
	next := w.timeout - d
	if !ok {
		next = w.timeout
	}
	w.timer.Reset(max(next, time.Millisecond))
	w.mu.Unlock()
}

// Stop ends the watch: fire does not begin after it returns.
func (w *Watch) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// Fired reports whether the watch ended the relay.
func (w *Watch) Fired() bool { return w.fired.Load() }

// Conn is a connection that notes when a byte last went through it,
// either way: for a relay whose every byte passes through one
// connection, its Quiet is the relay's.
type Conn struct {
	net.Conn
	base time.Time    // the monotonic start of last
	last atomic.Int64 // when a byte last moved, as time since base
}

// NewConn watches c's reads and writes from now on.
func NewConn(c net.Conn) *Conn { return &Conn{Conn: c, base: time.Now()} }

func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.last.Store(int64(time.Since(c.base)))
	}
	return n, err
}

func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.last.Store(int64(time.Since(c.base)))
	}
	return n, err
}

// Quiet is how long ago a byte last moved through c (since NewConn when
// none has); its second result is always true, as Start's since wants.
func (c *Conn) Quiet() (time.Duration, bool) {
	return time.Since(c.base) - time.Duration(c.last.Load()), true
}

// CloseWrite passes on the end of one direction where the connection
// under c can (TCP, TLS's close_notify), as relays do.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("idle: close write: %w", errors.ErrUnsupported)
}
