package waf

import (
	"reflect"
	"slices"
	"unsafe"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

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
// interleave with those of phase 2. The phase-1 gate's may name the
// rules of the phases after it too, when they are taken out of the
// transaction before phase 2 begins (endPhase1, which Tx.Request calls
// once phase 1 is over, and the phase-2 gate, dropPhase1, for a
// transaction driven otherwise): its ranges, some twenty when they
// stopped at every rule of phase 2, are then a handful, one between
// each two rules phase 1 runs. Only the rules of phase 2 that may run
// before the phase-2 gate, and the gate itself, end them (early).
//
// The ranges a transaction holds are read for every rule of every phase
// after they were added, the phase-1 gate's (some twenty) for each of
// phase 2's 190 rules too, though they name rules of phase 1 only: most
// of Coraza's reading of ranges in phase 2 was theirs. Coraza evaluates
// a rule in its own phase only (and SecMarkers, phase 0, in every
// phase), so once phase 2 has begun a range that names rules of phase
// 1 alone removes nothing more; the phase-2 gate drops such ranges,
// whoever added them, before it adds its own. A range that names any
// rule of another phase, or a marker, stays.

// planRanks numbers the rule set's IDs (ids, every rule's of every
// phase in the rule set's order, the gates' phases planned; phases, each
// one's phase) in order, for flush.
func (p *gatePlan) planRanks(ids []int, phases map[int]int) {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	p.ids = sorted
	p.rank = make(map[int]int, len(sorted))
	p.phase = make([]int, len(sorted))
	for ph := range p.inPhase {
		p.inPhase[ph] = make([]int32, len(sorted)+1)
	}
	for i, id := range sorted {
		p.rank[id] = i
		p.phase[i] = phases[id]
		for ph := range p.inPhase {
			p.inPhase[ph][i+1] = p.inPhase[ph][i]
			if phases[id] == ph+1 {
				p.inPhase[ph][i+1]++
			}
		}
	}
	// ids is in the rule set's order: the rules of phase 2 up to its
	// first gate, and its gates, are early.
	p.early = make([]bool, len(sorted))
	gated := false
	for _, id := range ids {
		if phases[id] != 2 {
			continue
		}
		if p.gatePhase[id] == 2 {
			p.early[p.rank[id]] = true
			gated = true
		} else if !gated {
			p.early[p.rank[id]] = true
		}
	}
}

// ranks returns the ranks of the first and after the last of the rule
// set's IDs that rng names.
func (p *gatePlan) ranks(rng [2]int) (lo, hi int) {
	lo, _ = slices.BinarySearch(p.ids, rng[0])
	hi, found := slices.BinarySearch(p.ids, rng[1])
	if found {
		hi++
	}
	return lo, max(lo, hi)
}

// rangesAt is where Coraza's transaction type keeps the ranges of rules
// removed from it (an unexported field, found by name and type at load).
type rangesAt struct {
	typ reflect.Type
	off uintptr
}

// rangesField finds the ranges field of w's transactions; nil if they
// are not laid out as expected, and then no range is dropped.
func rangesField(w coraza.WAF) *rangesAt {
	tx := w.NewTransaction()
	defer tx.Close()
	t := reflect.TypeOf(tx)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	f, ok := t.Elem().FieldByName("ruleRemoveByIDRanges")
	if !ok || f.Type != reflect.TypeFor[[][2]int]() {
		return nil
	}
	return &rangesAt{typ: t, off: f.Offset}
}

// of returns tx's ranges, or nil when tx is not of the type found.
func (a *rangesAt) of(tx plugintypes.TransactionState) *[][2]int {
	if a == nil || reflect.TypeOf(tx) != a.typ {
		return nil
	}
	v := any(tx)
	data := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1]
	return (*[][2]int)(unsafe.Add(data, a.off))
}

// dropPhase1 removes from tx the ranges that name rules of phase 1
// alone, and the phase-1 gate's (see above): called in phase 2. The
// phase-1 gate's are known by their place in the list (txMemo.p1Ranges,
// kept by flush), and are usually gone already (endPhase1); any other
// range is looked up by its IDs' ranks.
func (s *gateState) dropPhase1() {
	rs := s.p.ranges.of(s.tx)
	if rs == nil {
		return
	}
	var from, to int
	if m := memoOf(s.tx); m != nil {
		from, to = m.p1Ranges[0], m.p1Ranges[1]
		m.p1Ranges = [2]int{}
	}
	kept := (*rs)[:0]
	for i, rng := range *rs {
		if i >= from && i < to {
			continue
		}
		if !s.p.phase1Only(rng) {
			kept = append(kept, rng)
		}
	}
	clear((*rs)[len(kept):])
	*rs = kept
}

// endPhase1 removes the phase-1 gate's ranges from tx once phase 1 is
// over, before Coraza evaluates any rule of phase 2 (Tx.Request): they
// may name rules of later phases (flush), and no rule of phase 2 must
// meet them, nor read past them.
func (p *gatePlan) endPhase1(tx plugintypes.TransactionState) {
	m := memoOf(tx)
	rs := p.ranges.of(tx)
	if m == nil || rs == nil || m.p1Ranges[1] == 0 {
		return
	}
	*rs = slices.Delete(*rs, m.p1Ranges[0], m.p1Ranges[1])
	m.p1Ranges = [2]int{}
}

// phase1Only reports whether every rule whose ID is in rng is of phase
// 1 (a range that names no rule, too). A range from 0 names the
// SecMarkers (ID 0, every phase), which ids leaves out.
func (p *gatePlan) phase1Only(rng [2]int) bool {
	if rng[0] <= 0 {
		return false
	}
	lo, hi := p.ranks(rng)
	return p.inPhase[0][hi]-p.inPhase[0][lo] == int32(hi-lo)
}

// removeRank records the rule of rank i as removed by this pass.
func (s *gateState) removeRank(i int) {
	if cap(s.removed) < len(s.p.ids) {
		s.removed = make([]bool, len(s.p.ids))
	}
	s.removed = s.removed[:len(s.p.ids)]
	s.removed[i] = true
	s.any = true
}

// removedHere reports whether this pass has removed rule id.
func (s *gateState) removedHere(id int) bool {
	return s.any && s.removed[s.p.rank[id]]
}

// flush removes from the transaction the rules recorded, as ranges, by
// the gate of phase: a range runs on over the rules of earlier phases
// and ends at a rule removed. Coraza reads the ranges in order for each
// rule of the phase up to the first that names it, and every one of
// them for a rule none names: the range naming the most rules of the
// phase goes first (on a benign GET the phase-2 gate's last by ID names
// 106 of the 165 rules it decides), the others after it in order;
// sorting them all costs more than it saves. The ranges the
// transaction held before are read first: in phase 2 those of phase 1
// have been dropped (dropPhase1), and a ctl that removes rules before
// the gate is rare.
func (s *gateState) flush(rr ruleRemover, phase int) {
	if phase == 2 {
		s.dropPhase1()
	}
	if !s.any {
		return
	}
	// The phase-1 gate's ranges run on over the rules of later phases
	// (but those of phase 2 before its gate, early) when their place in
	// the transaction's list is kept for them to be removed before
	// phase 2 (endPhase1, dropPhase1): once, in a transaction Begin
	// started.
	var m *txMemo
	before := -1
	if phase == 1 {
		if rs := s.p.ranges.of(s.tx); rs != nil && any(rr) == any(s.tx) {
			if m = memoOf(s.tx); m != nil && m.p1Ranges == [2]int{} {
				before = len(*rs)
			}
		}
	}
	s.rng = s.rng[:0]
	most, mostRules := 0, int32(-1)
	for i := 0; i < len(s.removed); i++ {
		if !s.removed[i] {
			continue
		}
		j := i
		for k := i + 1; k < len(s.removed); k++ {
			if s.removed[k] {
				j = k
			} else if pk := s.p.phase[k]; pk < 1 || pk >= phase && (before < 0 || pk == phase || s.p.early[k]) {
				break
			}
		}
		if phase == 1 || phase == 2 {
			if n := s.p.inPhase[phase-1][j+1] - s.p.inPhase[phase-1][i]; n > mostRules {
				most, mostRules = len(s.rng), n
			}
		}
		s.rng = append(s.rng, [2]int{s.p.ids[i], s.p.ids[j]})
		clear(s.removed[i : j+1])
		i = j
	}
	s.any = false
	rr.RemoveRuleByIDRange(s.rng[most][0], s.rng[most][1])
	for i, rng := range s.rng {
		if i != most {
			rr.RemoveRuleByIDRange(rng[0], rng[1])
		}
	}
	if before >= 0 {
		m.p1Ranges = [2]int{before, before + len(s.rng)}
	}
}
