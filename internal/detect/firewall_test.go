package detect

import (
	"testing"
	"time"

	"moat/internal/audit"
)

// nodeFirewall is the audit entry of node's firewall reporting n bypasses.
func nodeFirewall(node, n string) *audit.Entry {
	return &audit.Entry{Time: t0, Actor: "spiffe://moat.test/node/" + node, Role: "node", Action: ActionNodeFirewall, Target: node, Result: "ok",
		Detail: map[string]string{DetailBypassRules: n, "mark": n, "rules": "inet sneak chain out handle 4: mark\x1b[2J"}}
}

// TestFirewallBypass: a node's report of a bypass fires its alert once,
// printable; a report of none resolves it. The entry is the node's: it
// waits in the node's turn and its alert spends the node's budget, so a
// node that spent its budget raises no more by changing its firewall
// report, and another node's still reaches the sinks.
func TestFirewallBypass(t *testing.T) {
	clk := newClock()
	col := &collector{}
	e, err := New(Config{Now: clk.Now, Notifier: col, NodeAlerts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if src := (&item{entry: nodeFirewall("n1", "1")}).source(); src != "n1" {
		t.Fatalf("the entry waits in the turn of %q, want n1's", src)
	}
	e.process(item{entry: nodeFirewall("n1", "1")})
	e.process(item{entry: nodeFirewall("n1", "2")})
	got := col.all()
	if len(got) != 1 || got[0].Rule != RuleFirewallBypass || got[0].Status != StatusFiring || got[0].Subject != "n1" ||
		got[0].Severity != SeverityCritical || got[0].Details["rules"] != `inet sneak chain out handle 4: mark\x1b[2J` {
		t.Fatalf("want one firing firewall_bypass alert for n1, its text escaped: %+v", got)
	}
	clk.Advance(1)
	e.process(item{entry: nodeFirewall("n1", "0")})
	got = col.all()
	if len(got) != 2 || got[1].Status != StatusResolved || got[1].Key != got[0].Key || !got[1].StartsAt.Equal(t0) {
		t.Fatalf("want the alert resolved: %+v", got)
	}

	t.Log("n1's budget of one is spent: its next bypass is a finding alone, n2's is sent")
	col.reset()
	e.process(item{entry: nodeFirewall("n1", "1")})
	e.process(item{entry: nodeFirewall("n2", "1")})
	got = col.all()
	if len(got) != 2 || got[0].Rule != RuleNodeAlertsMuted || got[0].Subject != "n1" || got[1].Rule != RuleFirewallBypass || got[1].Subject != "n2" {
		t.Fatalf("want n1 muted and n2's alert sent: %+v", got)
	}

	t.Log("an hour on, n1's budget is back: its next change raises the alert held back")
	col.reset()
	clk.Advance(time.Hour)
	e.process(item{entry: nodeFirewall("n1", "2")})
	got = col.all()
	if len(got) != 1 || got[0].Rule != RuleFirewallBypass || got[0].Subject != "n1" || got[0].Status != StatusFiring {
		t.Fatalf("want n1's alert sent: %+v", got)
	}
}
