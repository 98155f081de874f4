package flow

import (
	"net/netip"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Gate bounds the refusal records a producer writes about what others
// send it (the gateway's security events, the mesh's refused handshakes,
// the agent's refused break-glass connections).
// A client refused as fast as it can send would otherwise turn every
// refusal into a record: the records would exhaust the node's flow quota
// at the control plane and fill its spool, which then drops what comes
// next, the attack the flood was cover for among it.
//
// Each (client, kind) has a bucket of GateClientBurst records, refilled at
// GateClientRate a second, the client being its SourceKey (an IPv4
// address, an IPv6 /64) and, where the producer verified it, its identity
// (AllowPeer: workloads behind one address have a share each); each kind
// has one for the whole producer (GateKindBurst, GateKindRate), against
// floods from many addresses. An
// event past either is counted, not written, and Flush turns the counts
// into summaries: one per (client, kind), carrying the last such event and
// how many were left out (Moat.Suppressed), then one per kind for clients
// past GateMaxSummaries. The first GateClientBurst events of a client are
// always written in full, so detection that counts them (20 or 10 in five
// minutes) still sees a spiking client. T is what the producer keeps of
// an event to write it later. The zero Gate is ready to use.
type Gate[T any] struct {
	mu      sync.Mutex // guards the fields below
	clients map[gateKey]*rate.Limiter
	kinds   map[string]*rate.Limiter
	held    map[gateKey]*Held[T]
	others  map[string]int // suppressed beyond the tracked clients, by kind
	swept   time.Time
}

// Bounds of a Gate.
const (
	GateClientRate   = 5
	GateClientBurst  = 50
	GateKindRate     = 200
	GateKindBurst    = 1000
	GateMaxClients   = 1 << 16
	GateMaxSummaries = 256
)

type gateKey struct {
	client netip.Prefix
	peer   string
	kind   string
}

// Held is what a Gate left out of one kind since its last Flush: N events
// of one client, the last of them Last; or, when Client is false, N events
// of clients past GateMaxSummaries, Last the zero T.
type Held[T any] struct {
	Kind   string
	Client bool
	N      int
	Last   T
}

// Allow reports whether ev, of kind from client, is written now; when
// not, it is counted for the next Flush.
func (g *Gate[T]) Allow(client netip.Addr, kind string, ev T, now time.Time) bool {
	return g.AllowPeer(client, "", kind, ev, now)
}

// AllowPeer is Allow for a client that also proved an identity, peer (a
// verified SPIFFE ID, never one only claimed, which the client could vary
// at will): each (address, identity) is a client of its own.
func (g *Gate[T]) AllowPeer(client netip.Addr, peer, kind string, ev T, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clients == nil {
		g.clients, g.kinds, g.held, g.others = map[gateKey]*rate.Limiter{}, map[string]*rate.Limiter{}, map[gateKey]*Held[T]{}, map[string]int{}
	}
	if now.Sub(g.swept) > time.Minute {
		g.sweep(now)
	}
	k := gateKey{SourceKey(client), peer, kind}
	cl := g.clients[k]
	if cl == nil && len(g.clients) < GateMaxClients {
		cl = rate.NewLimiter(GateClientRate, GateClientBurst)
		g.clients[k] = cl
	}
	kl := g.kinds[kind]
	if kl == nil {
		kl = rate.NewLimiter(GateKindRate, GateKindBurst)
		g.kinds[kind] = kl
	}
	// A client's own bucket is asked first, so that one client over its
	// share does not also drain the kind's.
	if cl != nil && cl.AllowN(now, 1) && kl.AllowN(now, 1) {
		return true
	}
	h := g.held[k]
	switch {
	case h != nil:
	case cl != nil && len(g.held) < GateMaxSummaries:
		h = &Held[T]{Kind: kind, Client: true}
		g.held[k] = h
	default:
		g.others[kind]++
		return false
	}
	h.N++
	h.Last = ev
	return false
}

// sweep drops the buckets of clients that have been quiet long enough to
// be full again.
func (g *Gate[T]) sweep(now time.Time) {
	g.swept = now
	for k, l := range g.clients {
		if _, held := g.held[k]; !held && l.TokensAt(now) >= GateClientBurst {
			delete(g.clients, k)
		}
	}
}

// Flush returns what was left out since the last Flush: the clients' first,
// then the counts of clients past GateMaxSummaries, by kind.
func (g *Gate[T]) Flush() []Held[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Held[T]
	for k, h := range g.held {
		out = append(out, *h)
		delete(g.held, k)
	}
	kinds := make([]string, 0, len(g.others))
	for kind := range g.others {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		out = append(out, Held[T]{Kind: kind, N: g.others[kind]})
		delete(g.others, kind)
	}
	return out
}
