package waf

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// TestGateTargetsKept: a phase-1 ctl takes ARGS:x out of rule 1000021,
// a phase-2 rule after the gate, and the removal waits for the phase-2
// gate, which files it only for the rules it keeps. ?x=evil keeps
// 1000021 (its value holds the word), so the removal must reach it and
// the request passes; fails when the gate drops the removals of the
// rules it keeps. ?x=fine removes 1000021: no removal is filed for it.
func TestGateTargetsKept(t *testing.T) {
	w, err := New(Config{Directives: `
SecRule REQUEST_METHOD "@streq GET" "id:1000020,phase:1,pass,nolog,ctl:ruleRemoveTargetById=1000021;ARGS:x"
SecRule ARGS "@contains evil" "id:1000021,phase:2,deny,status:403,log"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.plan.deferredTargets {
		t.Fatal("no target removal waits for the phase-2 gate")
	}
	for _, c := range []struct {
		query string
		block bool
		filed bool // 1000021's removal is in the transaction
	}{
		{"x=evil", false, true},
		{"y=evil", true, true},
		{"x=evil&y=evil", true, true},
		{"x=fine", false, false},
	} {
		r := httptest.NewRequest("GET", "/p?"+c.query, http.NoBody)
		tx := w.Begin(nil)
		v, err := tx.Request(r, "127.0.0.1:4000")
		filed := reflect.ValueOf(tx.tx).Elem().FieldByName("ruleRemoveTargetByID").MapIndex(reflect.ValueOf(1000021)).IsValid()
		tx.Close()
		if err != nil {
			t.Fatal(err)
		}
		if v.Block != c.block || c.block && !slices.Contains(v.RuleIDs, 1000021) {
			t.Errorf("%s: %+v, want blocked %v", c.query, v, c.block)
		}
		if filed != c.filed {
			t.Errorf("%s: removal filed %v, want %v", c.query, filed, c.filed)
		}
	}
}

// TestGateTargetsFlow: a rule set in which the phase-2 gate's last pass
// (90009, which files the removals) may not run before the rules (a ctl
// that may remove it, a phase-2 skip before it) files every removal at
// once.
func TestGateTargetsFlow(t *testing.T) {
	skip := filepath.Join(t.TempDir(), "skip.conf")
	if err := os.WriteFile(skip, []byte(`SecRule ARGS:s "@streq 1" "id:1000023,phase:2,pass,nolog,skipAfter:END-1000023"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		before     []string
		directives string
	}{
		{nil, `SecRule ARGS:off "@streq 1" "id:1000022,phase:1,pass,nolog,ctl:ruleRemoveById=90009"`},
		{nil, `SecRule ARGS:off "@streq 1" "id:1000022,phase:1,pass,nolog,ctl:ruleRemoveById=90000-91000"`},
		{[]string{skip}, `SecMarker END-1000023`},
	} {
		w, err := New(Config{RuleFilesBefore: c.before, Directives: c.directives + `
SecRule REQUEST_METHOD "@streq GET" "id:1000020,phase:1,pass,nolog,ctl:ruleRemoveTargetById=1000021;ARGS:x"
SecRule ARGS "@contains evil" "id:1000021,phase:2,deny,status:403,log"
`})
		if err != nil {
			t.Fatal(err)
		}
		if w.plan == nil || w.plan.deferredTargets {
			t.Errorf("%s: removals wait for a gate that may not run (plan %v)", c.directives, w.plan != nil)
		}
		w.Close()
	}
	w, err := New(Config{Directives: `
SecRule REQUEST_METHOD "@streq GET" "id:1000020,phase:1,pass,nolog,ctl:ruleRemoveTargetById=1000021;ARGS:x"
SecRule ARGS "@contains evil" "id:1000021,phase:2,deny,status:403,log"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, id := range []int{gate2ID, gateRestID} {
		if !w.excludesAnchor(&Exclusions{ranges: [][2]int{{id, id}}}) {
			t.Errorf("a route that excludes the phase-2 gate's rule %d keeps the resolved rule set", id)
		}
	}
}

// TestGateIDsOfRuleSet: the gates planned are the rule set's own. Stock
// CRS's phase-2 gate takes 90008, which in moat's rule set is the combo-URL
// rule of phase 1: planned as a gate, it had a list nothing reads, counted
// in GateStats().Rules, and a route excluding it fell back to the
// unresolved rule set.
func TestGateIDsOfRuleSet(t *testing.T) {
	w, err := New(Config{Directives: `
SecRule REQUEST_METHOD "@streq GET" "id:1000020,phase:1,pass,nolog,ctl:ruleRemoveTargetById=1000021;ARGS:x"
SecRule ARGS "@contains evil" "id:1000021,phase:2,deny,status:403,log"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.plan == nil || !w.plan.deferredTargets {
		t.Fatalf("plan %v: want one with the phase-1 removals deferred", w.plan != nil)
	}
	for id := range w.plan.after {
		if id != gate1ID && id != gate2ID && id != gateRestID {
			t.Errorf("rule %d planned as a gate", id)
		}
	}
	if w.excludesAnchor(&Exclusions{ranges: [][2]int{{stockGate2ID, stockGate2ID}}}) {
		t.Errorf("a route that excludes rule %d (not a gate here) takes the unresolved rule set", stockGate2ID)
	}
	for _, id := range []int{gate2ID, gateRestID} {
		if !w.excludesAnchor(&Exclusions{ranges: [][2]int{{id, id}}}) {
			t.Errorf("a route that excludes the phase-2 gate's rule %d keeps the resolved rule set", id)
		}
	}
	stock, err := New(Config{StockCRS: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stock.Close()
	if stock.plan == nil || len(stock.plan.after[stockGate2ID]) == 0 {
		t.Error("stock CRS: its phase-2 gate has no rules")
	}
}
