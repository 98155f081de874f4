package gateway

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"
)

var (
	// errClientShare: the client already has its share of the WAF's body
	// inspection in use or waiting. Answered 429.
	errClientShare = errors.New("gateway: the client's share of WAF body inspection is in use")
	// errInspectBusy: no room for the body's inspection within the queue
	// timeout. Answered 503: what cannot be inspected is not forwarded.
	errInspectBusy = errors.New("gateway: WAF body inspection is saturated")
)

// minInspectWeight is the least a body counts for, so that a client cannot
// queue without bound with empty bodies.
const minInspectWeight = 4 << 10

// inspectGate bounds the request-body bytes the WAF evaluates at once, and
// each client's share of them. The WAF's cost grows with the body (CRS on a
// 2 MiB form value takes seconds of CPU), so a client sending large bodies
// gets at most its share, waits its turn in a queue served round-robin
// across clients, and is refused when the turn does not come within the
// timeout. Requests without a body do not pass through it.
type inspectGate struct {
	capacity  int64 // bytes under evaluation at once, all clients
	perClient int64 // bytes one client may hold or wait for
	timeout   time.Duration

	mu      sync.Mutex // guards used, clients, turn, onAdmit
	used    int64
	clients map[netip.Prefix]*gateClient
	turn    []netip.Prefix // clients with waiters, next to be served first
	// onAdmit, when set, runs for each body admitted, after its bytes are
	// taken and before acquire returns: tests hold an admitted body there,
	// under evaluation for as long as they need. Nil in service.
	onAdmit func(client netip.Prefix)
}

type gateClient struct {
	held, queued int64
	waiters      []*gateWaiter
}

type gateWaiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

func newInspectGate(capacity, perClient int64, timeout time.Duration) *inspectGate {
	return &inspectGate{capacity: capacity, perClient: perClient, timeout: timeout, clients: map[netip.Prefix]*gateClient{}}
}

// acquire takes n bytes of the gate for client, waiting at most the gate's
// timeout (or until ctx ends). It returns errClientShare at once when the
// client's share is taken, errInspectBusy when the wait ran out. A body
// larger than the whole gate takes the whole gate; a client with nothing
// held or queued is always admitted to the queue, so every size can pass.
func (g *inspectGate) acquire(ctx context.Context, client netip.Prefix, n int64) (release func(), err error) {
	n = min(max(n, minInspectWeight), g.capacity)
	g.mu.Lock()
	c := g.clients[client]
	if c == nil {
		c = &gateClient{}
		g.clients[client] = c
	}
	if c.held+c.queued > 0 && c.held+c.queued+n > g.perClient {
		g.mu.Unlock()
		return nil, errClientShare
	}
	release = func() { g.release(client, n) }
	if len(c.waiters) == 0 && g.used+n <= g.capacity {
		g.used += n
		c.held += n
		g.mu.Unlock()
		return g.admitted(client, release), nil
	}
	w := &gateWaiter{n: n, ready: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.queued += n
	if len(c.waiters) == 1 {
		g.turn = append(g.turn, client)
	}
	g.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	select {
	case <-w.ready:
		return g.admitted(client, release), nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	select {
	case <-w.ready: // granted while the timeout fired
		g.mu.Unlock()
		return g.admitted(client, release), nil
	default:
	}
	defer g.mu.Unlock()
	c.waiters = slices.DeleteFunc(c.waiters, func(x *gateWaiter) bool { return x == w })
	c.queued -= n
	if len(c.waiters) == 0 {
		g.turn = slices.DeleteFunc(g.turn, func(k netip.Prefix) bool { return k == client })
	}
	g.forget(client, c)
	g.dispatch()
	return nil, errInspectBusy
}

// admitted runs the onAdmit hook for a body just granted, then returns
// its release, callable more than once.
func (g *inspectGate) admitted(client netip.Prefix, release func()) func() {
	g.mu.Lock()
	hook := g.onAdmit
	g.mu.Unlock()
	if hook != nil {
		hook(client)
	}
	return sync.OnceFunc(release)
}

func (g *inspectGate) release(client netip.Prefix, n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used -= n
	c := g.clients[client]
	c.held -= n
	g.forget(client, c)
	g.dispatch()
}

func (g *inspectGate) forget(client netip.Prefix, c *gateClient) {
	if c.held == 0 && len(c.waiters) == 0 {
		delete(g.clients, client)
	}
}

// dispatch grants the first waiter of each client in turn whose body fits,
// moving a served client with more waiters to the back. A large body does
// not hold up smaller ones that fit; its wait is bounded by the timeout.
func (g *inspectGate) dispatch() {
	for i := 0; i < len(g.turn); {
		client := g.turn[i]
		c := g.clients[client]
		w := c.waiters[0]
		if g.used+w.n > g.capacity {
			i++
			continue
		}
		g.used += w.n
		c.held += w.n
		c.queued -= w.n
		c.waiters = c.waiters[1:]
		close(w.ready)
		g.turn = slices.Delete(g.turn, i, i+1)
		if len(c.waiters) > 0 {
			g.turn = append(g.turn, client)
		}
	}
}

// held reports the bytes client holds, for tests.
func (g *inspectGate) held(client netip.Prefix) int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.clients[client]; c != nil {
		return c.held
	}
	return 0
}

// waiters reports how many bodies are queued, for tests.
func (g *inspectGate) waiters() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := 0
	for _, c := range g.clients {
		k += len(c.waiters)
	}
	return k
}

// gatedBody wraps a request body the WAF is about to read. The WAF reads
// the whole body before it evaluates it, so the gate is taken at the end
// of the body, for the bytes actually read: a slow upload holds nothing
// while it trickles in. Done releases the gate.
type gatedBody struct {
	io.ReadCloser
	ctx     context.Context
	gate    *inspectGate
	client  netip.Prefix
	n       int64
	release func() // set once the gate is taken
	err     error  // the gate's refusal, returned from then on
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF && b.release == nil {
		b.release, b.err = b.gate.acquire(b.ctx, b.client, b.n)
		if b.err != nil {
			return n, b.err
		}
	}
	return n, err
}

// done releases what the body took of the gate.
func (b *gatedBody) done() {
	if b.release != nil {
		b.release()
	}
}

// clientKey is the unit limits and shares are counted in: an IPv4 address,
// or an IPv6 /64, the least a single site is given (RFC 6177), so that one
// client cannot multiply its share by walking its own prefix.
func clientKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
