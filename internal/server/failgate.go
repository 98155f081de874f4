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
// is read. A call takes its place in the burst when it is admitted, and
// gives it back when it ends without failing: calls made at once are
// admitted only as far as the burst has room for all of them failing, so
// a source never has more checked than the burst allows, however many it
// sends together (and a fleet's eleventh join at once waits for the
// Retry-After).
//
// The table holds maxFailSources sources, dropping the least recently
// failed when full. A source is throttled failInterval past its last
// failure, so to have one forgotten while it is throttled, maxFailSources
// other sources must fail in those six seconds. The bound is each server's own: servers
// sharing a store do not share their tables.
const (
	publicFailBurst  = 10
	publicFailWindow = time.Minute
	maxFailSources   = 1 << 14 // some 200 bytes each: about 3.5 MiB
)

// failGate is a table of sources' failures, each a cell rate (GCRA): due
// is when the source's failures will have drained. Calls admitted and not
// yet ended are held apart, each counted as a failure until it ends.
type failGate struct {
	mu   sync.Mutex // guards m, lru and held
	m    map[netip.Prefix]*list.Element
	lru  list.List // of *failSource, the most recently failed first
	held map[netip.Prefix]int
}

type failSource struct {
	key netip.Prefix
	due time.Time
}

// failInterval is how long one failure takes to drain.
const failInterval = publicFailWindow / publicFailBurst

// wait is how long a call from addr must wait, zero when it may be made
// now (admit is the call's own check).
func (g *failGate) wait(addr netip.Addr, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waitLocked(flow.SourceKey(addr), now)
}

// waitLocked is wait for the source key, counting its calls in flight
// as failed.
func (g *failGate) waitLocked(key netip.Prefix, now time.Time) time.Duration {
	due := now
	if e := g.m[key]; e != nil && e.Value.(*failSource).due.After(due) {
		due = e.Value.(*failSource).due
	}
	due = due.Add(time.Duration(g.held[key]) * failInterval)
	return max(0, due.Sub(now)-(publicFailWindow-failInterval))
}

// admit lets a call from addr in when its source has room for it to fail,
// holding that room until done is called with whether it failed (a
// failure is then counted); otherwise it says how long the call must
// wait.
func (g *failGate) admit(addr netip.Addr, now time.Time) (done func(failed bool, now time.Time), wait time.Duration) {
	key := flow.SourceKey(addr)
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := g.waitLocked(key, now); d > 0 {
		return nil, d
	}
	if g.held == nil {
		g.held = map[netip.Prefix]int{}
	}
	g.held[key]++
	var once sync.Once
	return func(failed bool, now time.Time) {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.held[key]--; g.held[key] <= 0 {
				delete(g.held, key)
			}
			if failed {
				g.failLocked(key, now)
			}
		})
	}, 0
}

// failLocked counts a failed call from the source key.
func (g *failGate) failLocked(key netip.Prefix, now time.Time) {
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
// summarised with the other refusals but not logged one by one. An
// admitted call holds its place in its source's failures until
// call.end.
func (s *Server) admitPublic(w http.ResponseWriter, r *http.Request, action string) (*publicCall, bool) {
	done, d := s.failed.admit(publicSource(r), s.now())
	if d == 0 {
		return &publicCall{s: s, r: r, action: action, done: done}, true
	}
	s.countRefusal(sourceOf(r, nil), action, reasonThrottled)
	err := &httpError{code: http.StatusTooManyRequests, retryAfter: d}
	err.msg = fmt.Sprintf("too many failed joins and re-attestations from this address (%d at once, those in flight counted, then one every %s); try again in %ds",
		publicFailBurst, failInterval, err.retrySeconds())
	writeError(w, err)
	return nil, false
}

// publicCall is an admitted public call.
type publicCall struct {
	s      *Server
	r      *http.Request
	action string
	done   func(failed bool, now time.Time)
	failed bool
}

// refuse counts the call as refused, and against its source when what
// the caller sent was refused (a 4xx), not when the server failed.
func (c *publicCall) refuse(reason string, err error) {
	c.s.refuseReason(c.r, nil, c.action, reason, err)
	var he *httpError
	if errors.As(err, &he) && he.code < 500 {
		c.failed = true
	}
}

// end gives the call's place in its source's failures back, or counts
// its failure.
func (c *publicCall) end() { c.done(c.failed, c.s.now()) }
