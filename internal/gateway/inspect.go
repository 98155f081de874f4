package gateway

import (
	"context"
	"errors"
	"io"
	"math"
	"net/netip"
	"sync"
	"time"
)

var (
	// errClientShare: the client already has its share of the WAF's body
	// inspection in use or waiting. Answered 429.
	errClientShare = errors.New("gateway: the client's share of WAF body inspection is in use")
	// errInspectBusy: no room for the body's inspection within the queue
	// timeout, or no room in the queue. Answered 503: what cannot be
	// inspected is not forwarded.
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
// timeout or the queue is full. Requests without a body do not pass
// through it. Admitting, releasing and giving up a wait cost O(log n) in
// the clients queued, under the gate's lock.
type inspectGate struct {
	capacity  int64 // bytes under evaluation at once, all clients
	perClient int64 // bytes one client may hold or wait for
	maxQueued int   // bodies waiting at once, all clients
	timeout   time.Duration

	mu      sync.Mutex // guards used, waiting, clients, turn, onAdmit
	used    int64
	waiting int // bodies queued
	clients map[netip.Prefix]*gateClient
	turn    turnQueue // clients with waiters, next to be served first
	// onAdmit, when set, runs for each body admitted, after its bytes are
	// taken and before acquire returns: tests hold an admitted body there,
	// under evaluation for as long as they need. Nil in service.
	onAdmit func(client netip.Prefix)
}

type gateClient struct {
	held, queued int64
	first, last  *gateWaiter // the client's waiters, oldest first
	slot         int         // place in the gate's turn while it has waiters
}

type gateWaiter struct {
	n          int64
	ready      chan struct{} // closed when granted
	prev, next *gateWaiter
}

// defaultMaxQueued is the queue's bound when the file sets none: as many
// bodies as the gate holds at once at the least weight.
func defaultMaxQueued(capacity int64) int {
	return int(max(1, capacity/minInspectWeight))
}

func newInspectGate(capacity, perClient int64, maxQueued int, timeout time.Duration) *inspectGate {
	return &inspectGate{capacity: capacity, perClient: perClient, maxQueued: maxQueued, timeout: timeout, clients: map[netip.Prefix]*gateClient{}}
}

// acquire takes n bytes of the gate for client, waiting at most the gate's
// timeout (or until ctx ends). It returns errClientShare at once when the
// client's share is taken, errInspectBusy when the wait ran out or the
// queue is full. A body larger than the whole gate takes the whole gate; a
// client with nothing held or queued is always admitted to a queue with
// room, so every size can pass. A client's further bodies queue only while
// the queue is less than half full, so that a few clients cannot fill it.
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
	if c.first == nil && g.used+n <= g.capacity {
		g.used += n
		c.held += n
		g.mu.Unlock()
		return g.admitted(client, release), nil
	}
	if g.waiting >= g.maxQueued || (c.first != nil && g.waiting >= (g.maxQueued+1)/2) {
		g.forget(client, c)
		g.mu.Unlock()
		return nil, errInspectBusy
	}
	w := &gateWaiter{n: n, ready: make(chan struct{})}
	c.push(w)
	g.waiting++
	if c.first == w {
		g.turn.push(c)
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
	head := c.first == w
	c.remove(w)
	g.waiting--
	switch {
	case c.first == nil:
		g.turn.remove(c)
	case head:
		g.turn.set(c) // its next body keeps the client's place
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
	if c.held == 0 && c.first == nil {
		delete(g.clients, client)
	}
}

// dispatch grants the first waiter of each client in turn whose body fits,
// moving a served client with more waiters to the back. A large body does
// not hold up smaller ones that fit; its wait is bounded by the timeout.
func (g *inspectGate) dispatch() {
	for {
		c := g.turn.first(g.capacity - g.used)
		if c == nil {
			return
		}
		w := c.first
		g.used += w.n
		c.held += w.n
		c.remove(w)
		g.waiting--
		close(w.ready)
		g.turn.remove(c)
		if c.first != nil {
			g.turn.push(c)
		}
	}
}

// push queues w last among the client's waiters.
func (c *gateClient) push(w *gateWaiter) {
	w.prev = c.last
	if c.last != nil {
		c.last.next = w
	} else {
		c.first = w
	}
	c.last = w
	c.queued += w.n
}

// remove takes w from the client's waiters.
func (c *gateClient) remove(w *gateWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		c.first = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		c.last = w.prev
	}
	w.prev, w.next = nil, nil
	c.queued -= w.n
}

// turnQueue orders the clients with waiters, each in the slot it took
// when it joined the back, and finds the first whose next body fits in
// O(log n): a segment tree over the slots holds the least first body of
// each range. Slots of clients gone stay empty until the slots run out;
// then the clients left are packed to the front, which costs O(slots)
// after at least slots/2 pushes.
type turnQueue struct {
	slots []*gateClient // nil: empty; len a power of two
	least []int64       // the tree: least[1] the root, least[len(slots)+i] slot i
	end   int           // slots in use, live or empty
	live  int
}

const noBody = math.MaxInt64

// push puts c at the back.
func (q *turnQueue) push(c *gateClient) {
	if q.end == len(q.slots) {
		q.repack()
	}
	c.slot = q.end
	q.slots[q.end] = c
	q.end++
	q.live++
	q.set(c)
}

// remove takes c from the queue.
func (q *turnQueue) remove(c *gateClient) {
	q.slots[c.slot] = nil
	q.update(c.slot, noBody)
	q.live--
	if q.live == 0 {
		q.end = 0 // every slot is empty, its leaf noBody
	}
}

// set records that c's first body changed.
func (q *turnQueue) set(c *gateClient) { q.update(c.slot, c.first.n) }

func (q *turnQueue) update(slot int, n int64) {
	i := len(q.slots) + slot
	q.least[i] = n
	for i > 1 {
		i /= 2
		q.least[i] = min(q.least[2*i], q.least[2*i+1])
	}
}

// first returns the client nearest the front whose first body is at most
// room, or nil.
func (q *turnQueue) first(room int64) *gateClient {
	if len(q.slots) == 0 || q.least[1] > room {
		return nil
	}
	i := 1
	for i < len(q.slots) {
		i *= 2
		if q.least[i] > room {
			i++
		}
	}
	return q.slots[i-len(q.slots)]
}

// repack moves the clients to the front of slots twice their number (at
// least 16), keeping their order, and rebuilds the tree.
func (q *turnQueue) repack() {
	size := 16
	for size < 2*q.live+2 {
		size *= 2
	}
	slots := make([]*gateClient, size)
	least := make([]int64, 2*size)
	for i := range least {
		least[i] = noBody
	}
	k := 0
	for _, c := range q.slots[:q.end] {
		if c != nil {
			c.slot = k
			slots[k] = c
			least[size+k] = c.first.n
			k++
		}
	}
	for i := size - 1; i >= 1; i-- {
		least[i] = min(least[2*i], least[2*i+1])
	}
	q.slots, q.least, q.end = slots, least, k
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
	return g.waiting
}

// errBodiesHeld: the gateway holds as many request bodies for the WAF as
// waf.body_inspection.max_bodies allows. Answered 503.
var errBodiesHeld = errors.New("gateway: as many request bodies held for the WAF as max_bodies allows")

// bodyHolds bounds the request bodies the gateway holds for the WAF at
// once, all clients together, each from its request's headers to the
// request's end. The WAF buffers a body from its first byte until the
// request ends (up to 128 KiB of it in memory, the rest in a
// temporary file), and forwards it from that buffer; the inspection gate
// is taken only once the body has arrived, so without this bound bodies
// trickled in over many connections, from many addresses, each within its
// own limits, were held without end. A client's further bodies are
// refused once half the bound is taken, so that a few clients cannot
// take it all (as the gate's queue). One bodyHolds serves every
// configuration: a reload changes the bound, not what is held.
type bodyHolds struct {
	mu      sync.Mutex // guards n and clients
	n       int
	clients map[netip.Prefix]int
}

// hold takes one of at most limit bodies for client, or returns
// errBodiesHeld (the bound reached) or errClientShare (the client holds a
// body and half the bound is taken). done releases it; it may be called
// more than once.
func (h *bodyHolds) hold(client netip.Prefix, limit int) (done func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.clients[client]
	switch {
	case h.n >= limit:
		return nil, errBodiesHeld
	case c > 0 && h.n >= (limit+1)/2:
		return nil, errClientShare
	}
	if h.clients == nil {
		h.clients = map[netip.Prefix]int{}
	}
	h.n++
	h.clients[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.n--
			if h.clients[client]--; h.clients[client] <= 0 {
				delete(h.clients, client)
			}
		})
	}, nil
}

// len is the number of bodies held.
func (h *bodyHolds) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
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
