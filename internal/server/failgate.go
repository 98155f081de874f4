package server

import (
	"container/list"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"moat/internal/flow"
)

// Failed public calls are bounded per source.
//
// A join or a re-attestation is anonymous until what it carries holds, and
// refusing one costs a signature check (its CSR's) and a store read (its
// token's or its pinned key's: an etcd read in a cluster). Each source
// (flow.SourceKey: an IPv4 address, an IPv6 /64) may fail publicFailBurst
// of them at once, and earns one more every failInterval (ten a minute);
// past that, its joins and re-attestations are answered 429 with
// Retry-After before their body is read, until one has drained. An honest
// source fails a few times at most (a mistyped or spent token, an agent
// retrying on its backoff), and ten failures a minute cost the server ten
// reads and checks. Only refusals of what the caller sent count: a call
// that succeeds spends nothing, so a fleet joining behind one NAT address
// is not slowed by its own joins, but it does wait with a neighbour whose
// calls fail: a valid token cannot be told from another before the store
// is read. Calls admitted together are checked together; their failures
// past the burst are paid back by a longer wait, so over time a source's
// failures keep to the rate whatever it sends at once.
//
// The table holds maxFailSources sources, dropping the least recently
// failed when full. A source is throttled failInterval past its last
// failure (longer only after calls admitted together failed), so to have
// one forgotten while it is throttled, maxFailSources other sources must
// fail in those six seconds. The bound is each server's own: servers
// sharing a store do not share their tables.
const (
	publicFailBurst  = 10
	publicFailWindow = time.Minute
	maxFailSources   = 1 << 14 // some 200 bytes each: about 3.5 MiB
)

// failGate is a table of sources' failures, each a cell rate (GCRA): due
// is when the source's failures will have drained.
type failGate struct {
	mu  sync.Mutex // guards m and lru
	m   map[netip.Prefix]*list.Element
	lru list.List // of *failSource, the most recently failed first
}

type failSource struct {
	key netip.Prefix
	due time.Time
}

// failInterval is how long one failure takes to drain.
const failInterval = publicFailWindow / publicFailBurst

// wait is how long a call from addr must wait, zero when it may be made
// now.
func (g *failGate) wait(addr netip.Addr, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.m[flow.SourceKey(addr)]
	if e == nil {
		return 0
	}
	return max(0, e.Value.(*failSource).due.Sub(now)-(publicFailWindow-failInterval))
}

// fail counts a failed call from addr.
func (g *failGate) fail(addr netip.Addr, now time.Time) {
	key := flow.SourceKey(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[netip.Prefix]*list.Element{}
	}
	e := g.m[key]
	if e == nil {
		// Sources whose failures have drained are forgotten as new ones
		// come, and the least recently failed when the table is full.
		for b := g.lru.Back(); b != nil; b = g.lru.Back() {
			if len(g.m) < maxFailSources && b.Value.(*failSource).due.After(now) {
				break
			}
			delete(g.m, b.Value.(*failSource).key)
			g.lru.Remove(b)
		}
		e = g.lru.PushFront(&failSource{key: key, due: now})
		g.m[key] = e
	} else {
		g.lru.MoveToFront(e)
	}
	src := e.Value.(*failSource)
	if src.due.Before(now) {
		src.due = now
	}
	src.due = src.due.Add(failInterval)
}

// len is the number of sources held.
func (g *failGate) len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

// publicSource is the address a public call came from.
func publicSource(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// admitPublic refuses a public call, before anything of it is read, when
// its source is past its failures: 429 with Retry-After, counted and
// summarised with the other refusals but not logged one by one.
func (s *Server) admitPublic(w http.ResponseWriter, r *http.Request, action string) bool {
	d := s.failed.wait(publicSource(r), s.now())
	if d == 0 {
		return true
	}
	s.countRefusal(sourceOf(r, nil), action, reasonThrottled)
	err := &httpError{code: http.StatusTooManyRequests, retryAfter: d}
	err.msg = fmt.Sprintf("too many failed joins and re-attestations from this address (%d at once, then one every %s); try again in %ds",
		publicFailBurst, failInterval, err.retrySeconds())
	writeError(w, err)
	return false
}

// refusePublic counts a refused public call, and against its source when
// what the caller sent was refused (a 4xx), not when the server failed.
func (s *Server) refusePublic(r *http.Request, action, reason string, err error) {
	s.refuseReason(r, nil, action, reason, err)
	var he *httpError
	if errors.As(err, &he) && he.code < 500 {
		s.failed.fail(publicSource(r), s.now())
	}
}
