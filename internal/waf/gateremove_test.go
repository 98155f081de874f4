package waf

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestGateDropPhase1: once phase 2 has begun, the phase-2 gate drops
// the ranges that name rules of phase 1 alone (the phase-1 gate's among
// them), and keeps one that names a rule of phase 2 too: the phase-1 ctl
// of 1000030 removes 1000031 (phase 1) and 1000032 (phase 2), which
// would refuse every GET. Fails when a range is dropped for its first
// phase-1 rule alone (1000032 refuses), or when none is dropped.
func TestGateDropPhase1(t *testing.T) {
	w, err := New(Config{Directives: `
SecRule REQUEST_METHOD "@streq GET" "id:1000030,phase:1,pass,nolog,ctl:ruleRemoveById=1000031-1000032"
SecRule REQUEST_METHOD "@streq GET" "id:1000031,phase:1,deny,status:403,log"
SecRule REQUEST_METHOD "@streq GET" "id:1000032,phase:2,deny,status:403,log"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.plan.ranges == nil {
		t.Fatal("the transaction's ranges were not found")
	}
	r := httptest.NewRequest("GET", "/p?id=1", http.NoBody)
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(r, "127.0.0.1:4000")
	if err != nil {
		t.Fatal(err)
	}
	if v.Block {
		t.Errorf("refused: %+v", v)
	}
	ranges := reflect.ValueOf(tx.tx).Elem().FieldByName("ruleRemoveByIDRanges")
	kept := false
	for i := range ranges.Len() {
		rng := [2]int{int(ranges.Index(i).Index(0).Int()), int(ranges.Index(i).Index(1).Int())}
		if w.plan.phase1Only(rng) {
			t.Errorf("range %v names rules of phase 1 only, in phase 2", rng)
		}
		kept = kept || rng == [2]int{1000031, 1000032}
	}
	if !kept {
		t.Error("the ctl's range over phases 1 and 2 was dropped")
	}
}

// TestGateDropPhase1Known: the phase-1 gate's ranges are known by
// their place in the transaction's list (txMemo.p1Ranges), after a
// route exclusion's range (Begin) and before a phase-1 ctl's; they name
// no rule of phase 2 that runs before the phase-2 gate, which drops
// them (Coraza driven directly, without Tx.Request's endPhase1) without
// looking them up; the exclusion's range, which names rules of phase 2,
// and the ctl's stay. Fails when the place is not kept, or is off by one
// at its start (the exclusion's range is dropped).
func TestGateDropPhase1Known(t *testing.T) {
	w, err := New(Config{Directives: `
SecRule REQUEST_METHOD "@streq GET" "id:1000030,phase:1,pass,nolog,ctl:ruleRemoveById=1000031-1000032"
SecRule REQUEST_METHOD "@streq GET" "id:1000031,phase:1,deny,status:403,log"
SecRule REQUEST_METHOD "@streq GET" "id:1000032,phase:2,deny,status:403,log"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ex, err := NewExclusions([]string{"942000-942999"})
	if err != nil {
		t.Fatal(err)
	}
	x := w.Begin(ex)
	defer x.Close()
	if x.err != nil {
		t.Fatal(x.err)
	}
	p := x.w.plan
	if p == nil || p.ranges == nil {
		t.Fatal("no gate, or the transaction's ranges were not found")
	}
	tx := x.tx
	tx.ProcessConnection("127.0.0.1", 4000, "", 0)
	tx.ProcessURI("/products?id=42&sort=price", "GET", "HTTP/1.1")
	tx.AddRequestHeader("Host", "localhost")
	tx.AddRequestHeader("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
	if it := tx.ProcessRequestHeaders(); it != nil {
		t.Fatalf("phase 1 interrupted: %+v", it)
	}
	st, ok := tx.(plugintypes.TransactionState)
	if !ok {
		t.Fatal("Coraza transaction has no state")
	}
	rs := p.ranges.of(st)
	m := memoOf(st)
	if rs == nil || m == nil {
		t.Fatal("no ranges or no memo")
	}
	from, to := m.p1Ranges[0], m.p1Ranges[1]
	if from != 1 || to <= from || to >= len(*rs) {
		t.Fatalf("phase-1 gate's ranges at [%d, %d) of %v, want from 1 to before the ctl's", from, to, *rs)
	}
	ctl := slices.Index(*rs, [2]int{1000031, 1000032})
	if (*rs)[0] != [2]int{942000, 942999} || ctl < to {
		t.Errorf("exclusion's range %v, ctl's at %d of %v", (*rs)[0], ctl, *rs)
	}
	for _, rng := range (*rs)[from:to] {
		lo, hi := p.ranks(rng)
		if slices.Contains(p.early[lo:hi], true) {
			t.Errorf("phase-1 gate's range %v names a rule of phase 2 that runs before its gate", rng)
		}
	}
	if _, err := tx.ProcessRequestBody(); err != nil {
		t.Fatal(err)
	}
	if it := tx.Interruption(); it != nil {
		t.Errorf("refused by %d", it.RuleID)
	}
	if (*rs)[0] != [2]int{942000, 942999} || (*rs)[1] != [2]int{1000031, 1000032} {
		t.Errorf("phase 2's ranges %v, want the exclusion's and the ctl's first", *rs)
	}
	for _, rng := range *rs {
		if p.phase1Only(rng) {
			t.Errorf("range %v names rules of phase 1 only, in phase 2", rng)
		}
	}
	if m.p1Ranges != [2]int{} {
		t.Errorf("p1Ranges %v left after phase 2", m.p1Ranges)
	}
}

// TestGateEndPhase1: the phase-1 gate's range over 1000061-1000063
// names 1000062, a rule of phase 2 after the phase-2 gate; a skipAfter
// of phase 2 (1000060, before that gate) passes over the gate, so only
// Tx.Request's endPhase1 takes the range out before 1000062 runs, and
// 1000062 refuses the GET as Coraza alone does. Fails without endPhase1
// (the GET passes).
func TestGateEndPhase1(t *testing.T) {
	before := filepath.Join(t.TempDir(), "before.conf")
	if err := os.WriteFile(before, []byte(`SecRule REQUEST_METHOD "@streq GET" "id:1000060,phase:2,pass,nolog,skipAfter:END-1000060"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{RuleFilesBefore: []string{before}, Directives: `
SecRule ARGS:zz "@streq never" "id:1000061,phase:1,deny,status:403,log"
SecMarker END-1000060
SecRule REQUEST_METHOD "@streq GET" "id:1000062,phase:2,deny,status:403,log"
SecRule ARGS:zz "@streq never" "id:1000063,phase:1,deny,status:403,log"
`}
	ref := cfg
	ref.noGate, ref.noResolve = true, true
	for _, c := range []Config{ref, cfg} {
		w, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if !c.noGate && (w.plan == nil || w.plan.ranges == nil) {
			t.Fatalf("no gate, or the transaction's ranges were not found: %+v", w.GateStats())
		}
		tx := w.Begin(nil)
		v, err := tx.Request(httptest.NewRequest("GET", "/p?id=1", http.NoBody), "127.0.0.1:4000")
		tx.Close()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !v.Block || !slices.Contains(v.RuleIDs, 1000062) {
			t.Errorf("gate off %v: %+v, want refused by 1000062", c.noGate, v)
		}
	}
}

// TestGateDropMarkers: a range from 0 removes the SecMarkers (ID 0,
// evaluated in every phase), so a skipAfter of phase 2 never ends and
// 1000052 is skipped, as Coraza alone does; the range names no rule of
// phase 2 by ID, and fails this test when it is dropped as one of phase
// 1 only (the marker then ends the skip, and 1000052 refuses).
func TestGateDropMarkers(t *testing.T) {
	rules := `
SecRule REQUEST_METHOD "@streq GET" "id:1000050,phase:1,pass,nolog,ctl:ruleRemoveById=0-10"
SecRule REQUEST_METHOD "@streq GET" "id:1000051,phase:2,pass,nolog,skipAfter:END-1000051"
SecMarker END-1000051
SecRule REQUEST_METHOD "@streq GET" "id:1000052,phase:2,deny,status:403,log"
`
	for _, noGate := range []bool{true, false} {
		w, err := New(Config{Directives: rules, noGate: noGate})
		if err != nil {
			t.Fatal(err)
		}
		tx := w.Begin(nil)
		v, err := tx.Request(httptest.NewRequest("GET", "/p", http.NoBody), "127.0.0.1:4000")
		tx.Close()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if v.Block {
			t.Errorf("gate off %v: refused %+v", noGate, v)
		}
	}
}

// TestGateRangesMostRulesFirst: Coraza reads a transaction's ranges in
// order for every rule of the phase, up to the first that names it, so
// the gate puts first the range naming the most rules of its phase. On
// a benign GET, in phase 2 the first range is the phase-2 gate's over
// most of CRS's phase-2 rules, and none names more of them. Fails with
// the ranges in the order of their IDs (the widest, over
// 921110-944150, last).
func TestGateRangesMostRulesFirst(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.plan.ranges == nil {
		t.Fatal("the transaction's ranges were not found")
	}
	r := httptest.NewRequest("GET", "/products?id=42&sort=price", http.NoBody)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
	r.Header.Set("Accept", "text/html,application/json")
	tx := w.Begin(nil)
	defer tx.Close()
	if v, err := tx.Request(r, "127.0.0.1:4000"); err != nil || v.Block {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	ranges := reflect.ValueOf(tx.tx).Elem().FieldByName("ruleRemoveByIDRanges")
	if ranges.Len() < 2 {
		t.Fatalf("%d ranges; want several", ranges.Len())
	}
	var first int32
	for i := range ranges.Len() {
		rng := [2]int{int(ranges.Index(i).Index(0).Int()), int(ranges.Index(i).Index(1).Int())}
		n := w.plan.rulesIn(2, rng)
		if i == 0 {
			first = n
			if n < 50 {
				t.Errorf("the first range, %v, names %d rules of phase 2", rng, n)
			}
		} else if n > first {
			t.Errorf("range %d, %v, names %d rules of phase 2, more than the first (%d)", i, rng, n, first)
		}
	}
}

// rulesIn is the number of rules of phase (1 or 2) whose IDs rng names.
func (p *gatePlan) rulesIn(phase int, rng [2]int) int32 {
	lo, hi := p.ranks(rng)
	return p.inPhase[phase-1][hi] - p.inPhase[phase-1][lo]
}
