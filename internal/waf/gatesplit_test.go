package waf

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGateSplitStop: the phase-2 gate decides moat's rules up to its
// scorers in its first pass and the rest in its second (gatesplit.go),
// so the benchmark's attack, which stops at 90040, has the gate do less
// work than a full evaluation of it, with the same block; a request on
// which none of those rules can match is decided in one pass.
func TestGateSplitStop(t *testing.T) {
	var w [2]*WAF
	for i, full := range []bool{false, true} {
		var err error
		if w[i], err = New(Config{Budget: time.Hour, FullEvaluation: full}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w[i].Close() })
		w[i].plan.counting = true
	}
	p := w[0].plan
	if p.next[gate2ID] != gateRestID || len(p.after[gateRestID]) == 0 || p.next[gateRestID] != 0 {
		t.Fatalf("phase-2 gates: next %v, %d rules after %d", p.next, len(p.after[gateRestID]), gateRestID)
	}
	first := map[int]bool{}
	for _, r := range p.after[gate2ID] {
		first[r.id] = true
	}
	for _, id := range []int{90010, 90040, 90041, 90042, 90043} {
		if !first[id] {
			t.Errorf("rule %d is not decided by the first pass (%v)", id, slices.Sorted(maps.Keys(first)))
		}
	}
	// A benign GET, on which none of moat's rules up to the scorers can
	// match, is decided in one pass that removes the second, with as
	// many steps as the full evaluation's (first: the header cache holds
	// what each WAF asked before).
	var work [2]int64
	for i := range w {
		before := w[i].plan.work.Load()
		_, m, err := outcomeOf(w[i], benignGET())
		if err != nil {
			t.Fatal(err)
		}
		work[i] = w[i].plan.work.Load() - before
		if ran(m, gateRestID) || !ran(m, gate2ID) {
			t.Errorf("benign GET, full evaluation %v: matched %v, want %d and not %d", i == 1, m, gate2ID, gateRestID)
		}
	}
	if work[0] != work[1] || work[0] == 0 {
		t.Errorf("the gate's work on a benign GET %d, with the full evaluation %d", work[0], work[1])
	}
	// The attack: 90040 is kept by the first pass; the full evaluation
	// runs the second, the stop takes it out.
	attack := httptest.NewRequest("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", nil)
	attack.Header.Set("Host", "localhost")
	for i := range w {
		_, m, err := outcomeOf(w[i], attack)
		if err != nil {
			t.Fatal(err)
		}
		if ran(m, gateRestID) != (i == 1) {
			t.Errorf("attack, full evaluation %v: matched %v", i == 1, m)
		}
	}
	var v [2]Verdict
	for i := range w {
		before := w[i].plan.work.Load()
		v[i] = attackVerdict(t, w[i])
		work[i] = w[i].plan.work.Load() - before
	}
	if !v[0].Block || v[0].Block != v[1].Block || v[0].Status != v[1].Status || v[0].StoppedAt == 0 {
		t.Fatalf("stopped %+v, full %+v", v[0], v[1])
	}
	if work[0] >= work[1] {
		t.Errorf("the gate's work on the stopped attack %d, on its full evaluation %d: want less", work[0], work[1])
	}
}

// TestGateSplitNotSkipped: a gate rule that does more than gate is not
// skipped by a stop. With the second pass made to remove the blocking
// rule (a ctl), the attack must not stop at 90040, before it: the full
// evaluation lets the request through, and so must the default.
func TestGateSplitNotSkipped(t *testing.T) {
	var got [2]Verdict
	for i, full := range []bool{false, true} {
		w, err := New(Config{Budget: time.Hour, FullEvaluation: full,
			Directives: `SecRuleUpdateActionById 90009 "ctl:ruleRemoveById=949110"`})
		if err != nil {
			t.Fatal(err)
		}
		got[i] = attackVerdict(t, w)
		w.Close()
	}
	if got[1].Block || !slices.Contains(got[1].RuleIDs, 90040) {
		t.Fatalf("the full evaluation gave %+v, want 90040 matched and no block", got[1])
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("%+v, full evaluation %+v", got[0], got[1])
	}
}

// TestGateSplitTargets: a phase-1 ctl's target removal that waits for
// the phase-2 gate (gatetargets.go) waits for its second pass, after
// 90040. A removal that names the blocking rule keeps the attack from
// stopping there: the stop decides on the blocking rule's targets as
// they will be (evalstop.go), and the full evaluation, in which 949110
// reads nothing, lets the request through.
func TestGateSplitTargets(t *testing.T) {
	var got [2]Verdict
	for i, full := range []bool{false, true} {
		w, err := New(Config{Budget: time.Hour, FullEvaluation: full,
			Directives: `SecRule REQUEST_METHOD "@streq GET" "id:1000050,phase:1,pass,nolog,ctl:ruleRemoveTargetById=949110;TX:BLOCKING_INBOUND_ANOMALY_SCORE"`})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (w.plan == nil || w.plan.targetGate != gateRestID) {
			t.Fatalf("removals filed by %v, want the second pass", w.plan != nil && w.plan.targetGate != 0)
		}
		got[i] = attackVerdict(t, w)
		w.Close()
	}
	if got[1].Block || !slices.Contains(got[1].RuleIDs, 90040) {
		t.Fatalf("the full evaluation gave %+v, want 90040 matched and no block", got[1])
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("%+v, full evaluation %+v", got[0], got[1])
	}
}

func benignGET() *http.Request {
	r := httptest.NewRequest("GET", "/products?id=42&sort=price", nil)
	r.Header.Set("Host", "localhost")
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
	r.Header.Set("Accept", "text/html,application/json")
	return r
}

// phase2Decided is the rules both phase-2 passes of p decide, in order.
func phase2Decided(p *gatePlan) []gateRule {
	return append(slices.Clip(p.after[gate2ID]), p.after[gateRestID]...)
}

// ran reports whether rule id is among the matched rules m (outcomeOf).
func ran(m []string, id int) bool {
	return slices.ContainsFunc(m, func(s string) bool { return strings.HasPrefix(s, strconv.Itoa(id)+" ") })
}
