package waf

import (
	"slices"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// The phase-2 gate in two passes. The gate decides a phase's rules in one
// pass at the start of the phase; in phase 2 that pass (rule 90007) is
// most of a blocked attack's cost, and most of it went on CRS's rules,
// which a stop once the block is certain (evalstop.go) then took out of
// the transaction unevaluated: an SQL injection is certain at moat's own
// rule 90040, the first of phase 2 to match it. So the phase's rules
// are decided in two passes: 90007 decides moat's rules up to its
// scorers (90010 to 90043), which decide on their own and carry the
// stop, and 90009, after them, decides the rest. A stop at one of
// those rules removes 90009 with every other rule before the context
// pass, and the rest is never decided; a request on which a rule up to
// 90009 may match but does not stop runs both passes, the second taking
// all the first read and computed (carry). A request on which none of
// them can match (nearly every benign one) cannot stop before 90009:
// its first pass goes on to decide the second's rules and removes
// 90009, so that it pays for one pass, as before the split.
//
// A gate decides the rules after it in its phase up to the phase's next
// gate (gatePlan.next; gatePlan.covers when it decides every one of
// them, which a pass must for it to know that none can match and
// stand in for the next); the pass of a gate that has a next one is kept
// in the transaction's memo for it, as the phase-1 pass is for the
// phase-2 gate. Neither pass is a change to what the gate decides: the
// gate reads only what no rule of the phase writes (see gate.go), and
// the inspection pass, the last thing that adds values, runs before
// 90007, so both passes see the same values; each decides its rules
// exactly as the single pass did. A rule guarded by a skip:N of the
// other pass (none in moat's or CRS's rule sets) is left to Coraza, as
// the guard's removal is known to its own pass only. The target
// removals of phase-1 ctls wait for 90009 (gatetargets.go), so a route
// that excludes it, or 90007, takes the unresolved rule set (New makes
// both anchors).
//
// The stop's proof (evalstop.go) lets a gate rule between a stop and
// the context pass be skipped: a gate removes only rules that cannot
// match, so it changes no score, variable or verdict.

// gateRestID is the phase-2 gate's second pass, after moat's scorers
// (rules/moat.conf).
const gateRestID = 90009

// carry readies s, kept by the gate before in the same phase, for the
// next pass: everything it read and computed stands (the values have
// not changed; see above), and the ranges it handed Coraza name only
// rules that have run, which Coraza would read again for every rule
// left in the phase: they are dropped.
func (s *gateState) carry() {
	s.work, s.read = 0, 0
	rs := s.p.ranges.of(s.tx)
	if rs == nil {
		return
	}
	for _, rng := range s.rng {
		// The last that is equal: a ctl that added the same range
		// before removes the same rules.
		if i := lastIndex(*rs, rng); i >= 0 {
			*rs = slices.Delete(*rs, i, i+1)
		}
	}
	s.rng = s.rng[:0]
}

func lastIndex(l [][2]int, v [2]int) int {
	for i := len(l) - 1; i >= 0; i-- {
		if l[i] == v {
			return i
		}
	}
	return -1
}

// files reports whether gate id files the target removals waiting for
// the phase-2 gate (gatetargets.go): the phase's last pass, which
// decides the rules they name (any gate when none wait).
func (p *gatePlan) files(id int) bool { return p.targetGate == 0 || id == p.targetGate }

// targetsWaitFor reports whether a target removal waiting in tx's memo
// for the phase-2 gate names one of ids.
func targetsWaitFor(tx plugintypes.TransactionState, ids []int) bool {
	m := memoOf(tx)
	if m == nil {
		return false
	}
	for _, a := range m.targets {
		for _, id := range a.later {
			if slices.Contains(ids, id) {
				return true
			}
		}
	}
	return false
}

// fileTargets files the target removals waiting in tx's memo for the
// rules no range of cut names, and empties the list: a stop
// (evalstop.go) takes the gate that would have filed them out of the
// transaction with the rules of cut, and leaves the others to run.
func fileTargets(tx plugintypes.TransactionState, cut [][2]int) {
	fileTargetsFor(tx, func(id int) bool {
		return !slices.ContainsFunc(cut, func(c [2]int) bool { return id >= c[0] && id <= c[1] })
	})
}

// decide asks each of rules whether it may match, and records those
// that cannot as removed; false when the request's CPU budget (its
// clock started at start, "" for a request too small to be timed; see
// budget.go) is spent first: the rules left are Coraza's, and the next
// budget rule refuses the request, as without the gate.
func (s *gateState) decide(rules []gateRule, start string) bool {
	for i := range rules {
		if start != "" && i%gateBudgetEvery == gateBudgetEvery-1 && s.p.budget.Evaluate(s.tx, start) {
			return false
		}
		r := &rules[i]
		if r.quick {
			// Most rules are refused here, by the bytes of all their
			// values: opMayMatch's first answer, without the calls.
			if w := r.whole - 1; !r.bytesMay(s.wholeBytes(w)) && !s.wholeHC[w] && !s.guarded(r) {
				s.removeRank(r.rank)
				continue
			}
		}
		if !s.guarded(r) && !s.mayMatch(r) {
			s.removeRank(r.rank)
		}
	}
	return true
}

// removedAll reports whether this pass has removed each of rules.
func (s *gateState) removedAll(rules []gateRule) bool {
	if !s.any {
		return len(rules) == 0
	}
	for i := range rules {
		if !s.removed[rules[i].rank] {
			return false
		}
	}
	return true
}
