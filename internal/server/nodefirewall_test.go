package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// TestStandingBypassesOwner: of the nodes' latest firewall reports, each
// server of a cluster answers for those it took, and for those of a
// server gone the first live member does, so that every standing
// firewall_bypass alert is held by one server: none is posted by all,
// and none by none. A revoked node's is held by none.
func TestStandingBypassesOwner(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := Init(ctx, st, InitConfig{TrustDomain: "example.org", AdminDir: filepath.Join(dir, "admin")}); err != nil {
		t.Fatal(err)
	}
	bypass := &api.FirewallHealth{BypassCount: 1, Bypasses: []api.FirewallBypass{{Family: "inet", Table: "sneak", Chain: "out", Handle: 4, Kind: api.BypassMark}}}
	for node, server := range map[string]string{"n1": "s1", "n2": "s2", "n3": "gone", "n4": "s1"} {
		if err := putJSON(ctx, st, prefixBypass+node, standingBypass{Server: server, Firewall: bypass}); err != nil {
			t.Fatal(err)
		}
	}
	n4, err := identity.NodeID(spiffeid.RequireTrustDomainFromString("example.org"), "n4")
	if err != nil {
		t.Fatal(err)
	}
	if err := putJSON(ctx, st, keyRevocations, identity.Revocations{Version: 1, IDs: []string{n4.String()}}); err != nil {
		t.Fatal(err)
	}
	servers := map[string]*Server{}
	stops := map[string]func(){}
	for _, name := range []string{"s1", "s2"} {
		srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Name: name, Store: st, Logger: slog.New(slog.DiscardHandler),
			Audit: audit.RecorderFunc(func(context.Context, audit.Entry) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = srv.Run(sctx); close(done) }()
		stops[name] = func() { stop(); <-done }
		defer stops[name]()
		servers[name] = srv
	}
	waitUntil(t, "both members listed", func() bool {
		ms, err := servers["s1"].Members(ctx)
		return err == nil && len(ms) == 2 && ms[0].Alive && ms[1].Alive
	})
	held := func(name string) string {
		t.Helper()
		sts, err := servers[name].StandingAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, st := range sts {
			out = append(out, fmt.Sprintf("%s:%s:%s", st.Subject, st.Detail[detailBypassRules], st.Detail[detailBypassList]))
		}
		return fmt.Sprint(out)
	}
	const rule = ":1:inet sneak chain out handle 4: mark"
	if got, want := held("s1"), "[n1"+rule+" n3"+rule+"]"; got != want {
		t.Errorf("s1 holds %s, want %s: its own report and the gone server's, as the first member, not the revoked node's", got, want)
	}
	if got, want := held("s2"), "[n2"+rule+"]"; got != want {
		t.Errorf("s2 holds %s, want %s", got, want)
	}
	t.Log("s2 stops: s1 holds its node's bypass too")
	stops["s2"]()
	if got, want := held("s1"), "[n1"+rule+" n2"+rule+" n3"+rule+"]"; got != want {
		t.Errorf("s1 holds %s, want %s", got, want)
	}
}
