package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/server"
)

// firewallEntries returns the node.firewall entries of the audit log, as
// "TARGET RULES".
func (c *cluster) firewallEntries() []string {
	c.t.Helper()
	entries, err := c.alog.Entries(0, c.alog.Size())
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Entry.Action == server.ActionNodeFirewall {
			out = append(out, e.Entry.Target+" "+e.Entry.Detail["bypass_rules"])
		}
	}
	return out
}

// A node's report of its firewall's bypasses is its word: root on a node
// sends what it likes. A report past its bounds or not of its shape (too
// many rules, a count that is no count, names longer than nftables
// holds, a kind or family nftables has not) is refused whole, and
// nothing of it is audited or alerted on; a table name of control
// characters and markup, which nftables takes, is kept, audited and
// alerted on, shown escaped.
func TestNodeFirewallReportBounded(t *testing.T) {
	c := newCluster(t)
	got := c.detecting(nil)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	a, stop := c.runAgent(c.agentConfig("n1"))
	eventually(t, "n1's SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	n1 := c.nodeClient("n1")
	send := func(f *api.FirewallHealth) error {
		return n1.Call(t.Context(), http.MethodPost, api.PathNodeHealth, api.NodeHealth{Services: map[string][]api.ListenerHealth{}, Firewall: f}, nil)
	}
	rule := api.FirewallBypass{Family: "inet", Table: "sneak", Chain: "out", Handle: 4, Kind: api.BypassMark}
	many := make([]api.FirewallBypass, api.MaxFirewallBypasses+1)
	for i := range many {
		many[i] = rule
	}
	with := func(f func(*api.FirewallBypass)) *api.FirewallHealth {
		b := rule
		f(&b)
		return &api.FirewallHealth{Bypasses: []api.FirewallBypass{b}, BypassCount: 1}
	}
	for _, tc := range []struct {
		name string
		f    *api.FirewallHealth
		code int
		want string
	}{
		{"too many rules", &api.FirewallHealth{Bypasses: many, BypassCount: len(many)}, http.StatusRequestEntityTooLarge, "firewall.bypasses: 33 rules listed; at most 32"},
		{"a count past its bound", &api.FirewallHealth{Bypasses: many[:1], BypassCount: 1 << 40}, http.StatusRequestEntityTooLarge, "firewall.bypass_count"},
		{"a count below the rules listed", &api.FirewallHealth{Bypasses: many[:2], BypassCount: 1}, http.StatusBadRequest, "firewall.bypass_count"},
		{"a table name longer than nftables holds", with(func(b *api.FirewallBypass) { b.Table = strings.Repeat("t", 256) }), http.StatusBadRequest, "firewall.bypasses[0].table"},
		{"no chain", with(func(b *api.FirewallBypass) { b.Chain = "" }), http.StatusBadRequest, "firewall.bypasses[0].chain"},
		{"another kind", with(func(b *api.FirewallBypass) { b.Kind = "<!channel>" }), http.StatusBadRequest, "firewall.bypasses[0].kind"},
		{"another family", with(func(b *api.FirewallBypass) { b.Family = "ipx" }), http.StatusBadRequest, "firewall.bypasses[0].family"},
	} {
		c.clk.Advance(10 * time.Second) // the node's health reports are rate-limited
		err := send(tc.f)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %d and %q", tc.name, err, tc.code, tc.want)
		}
	}
	if e := c.firewallEntries(); len(e) != 0 {
		t.Errorf("refused reports audited: %q", e)
	}

	t.Log("a table named with control characters and markup: kept, audited, alerted on, escaped")
	c.clk.Advance(10 * time.Second)
	if err := send(with(func(b *api.FirewallBypass) { b.Table = "evil\x1b[2J\n\u202e<!channel>" })); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the firewall_bypass alert", func() bool { return got.fired(detect.RuleFirewallBypass) })
	al := got.last(detect.RuleFirewallBypass)
	if al.Subject != "n1" || al.Details["bypass_rules"] != "1" || !strings.Contains(al.Details["rules"], "<!channel>") {
		t.Errorf("alert %+v: want n1's, one rule, naming its table", al)
	}
	if strings.ContainsFunc(al.Details["rules"], func(r rune) bool { return !unicode.IsPrint(r) }) {
		t.Errorf("rules %q: the table's name is not escaped", al.Details["rules"])
	}
	t.Log("the same report again: no second entry; none left: resolved")
	c.clk.Advance(10 * time.Second)
	if err := send(with(func(b *api.FirewallBypass) { b.Table = "evil\x1b[2J\n\u202e<!channel>" })); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(10 * time.Second)
	if err := send(&api.FirewallHealth{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the firewall_bypass alert resolved", func() bool { return got.last(detect.RuleFirewallBypass).Status == detect.StatusResolved })
	if e := strings.Join(c.firewallEntries(), ","); e != "n1 1,n1 0" {
		t.Errorf("audit entries %s: %q, want n1's bypass and its clearing", server.ActionNodeFirewall, e)
	}
}

// reposted is a Notifier and Resender: the alerts raised, and those posted
// again to Alertmanager.
type reposted struct {
	alerts
	mu     sync.Mutex // guards resent
	resent [][]detect.Alert
}

func (r *reposted) Resend(as []detect.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resent = append(r.resent, as)
}

// posts returns how many re-sends there were, and the last.
func (r *reposted) posts() (int, []detect.Alert) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.resent) == 0 {
		return 0, nil
	}
	return len(r.resent), r.resent[len(r.resent)-1]
}

// A firewall bypass stands as long as the node reports it, which may be
// longer than the server that raised its alert runs. The restarted
// server's engine remembers no alert, but the node's report is in the
// store: the alert is posted to Alertmanager again from it at the first
// sweep, without a second notice to Slack or PagerDuty, and stops being
// posted when the node reports the bypass gone.
func TestBypassAlertStandsAcrossRestart(t *testing.T) {
	c := newCluster(t)
	first := c.detecting(nil)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	a, stop := c.runAgent(c.agentConfig("n1"))
	eventually(t, "n1's SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	n1 := c.nodeClient("n1")
	send := func(f *api.FirewallHealth) {
		t.Helper()
		c.clk.Advance(10 * time.Second) // the node's health reports are rate-limited
		if err := n1.Call(t.Context(), http.MethodPost, api.PathNodeHealth, api.NodeHealth{Services: map[string][]api.ListenerHealth{}, Firewall: f}, nil); err != nil {
			t.Fatal(err)
		}
	}
	send(&api.FirewallHealth{BypassCount: 1, Bypasses: []api.FirewallBypass{{Family: "inet", Table: "sneak", Chain: "out", Handle: 4, Kind: api.BypassMark}}})
	eventually(t, "the firewall_bypass alert", func() bool { return first.fired(detect.RuleFirewallBypass) })

	t.Log("the server restarts with a new engine")
	got := &reposted{}
	eng, err := detect.New(detect.Config{Notifier: got, Now: c.clk.Now, Sweep: time.Hour, Standing: func() ([]detect.Standing, error) {
		c.mu.Lock()
		srv := c.srv
		c.mu.Unlock()
		return srv.StandingAlerts(t.Context())
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go eng.Run(ctx)
	c.restartWith(eng)
	eng.Sweep()
	n, as := got.posts()
	if len(as) != 1 || as[0].Key != detect.DedupKey(detect.RuleFirewallBypass, "n1") || as[0].Status != detect.StatusFiring ||
		!strings.Contains(as[0].Details["rules"], "inet sneak chain out handle 4: mark") {
		t.Fatalf("posted again after the restart: %+v, want n1's firewall_bypass alert", as)
	}
	if got.fired(detect.RuleFirewallBypass) {
		t.Errorf("notified %+v after the restart: Slack and PagerDuty had the alert", got.last(detect.RuleFirewallBypass))
	}

	t.Log("n1 reports its bypass gone: resolved, and posted no more")
	n1 = c.nodeClient("n1") // the server's port changed
	send(&api.FirewallHealth{})
	eventually(t, "the alert resolved", func() bool { return got.last(detect.RuleFirewallBypass).Status == detect.StatusResolved })
	c.clk.Advance(time.Minute)
	eng.Sweep()
	if m, as := got.posts(); m != n {
		t.Errorf("posted again after the resolve: %+v", as)
	}
}
