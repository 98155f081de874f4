package gateway

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"moat/internal/flow"
)

// eventGate bounds the security events the gateway writes. A client
// answered 429, 400 or 403 as fast as it can send would otherwise turn
// every refusal into a record: the records would exhaust the node's flow
// quota at the control plane and fill its spool, which then drops what
// comes next, the attack the flood was cover for among it.
//
// Each (client, kind) has a bucket of eventClientBurst records, refilled at
// eventClientRate a second; each kind has one for the whole gateway
// (eventKindBurst, eventKindRate), against floods from many addresses. An
// event past either is counted, not written, and flush turns the counts
// into summaries: one record per (client, kind), carrying the last such
// request and how many were left out (flow.Moat.Suppressed), then one per
// kind for clients past maxEventSummaries. The first eventClientBurst
// events of a client are always written in full, so detection that counts
// them (waf_spike: 20 in five minutes) still sees a spiking client.
type eventGate struct {
	mu      sync.Mutex // guards the fields below
	clients map[gateKey]*rate.Limiter
	kinds   map[string]*rate.Limiter
	held    map[gateKey]*heldEvents
	others  map[string]int // suppressed beyond the tracked clients, by kind
	swept   time.Time
}

const (
	eventClientRate   = 5
	eventClientBurst  = 50
	eventKindRate     = 200
	eventKindBurst    = 1000
	maxEventClients   = 1 << 16
	maxEventSummaries = 256
)

type gateKey struct {
	client netip.Prefix
	kind   string
}

type heldEvents struct {
	n    int
	last event
}

// allow reports whether ev is written now; when not, it is counted for the
// next flush.
func (g *eventGate) allow(ev *event, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clients == nil {
		g.clients, g.kinds, g.held, g.others = map[gateKey]*rate.Limiter{}, map[string]*rate.Limiter{}, map[gateKey]*heldEvents{}, map[string]int{}
	}
	if now.Sub(g.swept) > time.Minute {
		g.sweep(now)
	}
	k := gateKey{flow.SourceKey(ev.client), ev.kind}
	cl := g.clients[k]
	if cl == nil && len(g.clients) < maxEventClients {
		cl = rate.NewLimiter(eventClientRate, eventClientBurst)
		g.clients[k] = cl
	}
	kl := g.kinds[ev.kind]
	if kl == nil {
		kl = rate.NewLimiter(eventKindRate, eventKindBurst)
		g.kinds[ev.kind] = kl
	}
	// A client's own bucket is asked first, so that one client over its
	// share does not also drain the kind's.
	if cl != nil && cl.AllowN(now, 1) && kl.AllowN(now, 1) {
		return true
	}
	h := g.held[k]
	switch {
	case h != nil:
	case cl != nil && len(g.held) < maxEventSummaries:
		h = &heldEvents{}
		g.held[k] = h
	default:
		g.others[ev.kind]++
		return false
	}
	h.n++
	h.last = *ev
	return false
}

// sweep drops the buckets of clients that have been quiet long enough to
// be full again.
func (g *eventGate) sweep(now time.Time) {
	g.swept = now
	for k, l := range g.clients {
		if _, held := g.held[k]; !held && l.TokensAt(now) >= eventClientBurst {
			delete(g.clients, k)
		}
	}
}

// flush returns the summaries of what was left out since the last flush.
func (g *eventGate) flush() []event {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []event
	for k, h := range g.held {
		ev := h.last
		ev.suppressed = h.n
		ev.reason = fmt.Sprintf("%s; %d such events from this client were counted, not recorded one by one (this is the last)", ev.reason, h.n)
		out = append(out, ev)
		delete(g.held, k)
	}
	kinds := make([]string, 0, len(g.others))
	for kind := range g.others {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		n := g.others[kind]
		out = append(out, event{kind: kind, suppressed: n, blocked: true,
			reason: fmt.Sprintf("%d %s events from clients past the %d summarised one by one were counted, not recorded", n, kind, maxEventSummaries)})
		delete(g.others, kind)
	}
	return out
}
