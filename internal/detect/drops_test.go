package detect

import (
	"strconv"
	"testing"
	"time"
)

// TestDropAlert: a node whose records the full queue drops raises one
// records_dropped alert naming it and the count, however many more are
// dropped, resolved once it has lost none for DropQuiet; past
// MaxDropAlerts nodes at once, the others share one alert.
func TestDropAlert(t *testing.T) {
	clk := newClock()
	col := &collector{}
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Notifier: col, Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	drain := func() {
		for {
			it, ok := e.queue.pop()
			if !ok {
				return
			}
			e.process(it)
		}
	}
	for i := range 10 {
		_ = e.Write(fromNode("n1", i))
	}
	drain()
	got := col.all()
	if len(got) != 1 || got[0].Rule != RuleRecordsDropped || got[0].Status != StatusFiring || got[0].Subject != "n1" || got[0].Details["dropped"] != "8" {
		t.Fatalf("after n1 lost 8 records: %+v; want one firing records_dropped alert naming n1 and 8", got)
	}
	t.Log("n1 goes on losing records: no second alert")
	for i := range 10 {
		_ = e.Write(fromNode("n1", i))
	}
	drain()
	e.Sweep()
	if got := col.all(); len(got) != 1 {
		t.Fatalf("a second round of drops sent %+v", got[1:])
	}
	t.Log("n1 loses none for DropQuiet: resolved, with the whole count")
	clk.Advance(DropQuiet)
	e.Sweep()
	got = col.all()
	if len(got) != 2 || got[1].Status != StatusResolved || got[1].Key != got[0].Key || got[1].Details["dropped"] != "16" {
		t.Fatalf("after a quiet DropQuiet: %+v; want n1's alert resolved with 16 dropped", got)
	}

	t.Log("many nodes lose records at once: MaxDropAlerts alerts name theirs, one more the rest")
	col.reset()
	for n := range MaxDropAlerts + 5 {
		for i := range 3 {
			_ = e.Write(fromNode("m"+strconv.Itoa(n), i))
		}
	}
	drain()
	got = col.all()
	subjects := map[string]Alert{}
	for _, a := range got {
		if a.Rule != RuleRecordsDropped || a.Status != StatusFiring {
			t.Fatalf("unexpected %+v", a)
		}
		subjects[a.Subject] = a
	}
	if len(got) != MaxDropAlerts+1 || len(subjects) != MaxDropAlerts+1 || subjects[OtherNodes].Subject != OtherNodes {
		t.Fatalf("%d alerts for %d subjects; want %d, the last for %s", len(got), len(subjects), MaxDropAlerts+1, OtherNodes)
	}
	if e.Stats().Dropped != 16+uint64((MaxDropAlerts+5)*3-2) {
		t.Fatalf("dropped %d", e.Stats().Dropped)
	}
	clk.Advance(time.Hour)
	e.Sweep()
	if n := len(col.all()); n != 2*(MaxDropAlerts+1) {
		t.Fatalf("%d alerts after the quiet hour, want each firing one resolved", n)
	}
}
