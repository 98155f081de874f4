package detect

import (
	"fmt"
	"testing"
	"time"

	"moat/internal/flow"
)

// revokedFromNode is a revoked identity presented from ip, as node reports it.
func revokedFromNode(node, ip string) *flow.Record {
	r := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "handshake", flow.ReasonRevoked, ipEP(ip, 40000), svcEP("db", 5432))
	r.Unmapped.Node = node
	return r
}

// TestNodeAlertBudget: the firing alerts one node's records raise reach
// the Notifier within the node's budget; past it they are findings
// alone, one node_alerts_muted alert names the node, the resolves of
// what was held back are held back too, and the budget comes back with
// time. Other nodes and audit entries are not held to it.
func TestNodeAlertBudget(t *testing.T) {
	clk := newClock()
	col := &collector{}
	var findings []flow.Record
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Notifier: col, NodeAlerts: 3,
		Findings: flow.WriterFunc(func(r flow.Record) error { findings = append(findings, r); return nil })})
	if err != nil {
		t.Fatal(err)
	}
	count := func(as []Alert, rule string, st Status) int {
		n := 0
		for _, a := range as {
			if a.Rule == rule && a.Status == st {
				n++
			}
		}
		return n
	}
	for i := range 10 {
		e.process(item{rec: *revokedFromNode("n1", fmt.Sprintf("10.66.0.%d", i+1))})
	}
	got := col.all()
	if n := count(got, RuleRevoked, StatusFiring); n != 3 {
		t.Fatalf("n1's records sent %d revoked_identity alerts, want its budget of 3: %+v", n, got)
	}
	if n := count(got, RuleNodeAlertsMuted, StatusFiring); n != 1 || got[3].Subject != "n1" || got[3].Details["muted"] != "1" {
		t.Fatalf("want one node_alerts_muted alert naming n1 after the third: %+v", got)
	}
	if len(findings) != 11 || e.Stats().Muted != 7 {
		t.Fatalf("%d findings and %d muted, want all 10 alerts and the muted one as findings, 7 muted", len(findings), e.Stats().Muted)
	}

	t.Log("another node, and the control plane's audit entries, are not held to n1's budget")
	e.process(item{rec: *revokedFromNode("n2", "192.0.2.77")})
	e.process(item{entry: policyApply("prod", "ok", map[string]string{DetailWildcard: "true"})})
	got = col.all()
	if last := got[len(got)-2]; last.Rule != RuleRevoked || last.Subject != "192.0.2.77" {
		t.Fatalf("n2's alert: %+v", last)
	}
	if last := got[len(got)-1]; last.Rule != RulePolicyWidened {
		t.Fatalf("the audit entry's alert: %+v", last)
	}

	t.Log("an hour on, the alerts resolve: only those that were sent, and the budget is whole again")
	col.reset()
	clk.Advance(time.Hour)
	e.Sweep()
	got = col.all()
	if n := count(got, RuleRevoked, StatusResolved); n != 4 {
		t.Fatalf("%d revoked_identity resolves sent, want the 3 of n1's sent and n2's: %+v", n, got)
	}
	if n := count(got, RuleNodeAlertsMuted, StatusResolved); n != 1 {
		t.Fatalf("want n1's node_alerts_muted resolved: %+v", got)
	}
	col.reset()
	for i := range 3 {
		e.process(item{rec: *revokedFromNode("n1", fmt.Sprintf("10.67.0.%d", i+1))})
	}
	if got := col.all(); count(got, RuleRevoked, StatusFiring) != 3 || count(got, RuleNodeAlertsMuted, StatusFiring) != 0 {
		t.Fatalf("after an hour n1's budget is whole again: %+v", got)
	}
}

// TestNodeAlertBudgetOff: a negative NodeAlerts sets no bound.
func TestNodeAlertBudgetOff(t *testing.T) {
	clk := newClock()
	col := &collector{}
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Notifier: col, NodeAlerts: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		e.process(item{rec: *revokedFromNode("n1", fmt.Sprintf("10.66.0.%d", i+1))})
	}
	n := 0
	for _, a := range col.all() {
		if a.Rule == RuleRevoked {
			n++
		}
	}
	if n != 100 {
		t.Fatalf("%d revoked_identity alerts, want 100", n)
	}
}

// TestHeldBackAlertRaisedByAnotherNode: a node that spent its budget
// names a source in its records; the alert held back is raised again,
// under its own budget, by another node's record about that source, and
// by no further record of the first node's. A held back alert starts no
// dedup period: once resolved and held again, another node still raises it.
func TestHeldBackAlertRaisedByAnotherNode(t *testing.T) {
	clk := newClock()
	col := &collector{}
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Notifier: col, NodeAlerts: 1})
	if err != nil {
		t.Fatal(err)
	}
	sent := func(st Status) int {
		n := 0
		for _, a := range col.all() {
			if a.Rule == RuleRevoked && a.Subject == "192.0.2.77" && a.Status == st {
				n++
			}
		}
		return n
	}
	e.process(item{rec: *revokedFromNode("n1", "10.66.0.1")})
	e.process(item{rec: *revokedFromNode("n1", "192.0.2.77")})
	e.process(item{rec: *revokedFromNode("n1", "192.0.2.77")})
	if sent(StatusFiring) != 0 {
		t.Fatalf("n1's alert about 192.0.2.77 was sent past its budget: %+v", col.all())
	}
	e.process(item{rec: *revokedFromNode("n2", "192.0.2.77")})
	if sent(StatusFiring) != 1 {
		t.Fatalf("n2's record did not raise the alert n1's budget held back: %+v", col.all())
	}
	e.process(item{rec: *revokedFromNode("n2", "192.0.2.77")})
	if sent(StatusFiring) != 1 {
		t.Fatalf("raised twice: %+v", col.all())
	}
	clk.Advance(11 * time.Minute)
	e.Sweep()
	if sent(StatusResolved) != 1 {
		t.Fatalf("the alert sent was not resolved: %+v", col.all())
	}

	t.Log("within the dedup period of what n2 raised, n1 names it again: held back, and n2 raises nothing new")
	col.reset()
	e.process(item{rec: *revokedFromNode("n1", "192.0.2.77")})
	e.process(item{rec: *revokedFromNode("n2", "192.0.2.77")})
	if sent(StatusFiring) != 0 {
		t.Fatalf("an alert within the dedup period of the last one sent: %+v", col.all())
	}

	t.Log("after it, n1's firing is held back and starts no dedup period of its own")
	clk.Advance(2 * time.Hour)
	e.Sweep()
	col.reset()
	e.process(item{rec: *revokedFromNode("n1", "10.66.0.2")})
	e.process(item{rec: *revokedFromNode("n1", "192.0.2.77")})
	clk.Advance(11 * time.Minute)
	e.Sweep()
	e.process(item{rec: *revokedFromNode("n1", "192.0.2.77")})
	if sent(StatusFiring) != 0 {
		t.Fatalf("n1's alert about 192.0.2.77 was sent past its budget: %+v", col.all())
	}
	e.process(item{rec: *revokedFromNode("n2", "192.0.2.77")})
	if sent(StatusFiring) != 1 {
		t.Fatalf("n2's record did not raise the alert n1's budget held back twice: %+v", col.all())
	}
}
