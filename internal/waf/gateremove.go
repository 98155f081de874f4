package waf

import "slices"

// How the gate takes rules out of a transaction. Coraza's RemoveRuleByID
// fills a map that each transaction starts anew, so the gate's hundred
// or so removals a request grew and rehashed it every time (7% of the
// benign GET's WAF CPU in its profile). The gate hands Coraza ranges
// instead: runs of removed rules whose IDs follow one another among all
// the rule set's IDs, so a range [first, last] names no rule that is
// not removed. Coraza skips a rule in a range exactly as one in the map
// (before skip:N counts it), and the rule set does not change after
// load.
//
// Coraza reads every range for every rule of the phase it does not
// remove, so fewer ranges are cheaper. A range may also name the rules
// of the phases before the gate's: they have run, and Coraza evaluates
// a rule in its own phase only, so removing them changes nothing; the
// runs then reach over the rules of phase 1 that CRS and moat
// interleave with those of phase 2.

// planRanks numbers the rule set's IDs (ids, every rule's of every
// phase; phases, each one's phase) in order, for flush.
func (p *gatePlan) planRanks(ids []int, phases map[int]int) {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	p.ids = sorted
	p.rank = make(map[int]int, len(sorted))
	p.phase = make([]int, len(sorted))
	for i, id := range sorted {
		p.rank[id] = i
		p.phase[i] = phases[id]
	}
}

// remove records rule id as removed by this pass.
func (s *gateState) remove(id int) {
	if cap(s.removed) < len(s.p.ids) {
		s.removed = make([]bool, len(s.p.ids))
	}
	s.removed = s.removed[:len(s.p.ids)]
	s.removed[s.p.rank[id]] = true
	s.any = true
}

// removedHere reports whether this pass has removed rule id.
func (s *gateState) removedHere(id int) bool {
	return s.any && s.removed[s.p.rank[id]]
}

// flush removes from the transaction the rules recorded, as ranges, by
// the gate of phase: a range runs on over the rules of earlier phases
// and ends at a rule removed.
func (s *gateState) flush(rr ruleRemover, phase int) {
	if !s.any {
		return
	}
	for i := 0; i < len(s.removed); i++ {
		if !s.removed[i] {
			continue
		}
		j := i
		for k := i + 1; k < len(s.removed); k++ {
			if s.removed[k] {
				j = k
			} else if pk := s.p.phase[k]; pk < 1 || pk >= phase {
				break
			}
		}
		rr.RemoveRuleByIDRange(s.p.ids[i], s.p.ids[j])
		clear(s.removed[i : j+1])
		i = j
	}
	s.any = false
}
