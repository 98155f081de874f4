package waf

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
	"unsafe"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestGateReads checks what a gate pass reads of a request against
// Coraza's own reading, for CRS at paranoia 4 on the collections of
// every stage of CRS's regression tests and of the committed corpus:
//
//   - the bytes of all of a selector's values after a chain
//     (gateState.union), which a slot takes from the slot of the chain
//     without its last step when that step acts on none of their bytes
//     (gatePlan.unionUp), are exactly the bytes of the values each
//     transformed by every step of the chain as Coraza runs it: a slot
//     that took bytes it should not have would refuse a rule on a value
//     that matches it;
//   - so are the bytes of all the values of a list of selectors after a
//     chain (gateState.wholeBytes), which a slot takes from the slot of
//     the same selectors through the chain's beginning before its last
//     steps whose bytes are known (gatePlan.wholeUp) when the bytes
//     there hold none of the bytes those steps act on;
//   - the values the cache answers for (gatecache.go), which the gate
//     asks on their own, are left out of both;
//   - a selector of a collection of one value (REQUEST_URI,
//     REQUEST_LINE, ...) reads that value, the very string FindAll
//     hands Coraza.
func TestGateReads(t *testing.T) {
	w, err := New(crsTestConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := w.plan
	if p == nil || p.unions == 0 {
		t.Fatal("no gate, or no slots")
	}
	inputs := append(crsInputs(t), corpusInputs(t, false)...)
	if testing.Short() {
		inputs = inputs[:len(inputs)/4]
	}
	taken, wholeTaken, singles := 0, 0, 0
	for _, raw := range inputs {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			continue
		}
		tx := w.Begin(nil)
		if _, err := tx.Request(r, "127.0.0.1:4000"); err != nil {
			tx.Close() // a body shorter than its length, as sent
			continue
		}
		st := tx.tx.(plugintypes.TransactionState)
		s := &gateState{valIdx: map[strID]int{}}
		s.reset(p, st)
		for slot := range int32(p.unions) {
			var want byteSet
			for _, vi := range s.values(p.unionSel[slot]) {
				if s.hc[vi] == 0 { // asked on its own (gatecache.go)
					want.addAll(bytesOf(chainValue(p, p.unionNode[slot], s.vals[vi])))
				}
			}
			if got := s.union(slot); got != want {
				t.Fatalf("%q: slot %d (selector %+v, chain %d): bytes %v, want %v", trimInput(raw), slot, p.selectors[p.unionSel[slot]], p.unionNode[slot], got, want)
			}
			if up := p.unionUp[slot]; up >= 0 && s.uni[slot] == s.uni[up] {
				taken++
			}
		}
		s.reset(p, st)
		for w := range int32(len(p.wholes)) {
			var want byteSet
			for _, slot := range p.wholes[w] {
				if p.unionNode[slot] != p.wholeNode[w] {
					t.Fatalf("whole slot %d of chain %d holds slot %d of chain %d", w, p.wholeNode[w], slot, p.unionNode[slot])
				}
				for _, vi := range s.values(p.unionSel[slot]) {
					if s.hc[vi] == 0 {
						want.addAll(bytesOf(chainValue(p, p.unionNode[slot], s.vals[vi])))
					}
				}
			}
			if got := s.wholeBytes(w); got != want {
				t.Fatalf("%q: whole slot %d (chain %d): bytes %v, want %v", trimInput(raw), w, p.wholeNode[w], got, want)
			}
			if up := p.wholeUp[w]; up >= 0 && s.whole[w] == s.whole[up] {
				wholeTaken++
			}
		}
		s.reset(p, st)
		for k, sel := range p.selectors {
			col := st.Collection(sel.v)
			if _, ok := col.(collection.Single); !ok {
				continue
			}
			singles++
			mds := col.FindAll()
			got := s.values(k)
			if len(got) != len(mds) {
				t.Fatalf("%q: selector %+v: %d values, FindAll %d", trimInput(raw), sel, len(got), len(mds))
			}
			for i, md := range mds {
				if v := s.vals[got[i]]; v != md.Value() || unsafe.StringData(v) != unsafe.StringData(md.Value()) {
					t.Fatalf("%q: selector %+v: value %q, FindAll %q", trimInput(raw), sel, v, md.Value())
				}
			}
		}
		tx.Close()
	}
	if taken == 0 {
		t.Error("no slot took its bytes from the chain before its last step")
	}
	if wholeTaken == 0 {
		t.Error("no whole slot took its bytes from the chain before its last step")
	}
	if singles == 0 {
		t.Error("no selector of a collection of one value")
	}
}

// chainValue is v after node's transformations, every step run as
// Coraza's transformArg runs it: an erroring step leaves the value as it
// was.
func chainValue(p *gatePlan, node int, v string) string {
	var steps []plugintypes.Transformation
	for n := node; n != 0; n = p.nodes[n].parent {
		steps = append(steps, p.nodes[n].fn)
	}
	for i := len(steps) - 1; i >= 0; i-- {
		if t, _, err := steps[i](v); err == nil {
			v = t
		}
	}
	return v
}
