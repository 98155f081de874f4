package detect

import (
	"testing"
)

// TestSummaryCounts: a producer that summarises a flood (flow.Gate) writes
// a few records in full and one summary standing for the rest
// (Suppressed); the count-based rules count the summary as the refusals it
// stands for, or the flood would hide itself from them.
func TestSummaryCounts(t *testing.T) {
	clk := newClock()
	col := &collector{}
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Notifier: col})
	if err != nil {
		t.Fatal(err)
	}
	fired := func(rule string) bool {
		for _, a := range col.all() {
			if a.Rule == rule && a.Status == StatusFiring {
				return true
			}
		}
		return false
	}
	// deny_burst fires at 50 (testRules): 10 written in full, then a
	// summary of 100.
	for range 10 {
		e.process(item{rec: *denyFlow("198.51.100.7", "10.0.0.9", 5432)})
	}
	if fired(RuleDenyBurst) {
		t.Fatal("deny_burst fired on 10 denied flows, below its threshold")
	}
	sum := denyFlow("198.51.100.7", "10.0.0.9", 5432)
	sum.Unmapped.Suppressed = 100
	e.process(item{rec: *sum})
	if !fired(RuleDenyBurst) {
		t.Fatalf("deny_burst did not fire on a summary of 100 denied flows after 10: %+v", col.all())
	}
}
