package waf

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
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
