package server

import (
	"slices"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
)

// TestPruneDropsLongExpiredSerials: a serial revoked by a move leaves the
// list once its SVID expired more than revokedKeep ago, by the server's
// clock, and not a second before; the list's Pruned then covers it. So
// does one listed without a NotAfter (as before NotAfters were kept) whose
// issued record gives it. A serial still valid, one listed without a
// NotAfter nothing gives, and a revoked node ID stay. Pruning twice drops
// nothing more and is audited once.
func TestPruneDropsLongExpiredSerials(t *testing.T) {
	ctx := t.Context()
	var mu sync.Mutex
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	set := func(t time.Time) {
		mu.Lock()
		defer mu.Unlock()
		now = t
	}
	srv, st, audited := unstartedServer(t, clock)
	start := clock()
	short, long := start.Add(10*time.Minute), start.Add(3*revokedKeep)
	if err := putJSON(ctx, st, prefixService+"web", api.Registration{Name: "web", Node: "n1", Port: 80}); err != nil {
		t.Fatal(err)
	}
	for _, rec := range []issuedRecord{
		{Node: "n1", Service: "web", Serial: "a1", Expires: short},
		{Node: "n1", Service: "web", Serial: "b1", Expires: long},
		{Node: "n5", Service: "db", Serial: "d1", Expires: short},
	} {
		if err := putJSON(ctx, st, issuedKey(rec.Node, rec.Serial), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.placeService(ctx, &caller{}, "web", &api.Registration{Name: "web", Node: "n2", Port: 80}); err != nil {
		t.Fatal(err)
	}
	node, err := identity.NodeID(srv.td, "n9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.addRevocations(ctx, []string{node.String()}, map[string]time.Time{"c1": {}, "d1": {}}); err != nil {
		t.Fatal(err)
	}
	before, err := srv.currentRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !before.Expires["a1"].Equal(short) || !before.Expires["b1"].Equal(long) || len(before.Expires) != 2 {
		t.Fatalf("revocations %+v: want the NotAfter of a1 and b1 kept, and no other", before)
	}

	set(short.Add(revokedKeep)) // not yet more than revokedKeep past a1's end
	if err := srv.sweepRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	learnt, err := srv.currentRevocations(ctx)
	if err != nil || learnt.Version != before.Version+1 || len(learnt.Serials) != 4 || !learnt.Expires["d1"].Equal(short) || len(learnt.Expires) != 3 {
		t.Fatalf("revocations %+v (%v) at a1's end plus revokedKeep, want every serial, d1's NotAfter learnt", learnt, err)
	}

	set(short.Add(revokedKeep + time.Second))
	for round := range 2 {
		if err := srv.sweepRevocations(ctx); err != nil {
			t.Fatal(err)
		}
		rev, err := srv.currentRevocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Sorted(slices.Values(rev.Serials))
		if !slices.Equal(got, []string{"b1", "c1"}) || !slices.Equal(rev.IDs, []string{node.String()}) {
			t.Fatalf("round %d: revocations %+v, want serials b1 and c1 and node n9", round, rev)
		}
		if rev.Version != learnt.Version+1 || !rev.Pruned.Equal(short) || len(rev.Expires) != 1 {
			t.Fatalf("round %d: revocations %+v, want version %d, pruned at %s, one NotAfter", round, rev, learnt.Version+1, short)
		}
		if got := srv.trust.Revocations(); got.Version != rev.Version {
			t.Fatalf("round %d: the server trusts revocations of version %d, want %d", round, got.Version, rev.Version)
		}
	}
	var pruned []audit.Entry
	for _, e := range audited() {
		if e.Action == ActionRevocationsPruned {
			pruned = append(pruned, e)
		}
	}
	if len(pruned) != 1 || pruned[0].Detail["serials_pruned"] != "2" || pruned[0].Detail["pruned"] != short.Format(time.RFC3339) {
		t.Fatalf("audit entries %+v, want one %s with serials_pruned 2", pruned, ActionRevocationsPruned)
	}
}
