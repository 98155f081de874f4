package detect

import (
	"fmt"
	"testing"
	"time"
)

// TestFullRuleMakesRoomForOtherNodes: a node whose records fill a rule's
// subjects (or the edges new_edge remembers) cannot keep another node's
// new subject out: one of the fullest node's is forgotten for it, while
// the fullest node's own new subjects are refused. A forgotten subject
// whose alert was held back by its node's budget leaves nothing behind.
func TestFullRuleMakesRoomForOtherNodes(t *testing.T) {
	clk := newClock()
	rules := testRules()
	for _, name := range []string{RuleRevoked, RuleNewEdge} {
		rc := rules[name]
		rc.MaxSubjects = 10
		rc.Learning = 0
		rules[name] = rc
	}
	e, col := newTestEngine(t, clk, rules)
	e.cfg.NodeAlerts = 3
	fired := func(subject string) bool {
		for _, a := range col.all() {
			if a.Subject == subject && a.Status == StatusFiring {
				return true
			}
		}
		return false
	}

	for i := range 10 {
		e.process(item{rec: *revokedFromNode("n1", fmt.Sprintf("10.66.0.%d", i+1))})
	}
	if len(e.muted) != 7 {
		t.Fatalf("%d alerts held back, want 7 past n1's budget of 3", len(e.muted))
	}
	t.Log("n1 keeps all but its tenth fresh: the tenth, held back, is the one forgotten")
	clk.Advance(time.Second)
	for i := range 9 {
		e.process(item{rec: *revokedFromNode("n1", fmt.Sprintf("10.66.0.%d", i+1))})
	}
	e.process(item{rec: *revokedFromNode("n2", "192.0.2.77")})
	if !fired("192.0.2.77") {
		t.Fatalf("n2's revoked identity raised no alert with the rule full of n1's: %+v", col.all())
	}
	e.process(item{rec: *revokedFromNode("n1", "10.66.1.1")})
	st := e.Stats()
	if st.SubjectsForgotten[RuleRevoked] != 1 || st.SubjectsDropped[RuleRevoked] != 1 {
		t.Fatalf("forgotten %d, dropped %d: want one of n1's forgotten for n2's, then n1's next refused", st.SubjectsForgotten[RuleRevoked], st.SubjectsDropped[RuleRevoked])
	}
	if len(e.muted) != 6 || e.muted[DedupKey(RuleRevoked, "10.66.0.10")] {
		t.Fatalf("held back %v: want 10.66.0.10's forgotten with its subject", e.muted)
	}

	t.Log("new_edge: n1 fills the edges remembered; n2's new edge still fires")
	clk.Advance(time.Minute)
	for i := range 10 {
		r := allowFlow("api", fmt.Sprintf("fake-%d", i))
		r.Unmapped.Node = "n1"
		e.process(item{rec: *r})
	}
	r := allowFlow("web", "db")
	r.Unmapped.Node = "n2"
	e.process(item{rec: *r})
	if !fired("spiffe://moat.test/svc/web -> spiffe://moat.test/svc/db") {
		t.Fatalf("n2's new edge raised no alert with the edges full of n1's: %+v", col.all())
	}
	if st := e.Stats(); st.SubjectsForgotten[RuleNewEdge] != 2 {
		t.Fatalf("%d forgotten, want one of n1's edges and one of the rule's subjects", st.SubjectsForgotten[RuleNewEdge])
	}
}
