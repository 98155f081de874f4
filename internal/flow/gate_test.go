package flow

import (
	"net/netip"
	"testing"
	"time"
)

// TestGate: a client's first GateClientBurst events of a kind pass, the
// rest are held for one summary keeping the last; an IPv6 /64 is one
// client; another kind has a share of its own; clients past
// GateMaxSummaries are counted by kind; a flush empties the gate, and the
// bucket refills with time.
func TestGate(t *testing.T) {
	var g Gate[int]
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("2001:db8::1")
	a2 := netip.MustParseAddr("2001:db8::ffff") // the same /64
	passed := 0
	for i := range GateClientBurst + 10 {
		addr := a
		if i%2 == 1 {
			addr = a2
		}
		if g.Allow(addr, "revoked", i, now) {
			passed++
		}
	}
	if passed != GateClientBurst {
		t.Errorf("%d of one /64's events passed, want %d", passed, GateClientBurst)
	}
	if !g.Allow(a, "unknown_authority", -1, now) {
		t.Error("another kind of the same client was held back")
	}
	// Clients past the burst, each held once, up to GateMaxSummaries
	// summaries; the rest are counted by kind. The kind's own bucket
	// (GateKindBurst) is spent first by clients in their burst.
	held := 1 // the /64 above
	for i := 0; held < GateMaxSummaries+5; i++ {
		c := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		for g.Allow(c, "expired", i, now) {
		}
		held++
	}
	sums := g.Flush()
	var clients, others, other int
	for _, h := range sums {
		switch {
		case h.Client && h.Kind == "revoked":
			clients++
			if h.N != 10 || h.Last != GateClientBurst+9 {
				t.Errorf("the /64's summary: %d held, last %d; want 10, last %d", h.N, h.Last, GateClientBurst+9)
			}
		case h.Client:
			clients++
		default:
			others++
			other = h.N
			if h.Kind != "expired" {
				t.Errorf("count of the clients past the summaries is of kind %q, want expired", h.Kind)
			}
		}
	}
	if clients != GateMaxSummaries || others != 1 || other != 5 {
		t.Errorf("%d client summaries and %d counts (%d); want %d and 1 (5)", clients, others, other, GateMaxSummaries)
	}
	if got := g.Flush(); len(got) != 0 {
		t.Errorf("a second flush returned %v", got)
	}
	if !g.Allow(a, "revoked", 0, now.Add(time.Second)) {
		t.Error("a client's bucket did not refill")
	}
}

// TestGatePeers: two identities behind one address have a share each; the
// same identity from another address too.
func TestGatePeers(t *testing.T) {
	var g Gate[int]
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4")
	pass := func(addr netip.Addr, peer string, n int) (passed int) {
		for i := range n {
			if g.AllowPeer(addr, peer, "policy_denied", i, now) {
				passed++
			}
		}
		return passed
	}
	if got := pass(a, "spiffe://example.org/svc/x", GateClientBurst+5); got != GateClientBurst {
		t.Errorf("%d of x's events passed, want %d", got, GateClientBurst)
	}
	if got := pass(a, "spiffe://example.org/svc/y", 3); got != 3 {
		t.Errorf("%d of y's events behind x's address passed, want 3", got)
	}
	if got := pass(b, "spiffe://example.org/svc/x", 3); got != 3 {
		t.Errorf("%d of x's events from another address passed, want 3", got)
	}
	sums := g.Flush()
	if len(sums) != 1 || sums[0].N != 5 || !sums[0].Client {
		t.Errorf("summaries %+v, want one of x's 5 held back", sums)
	}
}
