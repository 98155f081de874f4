package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow/flowstore"
	"moat/internal/store"
)

// TestSweepRevokesSVIDsLeftBehind: SVIDs recorded for a node their service
// is no longer registered on (a registry change whose server stopped
// before revoking them) are revoked by the sweep, once, on record; those
// of the node the service runs on, expired ones and records of older
// versions are left alone.
func TestSweepRevokesSVIDsLeftBehind(t *testing.T) {
	ctx := t.Context()
	srv, st, audited := unstartedServer(t, nil)
	now := time.Now()
	for _, r := range []api.Registration{{Name: "web", Node: "n3", Port: 80}, {Name: "db", Node: "n2", Port: 5432}} {
		if err := putJSON(ctx, st, prefixService+r.Name, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range []issuedRecord{
		{Node: "n1", Service: "web", Serial: "a1", Expires: now.Add(time.Hour)},    // left behind
		{Node: "n1", Service: "gone", Serial: "a2", Expires: now.Add(time.Hour)},   // service deregistered
		{Node: "n3", Service: "web", Serial: "b1", Expires: now.Add(time.Hour)},    // where web runs
		{Node: "n2", Service: "db", Serial: "b2", Expires: now.Add(time.Hour)},     // where db runs
		{Node: "n1", Service: "web", Serial: "b3", Expires: now.Add(-time.Minute)}, // expired
		{Node: "n1", Serial: "b4", Expires: now.Add(time.Hour)},                    // an older version's record
	} {
		if err := putJSON(ctx, st, issuedKey(rec.Node, rec.Serial), rec); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 2 {
		if err := srv.sweepLeft(ctx); err != nil {
			t.Fatal(err)
		}
		rev, err := srv.currentRevocations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rev.Serials)
		if !slices.Equal(rev.Serials, []string{"a1", "a2"}) || rev.Version != 1 || len(rev.IDs) != 0 {
			t.Fatalf("round %d: revocations %+v, want serials a1 and a2 at version 1", round, rev)
		}
		if got := srv.trust.Revocations(); got.Version != 1 {
			t.Fatalf("round %d: the server trusts revocations of version %d, want 1", round, got.Version)
		}
	}
	if entries := audited(); len(entries) != 1 || entries[0].Action != ActionSVIDLeft || entries[0].Detail["svids_revoked"] != "2" {
		t.Fatalf("audit entries %+v, want one %s with svids_revoked 2", entries, ActionSVIDLeft)
	}
}

// unstartedServer is a server over a store made by Init, not serving:
// for tests that call its periodic work themselves. now is its clock
// (nil: the system's); audited returns the entries it recorded so far.
func unstartedServer(t *testing.T, now func() time.Time) (srv *Server, st store.Store, audited func() []audit.Entry) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := Init(t.Context(), st, InitConfig{TrustDomain: "example.org", AdminDir: filepath.Join(dir, "admin")}); err != nil {
		t.Fatal(err)
	}
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(dir, "flows")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	var mu sync.Mutex
	var entries []audit.Entry
	srv, err = New(t.Context(), Config{Listen: "127.0.0.1:0", Store: st, Flows: fs, Logger: slog.New(slog.DiscardHandler), Now: now,
		Audit: audit.RecorderFunc(func(_ context.Context, e audit.Entry) error {
			mu.Lock()
			defer mu.Unlock()
			entries = append(entries, e)
			return nil
		})})
	if err != nil {
		t.Fatal(err)
	}
	return srv, st, func() []audit.Entry {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(entries)
	}
}
