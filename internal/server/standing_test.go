package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/detect"
	"moat/internal/detect/amtest"
	"moat/internal/store"
	"moat/internal/testkit"
)

// ports are the loopback ports of this package's tests (testkit.Ports).
var ports = testkit.NewPorts(19300, 19400)

// resentKeys is a detection engine's Notifier: a Dispatcher, and the
// keys of the alerts each re-send handed it.
type resentKeys struct {
	*detect.Dispatcher
	mu   sync.Mutex // guards sets
	sets [][]string
}

func (r *resentKeys) Resend(as []detect.Alert) {
	var keys []string
	for _, a := range as {
		keys = append(keys, a.Key)
	}
	r.mu.Lock()
	r.sets = append(r.sets, keys)
	r.mu.Unlock()
	r.Dispatcher.Resend(as)
}

// last returns the keys of the last re-send, nil if there was none.
func (r *resentKeys) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

// TestStandingAlertHandover: the standing alerts of a server that stops
// without a word (its membership left to lapse) are posted by another
// server once it sees the first gone, and meanwhile they stand at a real
// Alertmanager: the endsAt of the stopped server's last post lies beyond
// the time the other's first post comes, at the most frequent resend the
// alerts file takes. They lapsed there before, at four resend intervals,
// when the membership takes half a minute to lapse.
func TestStandingAlertHandover(t *testing.T) {
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
	port, err := ports.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	am := amtest.Start(t, port)
	settings, err := detect.Load([]byte("resend: 1s\nsweep: 1s\nsinks:\n  - {name: am, type: alertmanager, url: \""+am.URL()+"\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Now().Truncate(time.Second)}

	t.Log("s1 took n1's report of a bypass, and the policy is widened")
	bypass := &api.FirewallHealth{BypassCount: 1, Bypasses: []api.FirewallBypass{{Family: "inet", Table: "sneak", Chain: "out", Handle: 4, Kind: api.BypassMark}}}
	if err := putJSON(ctx, st, prefixBypass+"n1", standingBypass{Server: "s1", Firewall: bypass}); err != nil {
		t.Fatal(err)
	}
	wide := api.Policy{Version: 3, YAML: "default: deny\nrules:\n  - name: anyone\n    from: [\"*\"]\n    to: api\n    ports: [8080]\n", Applied: clk.now(), By: "spiffe://example.org/admin/alice"}
	if err := putJSON(ctx, st, keyPolicy, wide); err != nil {
		t.Fatal(err)
	}
	keys := []string{detect.DedupKey(detect.RuleFirewallBypass, "n1"), detect.DedupKey(detect.RulePolicyWidened, detect.PolicySubject)}

	type member struct {
		srv  *Server
		eng  *detect.Engine
		sent *resentKeys
		stop func()
	}
	members := map[string]*member{}
	for _, name := range []string{"s1", "s2"} {
		srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Name: name, Store: st, Logger: slog.New(slog.DiscardHandler), Now: clk.now,
			Audit: audit.RecorderFunc(func(context.Context, audit.Entry) error { return nil })})
		if err != nil {
			t.Fatal(err)
		}
		d, err := detect.NewDispatcherFromSettings(settings, nil, detect.DispatcherConfig{})
		if err != nil {
			t.Fatal(err)
		}
		sent := &resentKeys{Dispatcher: d}
		eng, err := detect.New(detect.Config{Now: clk.now, Notifier: sent, Sweep: settings.Sweep, Resend: settings.Resend,
			Standing: func() ([]detect.Standing, error) { return srv.StandingAlerts(ctx) }})
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { _ = srv.Run(sctx) })
		wg.Go(func() { _ = d.Run(sctx) })
		members[name] = &member{srv: srv, eng: eng, sent: sent, stop: sync.OnceFunc(func() { stop(); wg.Wait() })}
		defer members[name].stop()
	}
	waitUntil(t, "both members listed", func() bool {
		ms, err := members["s1"].srv.Members(ctx)
		return err == nil && len(ms) == 2 && ms[0].Alive && ms[1].Alive
	})

	t.Log("s1 posts both alerts, s2 neither")
	posted := time.Now()
	members["s1"].eng.Sweep()
	members["s2"].eng.Sweep()
	if got := members["s1"].sent.last(); len(got) != 2 || got[0] != keys[0] || got[1] != keys[1] {
		t.Fatalf("s1 re-sent %q, want %q", got, keys)
	}
	if got := members["s2"].sent.last(); got != nil {
		t.Fatalf("s2 re-sent %q, want nothing: s1 answers for both", got)
	}
	var first map[string]amtest.Alert
	testkit.WaitFor(t, "both alerts active at Alertmanager", func() bool {
		first = am.Active()
		_, ok1 := first[keys[0]]
		_, ok2 := first[keys[1]]
		return ok1 && ok2
	})

	t.Log("s1 stops at once, leaving its membership to lapse, as a server that crashed does")
	members["s1"].stop()
	if err := putJSON(ctx, st, prefixMember+"s1", memberRecord{Name: "s1", Addr: "127.0.0.1:1", Started: clk.now(), Seen: clk.now()}); err != nil {
		t.Fatal(err)
	}
	start := clk.now()
	for members["s2"].sent.last() == nil {
		if clk.now().Sub(start) > time.Hour {
			t.Fatal("s2 never took s1's standing alerts")
		}
		clk.advance(settings.Sweep)
		members["s2"].eng.Sweep()
	}
	gap := clk.now().Sub(start)
	if got := members["s2"].sent.last(); len(got) != 2 || got[0] != keys[0] || got[1] != keys[1] {
		t.Fatalf("s2 re-sent %q, want %q", got, keys)
	}
	t.Logf("s2 posted them %s after s1's last post", gap)
	for _, k := range keys {
		if left := first[k].EndsAt.Sub(posted); left < gap {
			t.Errorf("%s: s1's post stood %s at Alertmanager, and s2's came %s after it: it lapsed", k, left, gap)
		}
	}
	testkit.WaitFor(t, "s2's post at Alertmanager", func() bool {
		now := am.Active()
		return now[keys[0]].EndsAt.After(first[keys[0]].EndsAt) && now[keys[1]].EndsAt.After(first[keys[1]].EndsAt)
	})
}
