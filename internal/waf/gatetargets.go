package waf

import (
	"reflect"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// Target removals left to the phase-2 gate. CRS's 941010 (phase 1)
// takes REQUEST_FILENAME out of 34 XSS rules of phase 2 on nearly every
// request: Coraza files each removal in a map the transaction starts
// anew, a slice allocated per rule, read only when that rule is
// evaluated. The phase-2 gate removes nearly all of those rules, so the
// removals of a phase-1 ctl that name rules of phase 2 after the gate
// wait for it (in the transaction's memo), and the gate files them for
// the rules it leaves in the transaction alone; a rule it removed is
// never evaluated, so it never reads its removals.
//
// They wait only when the gate is sure to run before those rules: no
// ctl of the rule set may remove the gate, no rule of phase 2 before it
// skips (skip or skipAfter), and a route that excludes the gate is
// inspected by the unresolved rule set, which files every removal at
// once (New makes the gate an anchor). When the gate does run and decides
// nothing (it is capturing, or has no rules), it files them all.
//
// TestGateTargetsKept fails when a kept rule loses a removal.

// targetSplit is what planTargets decided for one removal.
type targetSplit struct {
	tr         *targetRemoval
	now, later []int
}

// planTargets splits the target removals of phase-1 ctls (resolve.go)
// into those filed at once and those the phase-2 gate files (later),
// when the rule set lets the gate do it, and returns that gate's ID; nil
// when it does not. Of a phase-2 gate in two passes (gatesplit.go) it
// is the last, which decides the rules the removals name; a stop
// before it files those of the rules left to run (fileTargets).
func planTargets(all []*rrule, isGate map[int]bool) ([]targetSplit, int) {
	gate := -1
	for i, r := range all {
		if isGate[r.id] && r.phase == 2 {
			gate = i
		}
	}
	if gate < 0 {
		return nil, 0
	}
	after := map[int]bool{}
	for _, r := range all[gate+1:] {
		if r.phase == 2 && r.id > 0 {
			after[r.id] = true
		}
	}
	for i, r := range all {
		for _, c := range r.ctlRm {
			if c.rules && ctlHits(c.kind, c.target, all[gate]) {
				return nil, 0
			}
		}
		if i < gate && (r.phase == 2 || r.phase == 0) && (r.skip || r.skipTo != "") {
			return nil, 0
		}
	}
	var out []targetSplit
	for _, r := range all {
		if r.phase != 1 {
			continue
		}
		for link := r.v; ; {
			acts := link.FieldByName("actions")
			for j := range acts.Len() {
				tr, ok := exported(acts.Index(j).FieldByName("Function")).Interface().(*targetRemoval)
				if !ok {
					continue
				}
				sp := targetSplit{tr: tr}
				for _, id := range tr.ids {
					if after[id] {
						sp.later = append(sp.later, id)
					} else {
						sp.now = append(sp.now, id)
					}
				}
				if len(sp.later) > 0 {
					out = append(out, sp)
				}
			}
			next := link.FieldByName("Chain")
			if next.Kind() != reflect.Pointer || next.IsNil() {
				break
			}
			link = next.Elem()
		}
	}
	return out, all[gate].id
}

// applyTargets files the removals waiting in tx's memo, for the rules s
// did not remove (s nil: for every rule), and empties the list.
func applyTargets(tx plugintypes.TransactionState, s *gateState) {
	fileTargetsFor(tx, func(id int) bool { return s == nil || !s.removedHere(id) })
}

// fileTargetsFor files the removals waiting in tx's memo for the rules
// still to run (by runs), and empties the list.
func fileTargetsFor(tx plugintypes.TransactionState, runs func(id int) bool) {
	m := memoOf(tx)
	if m == nil || len(m.targets) == 0 {
		return
	}
	rt, ok := tx.(targetRemover)
	for _, a := range m.targets {
		for _, id := range a.later {
			if ok && runs(id) {
				rt.RemoveRuleTargetByID(id, a.col, a.key, a.keyRx)
			}
		}
	}
	clear(m.targets)
	m.targets = m.targets[:0]
}
