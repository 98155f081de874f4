package waf

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The gate: at the start of phases 1 and 2, one pass decides which of the
// phase's rules cannot match this request, and removes them from the
// transaction before Coraza evaluates them.
//
// Coraza pays for every rule it evaluates, matching or not: it gathers
// the rule's variables into fresh slices, writes the RULE collection,
// expands the rule's msg and logdata macros, looks every transformation
// up in a map and hashes it. On CRS at paranoia 1 that is some 300 rules
// a request, and that bookkeeping, not the operators, is most of the WAF's
// time. The gate asks each rule the only question that decides whether it
// does anything (does its operator answer true for one of its values?)
// with Coraza's own transformation functions and operators, the values
// read through Coraza's own collections, and nothing else:
//
//   - a rule's values are read with the same lookup Coraza uses (whole
//     collection, key or key regex); exclusions (SecRuleUpdateTarget "!",
//     ctl:ruleRemoveTarget*) are not applied, so the gate sees a superset
//     of what the rule would, which can only keep a rule it could remove;
//   - transformations are the rule's own functions, applied as Coraza
//     applies them (an erroring step leaves the value as it was), cached
//     per request by transformation prefix and value (a step takes the
//     value its twin in another chain computed on an equal input,
//     gateshare.go); a step whose function is known to leave a value
//     holding none of certain bytes as it was (gateNode.acts) is not run
//     on such a value;
//   - operators are the rule's own instances, asked while the transaction
//     is not capturing, so they change nothing. Only operators whose answer
//     depends on the value alone are used: moat's @rx and scorers, and
//     Coraza's built-ins that read no macro (and @moatProxyHeader, whose
//     answer depends on the request's headers and target alone); a rule
//     with any other operator is always evaluated;
//   - only variables no rule of the phase writes are read (the request's
//     arguments, headers, cookies, URI, body and files; never TX, MATCHED_*
//     or what a ctl changes), and the phase-2 gate runs after moat's
//     inspection pass (rule 90002), the last thing that adds arguments;
//     the one exception is a budget rule's TX:moat_start, which only that
//     pass writes (a rule set in which another rule may write it leaves
//     budget rules to Coraza): without it the rule has no value to test;
//   - a rule removed this way would not have matched, so it would have run
//     no action, set no variable and logged nothing; the rules that a
//     skip:N action counts over are never removed (skip counts only rules
//     the transaction has not removed);
//   - a counted variable (&ARGS) is decided only when it holds no value
//     (its count is then 0 whatever the exclusions) and the rule has no
//     transformation; a count above 0 leaves the rule to Coraza;
//   - a multiMatch rule is asked about the values Coraza's multiMatch
//     evaluation hands its operator: the value, then the value after each
//     step of the chain that reports a change (a step that reports none
//     hands the value before it to the next, whatever it returned), read
//     from the same cache as the other rules' chains up to a step that
//     returns another string without reporting a change, and each asked
//     the rule's pick test first when the gate has its bytes;
//   - the @rx rules that read through one transformation chain and carry
//     many literals run their necessity tests together (planMulti).
//
// TestGateDifferential runs CRS's regression suite and the request corpora
// through the rule set with and without the gate and requires identical
// verdicts and matched rules.

// gateAction is the moatGate action: the rule that carries it decides for
// the rules after it in its phase.
type gateAction struct{ plan *gateHolder }

type gateHolder struct {
	p      atomic.Pointer[gatePlan]
	consts atomic.Pointer[[]txConst] // the resolver's folded TX (resolve.go), set by the phase-1 gate
}

// gateBuilding receives the gate actions created while a WAF is being
// built (under buildMu), so that New can give them the plan.
var gateBuilding atomic.Pointer[[]*gateHolder]

func newGateAction() plugintypes.Action {
	h := &gateHolder{}
	if l := gateBuilding.Load(); l != nil {
		*l = append(*l, h)
	}
	return gateAction{h}
}

func (gateAction) Init(plugintypes.RuleMetadata, string) error { return nil }

func (gateAction) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

func (g gateAction) Evaluate(r plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	if c := g.plan.consts.Load(); c != nil && r.ID() == gate1ID {
		col := tx.Variables().TX()
		for _, kv := range *c {
			col.Set(kv.key, kv.values)
		}
	}
	p := g.plan.p.Load()
	if p == nil {
		return
	}
	rules := p.after[r.ID()]
	rr, ok := tx.(ruleRemover)
	phase := p.gatePhase[r.ID()]
	if len(rules) == 0 || !ok || tx.Capturing() {
		if phase != 2 || p.files(r.ID()) {
			applyTargets(tx, nil)
		}
		return
	}
	m := memoOf(tx)
	s := m.resumeGate(p, tx, phase)
	if s == nil {
		s = gateScratch.Get().(*gateState)
		s.reset(p, tx)
	}
	if p.hdr != nil && !s.looked {
		s.lookHeaders()
	}
	// A request big enough to be timed (see budget.go) stops being gated
	// once its CPU budget is spent: the rules left are Coraza's, and the
	// next budget rule refuses it, as without the gate.
	clock := tx.Variables().TX().Get(txStart)
	start := first(clock)
	s.clocked = len(clock) > 0
	next := p.next[r.ID()]
	filer := r.ID()
	if s.decide(rules, start) && next != 0 && p.covers[r.ID()] && s.removedAll(rules) {
		// No rule up to the next gate can match, nor stop: this pass
		// decides the next's rules too, and removes it (gatesplit.go).
		s.decide(p.after[next], start)
		s.removeRank(p.rank[next])
		filer, next = next, 0
	}
	if phase == 2 && p.files(filer) {
		applyTargets(tx, s)
	}
	s.flush(rr, phase)
	if p.hdr != nil {
		s.keepHeaders()
	}
	if p.counting {
		p.work.Add(int64(s.work))
		p.read.Add(int64(s.read))
	}
	if (phase == 1 || next != 0) && m != nil && !p.fresh {
		// The phase-2 gate reads most of these values again (headers,
		// URI, query): it takes what this pass knows of them; the
		// phase's next pass takes it all (gatesplit.go).
		m.gate, m.gateFrom = s, r.ID()
		return
	}
	s.release()
}

// release hands s back to the pool.
func (s *gateState) release() {
	s.tx = nil
	gateScratch.Put(s)
}

// resumeGate takes the pass an earlier gate kept in m (which may be
// nil) for the next pass, of phase, of plan p on tx, nil when there is
// none.
func (m *txMemo) resumeGate(p *gatePlan, tx plugintypes.TransactionState, phase int) *gateState {
	if m == nil || m.gate == nil {
		return nil
	}
	s := m.gate
	m.gate = nil
	if s.p != p || s.tx != tx {
		s.release()
		return nil
	}
	if p.gatePhase[m.gateFrom] == phase {
		s.carry()
		return s
	}
	s.resume()
	if p.onResume != nil {
		p.onResume(s)
	}
	return s
}

// gatePlan is what the gate knows of a rule set, read once from the
// loaded rules.
type gatePlan struct {
	after     map[int][]gateRule // gate rule ID → the rules it decides
	gatePhase map[int]int        // gate rule ID → its phase
	next      map[int]int        // gate rule ID → the gate of its phase that decides the rules after it (gatesplit.go)
	covers    map[int]bool       // gate rule ID → it decides every rule up to next
	selectors []gateSelector
	nodes     []gateNode // transformation prefixes; 0 is "none"
	rules     int        // rules gated, for the load log and tests
	budget    budgetOp   // the phase-2 CPU budget
	// chains: links may decide their chain; consts: the TX variables an
	// operator's macro may read (gatechain.go).
	chains bool
	consts map[string]bool
	// multi[node] runs the necessity tests of the @rx rules that read
	// through node all at once (nil: none); words is the length of their
	// owner sets.
	multi []*nodeMulti
	words int
	// keyNeed[k] is the test a name must pass for selector k's key
	// expression to match it (keyneed.go); nil: no expression, or none.
	keyNeed []*necessity
	// all and constKeys: the rule set and the resolver's TX keys, while
	// planning (capturedChain).
	all       []*rrule
	constKeys []string
	// constVals: the resolver's TX values by key, while planning
	// (constOperator).
	constVals map[string]string
	// ids: every rule ID of the set, in order; rank: an ID's place there;
	// phase[rank]: that rule's phase (gateremove.go).
	ids   []int
	rank  map[int]int
	phase []int
	// ranges: where a transaction keeps its removed ranges, for the
	// phase-2 gate to drop those only phase 1 reads (nil: not found);
	// inPhase[ph-1][i]: how many of the first i ranks are of phase ph,
	// 1 or 2 (gateremove.go).
	ranges  *rangesAt
	inPhase [2][]int32
	// early[rank]: a rule of phase 2 that may run before the phase-2
	// gate, or that gate (gateremove.go).
	early []bool
	// deferredTargets: the phase-2 gate files target removals of phase
	// 1 (gatetargets.go), so a route that excludes it takes the
	// unresolved rule set.
	deferredTargets bool
	targetGate      int // the gate that files them (gatesplit.go)
	// twins[node]: the nodes whose value node may take (gateshare.go).
	twins [][]int
	// unions: how many (selector, chain) pairs rules read with a byte
	// test (gateRule.unions), and the pairs of their chains' beginnings
	// that they take their bytes from; unionSel[slot] and
	// unionNode[slot] are each one's selector and chain; unionUp[slot]
	// the slot of the same selector through the chain without its last
	// step when that step's bytes are known (gateNode.acts), else -1:
	// where the values' bytes before the step hold none it acts on, the
	// step leaves every value as it was, and the slot has unionUp's
	// bytes. wholes[w]: the unions slots whose bytes make up whole slot
	// w (gateRule.whole), all of one chain, wholeNode[w]; wholeUp[w]
	// the whole slot of the same selectors through the beginning of that
	// chain before its last steps whose bytes are known (gateNode.acts),
	// wholeActs[w] those steps' bytes together; -1 when the last step's
	// are not known. Where the values' bytes before those steps hold
	// none of them, the steps leave every value as it was.
	unions    int
	unionSel  []int
	unionNode []int
	unionUp   []int32
	// stable[k]: selector k reads one of the stableVariables (stableVar
	// by variable); stableWhole[w]: each of whole slot w's does. resume
	// forgets the slots of the others.
	stable      []bool
	stableVar   [256]bool
	stableWhole []bool
	wholes      [][]int32
	wholeNode   []int
	wholeUp     []int32
	wholeActs   []byteSet
	// hdr keeps the answers of tests on header values across requests
	// (gatecache.go); nil: none. hdrTests is the number of such tests.
	hdr      *headerCache
	hdrTests int
	// selTests[k]: the tests of the rules that ask selector k's values
	// rule by rule, when each has one (nil: not; gatecache.go);
	// argSel[k]: k's values are argument texts the cache may answer for.
	selTests [][]uint64
	argSel   []bool
	// counting: the passes add up their work (gateState.work) in work;
	// set by tests only.
	counting bool
	work     atomic.Int64
	// read: the values' byte sets the passes read (gateState.read),
	// when counting.
	read atomic.Int64
	// fresh: every pass starts with nothing known, none taking what the
	// phase-1 pass knew (gateState.resume); onResume is called with a
	// pass resumed. Set by tests only.
	fresh    bool
	onResume func(*gateState)
}

// nodeMulti is the necessity tests of the @rx rules that read values
// through one transformation chain, as two automata: the
// case-insensitive literal sets and the exact ones. Each pattern is one
// owner (gateRule.bit).
type nodeMulti struct {
	fold, exact *multiDFA
	// foldSet holds every case-insensitive owner: a value holding a rune
	// that folds into an ASCII letter may match them all (see
	// foldsIntoASCII).
	foldSet []uint64
}

// gateBudgetEvery is how many rules the gate decides between two readings
// of the CPU clock (a system call).
const gateBudgetEvery = 16

type gateRule struct {
	id   int
	rank int   // id's place among the rule set's IDs (gateremove.go)
	sels []int // into gatePlan.selectors
	node int   // the rule's whole transformation chain
	op   plugintypes.Operator
	neg  bool
	// multiMatch: the operator sees the value and its every transformation
	// that changed it (Coraza's executeTransformationsMultimatch), steps;
	// stepNodes[i] is the chain of the first i+1 steps (gatePlan.nodes),
	// whose values the gate caches for every rule that reads them.
	multiMatch bool
	steps      []plugintypes.Transformation
	stepNodes  []int
	// rx and bit: an @rx rule whose necessity test the gate runs with
	// those of the other rules of its chain (gatePlan.multi); bit is its
	// owner number there, -1 when it runs its own.
	rx  *rxOp
	bit int
	// pick: a quick test of the operator's literals (see pickTest), which
	// a value must pass for the operator to answer true; nil when the
	// operator has none or the rule is negated.
	pick *pickTest
	// class: the byte test of an @rx rule's pattern (necessity.class),
	// asked of the value's bytes; nil when it has none or is negated.
	class *byteSet
	// rxOwn: the rule's operator when it is an @rx the gate asks without
	// its class test, having asked class of the value's bytes (nil:
	// negated, or not @rx).
	rxOwn *rxOp
	// links: the tests of links of the rule's chain that it cannot match
	// without (gatechain.go); op is nil when the chain's first rule is
	// not the gate's to ask.
	links []gateRule
	// unclocked: a budget rule (budget.go), which can only match once the
	// inspection pass has started the request's clock in TX:moat_start.
	unclocked bool
	// captured: a chain decided with what its first link would write
	// (gatecapture.go).
	captured *capturedChain
	// keys: a rule that reads TX by key regex alone, decided by the
	// keys that may be there (gatekeyrx.go).
	keys *txKeyReader
	// unions[i]: the slot of the bytes of all of sels[i]'s values after
	// node (gateState.uni), or -1; nil when the rule has no byte test
	// (pick, class). A rule whose test refuses the bytes of all the
	// values together refuses each value: its values are not read one
	// by one.
	unions []int32
	// whole: 1 + the slot of the bytes of all the values of all of sels
	// that are not counts, after node (gateState.whole); 0 when fewer
	// than two slots of unions make them up. CRS's rules mostly read one
	// list of variables through one chain: a test that refuses those
	// bytes refuses every such selector at once, with one test where
	// unions takes one per selector.
	whole int32
	// counted: one of sels is a count (&VARIABLE).
	counted bool
	// quick: the rule is decided by its own operator's values alone
	// (no captured chain, no key reader, no budget rule) and has a
	// whole slot and no count: when that slot's bytes refuse its byte
	// tests and no value of its is one the header cache answers for,
	// the rule cannot match (opMayMatch's first answer), which the
	// gate's loop asks first.
	quick bool
	// test: the rule's number among the tests whose answers on header
	// values the cache keeps (gatecache.go), or -1.
	test int
	// guards: the rules with a skip:N action that may count over this
	// one; it is decided only on a request where the gate removed each
	// of them, and is left to Coraza otherwise.
	guards []int
}

// gateSelector is one VARIABLE[:key] a rule reads.
type gateSelector struct {
	v     variables.RuleVariable
	key   string
	keyRx *regexp.Regexp
	// lower: key, lower-cased as a case-insensitive collection keeps
	// its keys (gateState.values).
	lower string
	// count: &VARIABLE, whose one value is the number of values.
	count bool
}

// gateNode is a transformation chain: its parent's, then fn.
type gateNode struct {
	parent int
	fn     plugintypes.Transformation
	// acts: the bytes fn acts on: on a value holding none of them it
	// returns the value, reporting no change and no error (nil: not
	// known). The gate then does not run it.
	acts *byteSet
	// changes: the bytes without which fn reports no change (nil: not
	// known); a multiMatch rule's last step is not run on a value holding
	// none of them, for its operator sees that step's value only when
	// the step reports a change.
	changes *byteSet
}

const corazaTransformations = "github.com/corazawaf/coraza/v3/internal/transformations."

// gateVariables are those the gate may read: the request as parsed, which
// no rule writes.
var gateVariables = map[variables.RuleVariable]bool{
	variables.Args: true, variables.ArgsGet: true, variables.ArgsPost: true, variables.ArgsPath: true,
	variables.ArgsNames: true, variables.ArgsGetNames: true, variables.ArgsPostNames: true,
	variables.RequestHeaders: true, variables.RequestHeadersNames: true,
	variables.RequestCookies: true, variables.RequestCookiesNames: true,
	variables.RequestURI: true, variables.RequestURIRaw: true, variables.RequestFilename: true,
	variables.RequestBasename: true, variables.RequestLine: true, variables.QueryString: true,
	variables.RequestMethod: true, variables.RequestProtocol: true, variables.RequestBody: true,
	variables.Files: true, variables.FilesNames: true, variables.XML: true,
	// Set by Coraza while it parses the query and the body, before the
	// gate of the phase that reads them, and by no rule.
	variables.MultipartPartHeaders: true, variables.ReqbodyError: true,
	variables.MultipartStrictError: true, variables.ArgumentsLimitReached: true,
	// Phase 2 only: a phase-1 ctl:requestBodyProcessor writes it.
	variables.ReqbodyProcessor: true,
	// The length of the arguments' names and values, worked out from
	// them when read.
	variables.ArgsCombinedSize: true,
}

// stableVariables are those of gateVariables whose values are all set
// before phase 1 (the request line and headers) and that nothing changes
// after: the phase-2 gate takes what the phase-1 pass read of them
// (gateState.resume). The arguments, cookies (the inspection pass adds
// their normal forms) and the body's variables change between the
// passes. TestGateStable checks the values kept against the
// transaction's at the phase-2 gate.
var stableVariables = map[variables.RuleVariable]bool{
	variables.RequestHeaders: true, variables.RequestHeadersNames: true,
	variables.RequestURI: true, variables.RequestURIRaw: true, variables.RequestFilename: true,
	variables.RequestBasename: true, variables.RequestLine: true, variables.QueryString: true,
	variables.RequestMethod: true, variables.RequestProtocol: true,
}

// gateOperators are Coraza's built-in operators whose answer depends on
// the value alone (when their argument has no macro).
var gateOperators = map[string]bool{
	"pm": true, "pmf": true, "pmFromFile": true, "within": true, "streq": true,
	"beginsWith": true, "endsWith": true, "contains": true, "containsWord": true,
	"validateByteRange": true, "validateUrlEncoding": true, "validateUtf8Encoding": true,
	"detectSQLi": true, "detectXSS": true, "eq": true, "ge": true, "gt": true, "le": true, "lt": true,
	"strmatch": true, "unconditionalMatch": true, "noMatch": true,
}

// planGate reads the loaded rules of w (Coraza keeps them unexported; the
// fields read are checked, and any surprise is an error, so a Coraza
// upgrade that moves them fails the build rather than the gate's
// soundness) and plans the gate for each rule carrying moatGate (ids).
// Rules of a paranoia level above paranoia (the detection level) are left
// to Coraza: CRS skips them, and deciding them would be wasted work.
func planGate(w coraza.WAF, ids []int, paranoia int, budget time.Duration, consts []txConst) (*gatePlan, error) {
	rules, err := corazaRules(w)
	if err != nil {
		return nil, fmt.Errorf("waf: gate: %w", err)
	}
	p := &gatePlan{after: map[int][]gateRule{}, gatePhase: map[int]int{}, next: map[int]int{}, covers: map[int]bool{}, nodes: []gateNode{{}}, budget: budgetOp{budget}}
	if err := p.planChains(rules, consts); err != nil {
		return nil, err
	}
	nodeOf := map[[2]uintptr]int{}
	selOf := map[gateSelector]int{}
	isGate := map[int]bool{}
	for _, id := range ids {
		isGate[id] = true
	}
	type ruleInfo struct {
		id, phase int
		marker    bool
		gr        *gateRule
		skip      int
	}
	var all []ruleInfo
	clockWritten := false
	for i := range rules.Len() {
		r := rules.Index(i)
		id, err := intField(r, "ID_")
		if err != nil {
			return nil, err
		}
		phase, err := intField(r, "Phase_")
		if err != nil {
			return nil, err
		}
		info := ruleInfo{id: id, phase: phase, marker: r.FieldByName("SecMark_").String() != ""}
		acts := r.FieldByName("actions")
		if acts.Kind() != reflect.Slice {
			return nil, errors.New("waf: gate: Coraza rule actions not found")
		}
		for j := range acts.Len() {
			if a := acts.Index(j); a.FieldByName("Name").String() == "skip" {
				info.skip = skipCount(a.FieldByName("Function"))
			}
		}
		gr, err := gateable(r, p, nodeOf, selOf)
		if err == nil {
			gr, err = p.chainLinks(r, gr, nodeOf, selOf)
		}
		if err == nil {
			gr, err = p.capturedChain(r, gr)
		}
		if err == nil && gr == nil {
			gr, err = p.keyReader(r, i, phase, nodeOf, selOf)
		}
		if err != nil {
			return nil, err
		}
		if rr, err := readRule(r); err != nil {
			return nil, err
		} else if writesKey(rr, txStart) {
			clockWritten = true
		}
		if gr != nil && aboveParanoia(r, paranoia) {
			// CRS jumps over it (skipAfter) at this paranoia level; if a
			// request raises the level, Coraza evaluates it in full.
			gr = nil
		}
		info.gr = gr
		all = append(all, info)
	}
	if clockWritten {
		// A rule of the set writes TX:moat_start: budget rules are
		// Coraza's.
		for i := range all {
			if all[i].gr != nil && all[i].gr.unclocked {
				all[i].gr = nil
			}
		}
	}
	// skip:N skips the next N rules of its phase that the transaction has
	// not removed, so removing one would move what it skips. Every rule
	// from a skip to its phase's N-th next SecMarker (which no exclusion
	// removes, so the skip cannot reach past it) is left to Coraza, but
	// on a request where the gate removes the skipping rule itself: it
	// does not match, so nothing is skipped (gateRule.guards).
	for i, info := range all {
		markers := 0
		for j := i + 1; info.skip > 0 && j < len(all) && markers < info.skip; j++ {
			if all[j].phase != info.phase && all[j].phase != 0 {
				continue // phase 0 (markers) is every phase
			}
			if info.gr != nil && all[j].gr != nil {
				all[j].gr.guards = append(all[j].gr.guards, info.id)
			} else {
				all[j].gr = nil
			}
			if all[j].marker {
				markers++
			}
		}
	}
	for i, info := range all {
		if !isGate[info.id] {
			continue
		}
		var list []gateRule
		covers := true
		for _, later := range all[i+1:] {
			if later.phase == info.phase && isGate[later.id] {
				p.next[info.id] = later.id // it decides the rest (gatesplit.go)
				p.covers[info.id] = covers
				break
			}
			if later.phase == info.phase && later.gr != nil {
				list = append(list, *later.gr)
			} else if later.phase == info.phase {
				covers = false
			}
		}
		p.after[info.id] = list
		p.rules += len(list)
		p.gatePhase[info.id] = info.phase
	}
	ruleIDs := make([]int, 0, len(all))
	phases := map[int]int{}
	for _, info := range all {
		if info.id != 0 {
			ruleIDs = append(ruleIDs, info.id)
			phases[info.id] = info.phase
		}
	}
	p.planRanks(ruleIDs, phases)
	p.ranges = rangesField(w)
	for _, list := range p.after {
		for i := range list {
			list[i].rank = p.rank[list[i].id]
		}
	}
	p.placeCaptured()
	targets, targetGate := planTargets(p.all, isGate)
	p.all, p.constKeys, p.constVals = nil, nil, nil
	p.planMulti()
	p.planTwins()
	p.planUnions()
	p.planStable()
	p.hdrTests = p.planHeaderTests()
	if p.hdr, err = newHeaderCache(p.hdrTests, headerCacheEntries); err != nil {
		return nil, fmt.Errorf("waf: gate: %w", err)
	}
	p.keyNeed = make([]*necessity, len(p.selectors))
	for k, sel := range p.selectors {
		if sel.keyRx != nil {
			p.keyNeed[k] = newKeyNecessity(sel.keyRx)
		}
	}
	for _, t := range targets {
		t.tr.now, t.tr.later = t.now, t.later
	}
	p.deferredTargets = len(targets) > 0
	if p.deferredTargets {
		p.targetGate = targetGate
	}
	return p, nil
}

// minMultiRules is the fewest patterns a chain needs for its rules'
// necessity tests to run together.
const minMultiRules = 3

// planMulti gives every @rx rule with a large literal necessity test an owner
// number in its chain's automata (one per pattern and chain), and builds
// them. A chain whose literals are too many for a table leaves its rules
// to their own tests.
func (p *gatePlan) planMulti() {
	type owner struct {
		node int
		op   *rxOp
	}
	bits := map[owner]int{}
	perNode := map[int][]*rxOp{}
	for _, list := range p.after {
		for i := range list {
			r := &list[i]
			r.bit = -1
			o, ok := r.op.(*rxOp)
			if !ok || r.neg || r.multiMatch || o.need.dfa == nil && o.need.matcher == nil {
				// A few literals are found faster by their own
				// test (a vectorised byte search) than by any table.
				continue
			}
			r.rx = o
			k := owner{r.node, o}
			b, ok := bits[k]
			if !ok {
				b = len(perNode[r.node])
				perNode[r.node] = append(perNode[r.node], o)
				bits[k] = b
			}
			r.bit = b
		}
	}
	words := 0
	for node, ops := range perNode {
		if len(ops) < minMultiRules {
			// One table walk per rule is no dearer than one for all.
			delete(perNode, node)
			continue
		}
		words = max(words, (len(ops)+63)/64)
	}
	p.words = words
	p.multi = make([]*nodeMulti, len(p.nodes))
	built := map[owner]bool{}
	for node, ops := range perNode {
		m := &nodeMulti{foldSet: make([]uint64, words)}
		var fl, el []string
		var fo, eo []int
		for b, o := range ops {
			for _, l := range o.need.lits {
				if o.need.fold {
					fl, fo = append(fl, l), append(fo, b)
				} else {
					el, eo = append(el, l), append(eo, b)
				}
			}
			if o.need.fold {
				m.foldSet[b/64] |= 1 << (b % 64)
			}
		}
		okFold, okExact := len(fl) == 0, len(el) == 0
		if !okFold {
			m.fold = newMultiDFA(fl, fo, true, words)
			okFold = m.fold != nil
		}
		if !okExact {
			m.exact = newMultiDFA(el, eo, false, words)
			okExact = m.exact != nil
		}
		for _, o := range ops {
			if o.need.fold && okFold || !o.need.fold && okExact {
				built[owner{node, o}] = true
			}
		}
		p.multi[node] = m
	}
	for _, list := range p.after {
		for i := range list {
			if r := &list[i]; r.bit >= 0 && !built[owner{r.node, r.rx}] {
				r.bit = -1
			}
		}
	}
}

// budgetGate returns the gate's view of a budget rule (TX:moat_start
// "@moatOverBudget N"): it reads one value, which the inspection pass
// (rule 90002, before the phase-2 gate) sets only on requests big enough
// to spend the budget, and which nothing else writes (planGate checks);
// without it the rule has nothing to evaluate. With it, the rule is left
// to Coraza: whether the budget is spent is a question for later.
func budgetGate(r reflect.Value, id int, neg bool) (*gateRule, error) {
	vars := r.FieldByName("variables")
	if neg || vars.Kind() != reflect.Slice || vars.Len() != 1 {
		return nil, nil
	}
	v := vars.Index(0)
	if v.FieldByName("Count").Bool() || variables.RuleVariable(v.FieldByName("Variable").Uint()) != variables.TX ||
		!strings.EqualFold(v.FieldByName("KeyStr").String(), txStart) || !v.FieldByName("KeyRx").IsNil() {
		return nil, nil
	}
	return &gateRule{id: id, unclocked: true}, nil
}

// aboveParanoia reports whether rule r is tagged with a CRS paranoia level
// above pl.
func aboveParanoia(r reflect.Value, pl int) bool {
	tags := r.FieldByName("Tags_")
	if tags.Kind() != reflect.Slice {
		return false
	}
	for i := range tags.Len() {
		if n, ok := strings.CutPrefix(tags.Index(i).String(), "paranoia-level/"); ok {
			if lvl, err := strconv.Atoi(n); err == nil && lvl > pl {
				return true
			}
		}
	}
	return false
}

// skipCount is N of a skip:N action (Coraza's skipFn holds it as its
// only int field); 1<<30 (to the end of the phase) when it cannot be read.
func skipCount(fn reflect.Value) int {
	if fn.Kind() == reflect.Interface && !fn.IsNil() {
		v := fn.Elem()
		if v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Struct {
			for i := range v.NumField() {
				if f := v.Field(i); f.CanInt() && f.Int() > 0 {
					return int(f.Int())
				}
			}
		}
	}
	return 1 << 30
}

func intField(r reflect.Value, name string) (int, error) {
	f := r.FieldByName(name)
	if !f.IsValid() || !f.CanInt() {
		return 0, fmt.Errorf("waf: gate: Coraza rule field %s not found", name)
	}
	return int(f.Int()), nil
}

// exported returns f (an unexported field of an addressable value) as a
// value whose Interface may be called.
func exported(f reflect.Value) reflect.Value {
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// gateable returns the gate's view of rule r, or nil when the gate must
// leave it to Coraza.
func gateable(r reflect.Value, p *gatePlan, nodeOf map[[2]uintptr]int, selOf map[gateSelector]int) (*gateRule, error) {
	id, _ := intField(r, "ID_")
	if id <= 0 {
		return nil, nil // markers and chain links
	}
	phase, err := intField(r, "Phase_")
	if err != nil {
		return nil, err
	}
	return gateTest(r, id, phase, p, nodeOf, selOf)
}

// gateTest returns the gate's view of r's own test (its variables,
// transformations and operator) as rule id of phase reads it, or nil
// when the gate cannot ask it. r is a rule or a link of id's chain.
func gateTest(r reflect.Value, id, phase int, p *gatePlan, nodeOf map[[2]uintptr]int, selOf map[gateSelector]int) (*gateRule, error) {
	for _, name := range []string{"MultiMatch", "HasChain"} {
		if f := r.FieldByName(name); !f.IsValid() || f.Kind() != reflect.Bool {
			return nil, fmt.Errorf("waf: gate: Coraza rule field %s not found", name)
		}
	}
	op, neg, err := p.askableOp(r)
	if op == nil || err != nil {
		return nil, err
	}
	if _, ok := op.(budgetOp); ok {
		return budgetGate(r, id, neg)
	}
	gr := &gateRule{id: id, op: op, neg: neg, multiMatch: r.FieldByName("MultiMatch").Bool()}
	if !gr.neg {
		// A multiMatch rule's test is asked of each value its operator
		// sees.
		switch o := op.(type) {
		case *rxOp:
			gr.pick, gr.class, gr.rxOwn = o.need.pick, o.need.class, o
		case *pmOp:
			gr.pick = o.pick
		case scoreOp:
			gr.class = o.need
		default:
			gr.pick = builtinPick(op)
		}
	}
	vars := r.FieldByName("variables")
	if vars.Kind() != reflect.Slice {
		return nil, errors.New("waf: gate: Coraza rule variables not found")
	}
	for i := range vars.Len() {
		v := vars.Index(i)
		cnt, vr, ks, krx := v.FieldByName("Count"), v.FieldByName("Variable"), v.FieldByName("KeyStr"), v.FieldByName("KeyRx")
		if cnt.Kind() != reflect.Bool || vr.Kind() != reflect.Uint8 || ks.Kind() != reflect.String || krx.Kind() != reflect.Pointer {
			return nil, errors.New("waf: gate: Coraza variable fields not found")
		}
		rvar := variables.RuleVariable(vr.Uint())
		if !gateVariables[rvar] || rvar == variables.ReqbodyProcessor && phase != 2 {
			return nil, nil
		}
		sel := gateSelector{v: rvar, key: ks.String(), lower: strings.ToLower(ks.String()), count: cnt.Bool()}
		if !krx.IsNil() {
			sel.keyRx = exported(krx).Interface().(*regexp.Regexp)
			sel.key, sel.lower = "", ""
		}
		k, ok := selOf[sel]
		if !ok {
			k = len(p.selectors)
			p.selectors = append(p.selectors, sel)
			selOf[sel] = k
		}
		gr.sels = append(gr.sels, k)
	}
	ts := r.FieldByName("transformations")
	if ts.Kind() != reflect.Slice {
		return nil, errors.New("waf: gate: Coraza rule transformations not found")
	}
	node := 0
	for i := range ts.Len() {
		t, f, err := transformationAt(ts, i)
		if err != nil || t == nil {
			return nil, err
		}
		key := [2]uintptr{uintptr(node), f.Pointer()}
		n, ok := nodeOf[key]
		if !ok {
			n = len(p.nodes)
			p.nodes = append(p.nodes, gateNode{parent: node, fn: t, acts: actsOf(t), changes: changesOf(t)})
			nodeOf[key] = n
		}
		node = n
		if gr.multiMatch {
			gr.steps = append(gr.steps, t)
			gr.stepNodes = append(gr.stepNodes, node)
		}
	}
	gr.node = node
	for _, k := range gr.sels {
		if p.selectors[k].count && (node != 0 || gr.multiMatch) {
			// A count is asked about untransformed only (CRS's are t:none).
			return nil, nil
		}
	}
	return gr, nil
}

// transformationAt reads the i-th of a Coraza rule's transformations
// (ts, its "transformations" field) and the function value it holds; t
// is nil when that is no Transformation the gate can call.
func transformationAt(ts reflect.Value, i int) (t plugintypes.Transformation, f reflect.Value, err error) {
	f = ts.Index(i).FieldByName("Function")
	if !f.IsValid() || f.Kind() != reflect.Func {
		return nil, f, errors.New("waf: gate: Coraza transformation fields not found")
	}
	t, _ = exported(f).Interface().(plugintypes.Transformation)
	return t, f, nil
}

// askableOp returns r's operator when the gate may ask it (its answer
// depends on the value alone; a budget rule's is returned for
// gateTest to tell), nil when not.
func (p *gatePlan) askableOp(r reflect.Value) (plugintypes.Operator, bool, error) {
	opp := r.FieldByName("operator")
	if opp.Kind() != reflect.Pointer {
		return nil, false, errors.New("waf: gate: Coraza rule operator not found")
	}
	if opp.IsNil() {
		return nil, false, nil // SecAction
	}
	opv := opp.Elem()
	fn, data, neg := opv.FieldByName("Function"), opv.FieldByName("Data"), opv.FieldByName("Negation")
	opf := opv.FieldByName("Operator")
	if fn.Kind() != reflect.String || data.Kind() != reflect.String || neg.Kind() != reflect.Bool || !opf.IsValid() {
		return nil, false, errors.New("waf: gate: Coraza operator fields not found")
	}
	op, ok := exported(opf).Interface().(plugintypes.Operator)
	if !ok || op == nil {
		return nil, false, nil
	}
	switch op.(type) {
	case *rxOp, *pmOp, scoreOp, *fileNameOp, budgetOp:
	case proxyHeaderOp:
		// Its answer depends on the request's headers and target alone
		// (REQUEST_HEADERS, REQUEST_URI_RAW), which no rule writes.
	default:
		// Function is the operator as written: "@pm", "!@rx".
		name := strings.TrimPrefix(strings.TrimPrefix(fn.String(), "!"), "@")
		if !gateOperators[name] || strings.Contains(data.String(), "%{") && !p.constMacros(data.String()) {
			return nil, false, nil
		}
		if c, ok := p.constOperator(name, data.String()); ok {
			return c, neg.Bool(), nil
		}
	}
	return op, neg.Bool(), nil
}

// gateState is one gate pass's scratch: each selector's values (as
// indexes into vals, which holds each distinct value once) and the
// transformed values by (node, value).
type gateState struct {
	p     *gatePlan
	tx    plugintypes.TransactionState
	sel   [][]int
	selOK []bool
	// selRead: the selectors whose values the pass has read (selOK).
	selRead []int32
	vals    []string
	valIdx  map[strID]int
	// tval[vi*len(nodes)+node] is value vi after node's transformations,
	// when tstep says it was computed; tstep also says what node's last
	// step reported (stepChanged, stepSilent).
	tval  []string
	tstep []uint8
	// mat[vi*len(nodes)+node] is 1 + the offset in mval of the owners
	// whose literals value vi after node holds, once computed.
	mat  []int32
	mval []uint64
	// bset[vi*len(nodes)+node] is 1 + the offset in bval of the bytes of
	// value vi after node, once computed.
	bset []int32
	bval []byteSet
	// uni[slot] is 1 + the offset in bval of the bytes of all the values
	// of a selector after a chain (gateRule.unions), once computed; whole
	// the same for a list of selectors (gateRule.whole).
	uni   []int32
	whole []int32
	// uniSet and wholeSet: the slots of uni and whole computed.
	uniSet, wholeSet []int32
	// wholeHC[w]: one of the values of whole slot w's selectors is one
	// the header cache answers for (selHC), once whole[w] is computed.
	wholeHC []bool
	// all: each collection's every value, as FindAll returns it, once
	// asked for.
	all []collectionValues
	// removed[rank]: the rules this pass removes (gateremove.go); any:
	// one is.
	removed []bool
	any     bool
	// clocked: the inspection pass has started the request's CPU clock
	// (TX:moat_start), which no rule the pass decides writes.
	clocked bool
	// work counts the transformation steps the pass ran and the values
	// it asked an engine about (past the byte tests), for the tests
	// (gatePlan.counting).
	work int
	// read counts the values' byte sets the pass read (bytes), for the
	// tests.
	read int
	// hc[vi]: 1 + value vi's slot in the header cache's answers
	// (gatecache.go), 0 when the cache does not answer for it; selHC[k]:
	// selector k has such a value. hbits holds each slot's bits as the
	// cache kept them (asked, then answered true), hkeys its key, hdirty
	// whether this pass asked something new.
	hc     []int32
	selHC  []bool
	hbits  []uint64
	hkeys  []headerKey
	hdirty []bool
	hbuf   []byte // sum's blocks
	// hlook[vi]: whether the cache answers for value vi (hc[vi]) is
	// settled: it was looked up, or a selector took it; argsLooked: how
	// many argument texts of the request were looked up (lookArg).
	hlook      []bool
	argsLooked int
	// looked: the request's headers are registered (lookHeaders); a
	// pass that resumes another's does not look again, for the headers
	// are all added before phase 1 and nothing changes them.
	looked bool
	// kbuf: a TX key a keyed writer would make (gatekeyrx.go).
	kbuf []byte
	// rng: the ranges flush hands Coraza (gateremove.go).
	rng [][2]int
}

type collectionValues struct {
	v   variables.RuleVariable
	mds []types.MatchData
	// keys: whether every key of mds is ASCII (keysASCII) or one is
	// not (keysWide), once a keyed selector has asked (keyList); 0
	// before.
	keys uint8
}

const (
	keysASCII = 1 + iota
	keysWide
)

// strID names a string by where its bytes are: the collections hand out
// the same string to every selector that reads it, and hashing its
// address is cheaper than hashing its bytes. Two equal strings at two
// addresses are two values, which only costs a second evaluation.
type strID struct {
	p unsafe.Pointer
	n int
}

var gateScratch = sync.Pool{New: func() any {
	return &gateState{valIdx: map[strID]int{}}
}}

func (s *gateState) reset(p *gatePlan, tx plugintypes.TransactionState) {
	s.p, s.tx = p, tx
	if cap(s.sel) < len(p.selectors) {
		s.sel = make([][]int, len(p.selectors))
		s.selOK = make([]bool, len(p.selectors))
		s.selHC = make([]bool, len(p.selectors))
	}
	s.sel = s.sel[:len(p.selectors)]
	s.selOK = s.selOK[:len(p.selectors)]
	s.selHC = s.selHC[:len(p.selectors)]
	for i := range s.sel {
		s.sel[i] = s.sel[i][:0]
		s.selOK[i] = false
		s.selHC[i] = false
	}
	s.selRead = s.selRead[:0]
	s.hc = s.hc[:0]
	s.hlook = s.hlook[:0]
	s.argsLooked = 0
	s.hbits = s.hbits[:0]
	s.hkeys = s.hkeys[:0]
	s.hdirty = s.hdirty[:0]
	s.looked = false
	s.vals = s.vals[:0]
	clear(s.valIdx)
	clear(s.tval) // no request's text outlives it in the pool
	clear(s.kbuf[:cap(s.kbuf)])
	s.kbuf = s.kbuf[:0]
	s.tval = s.tval[:0]
	s.tstep = s.tstep[:0]
	s.mat = s.mat[:0]
	s.mval = s.mval[:0]
	s.bset = s.bset[:0]
	s.bval = s.bval[:0]
	if cap(s.uni) < p.unions {
		s.uni = make([]int32, p.unions)
	}
	s.uni = s.uni[:p.unions]
	if cap(s.whole) < len(p.wholes) {
		s.whole = make([]int32, len(p.wholes))
	}
	s.whole = s.whole[:len(p.wholes)]
	if cap(s.wholeHC) < len(p.wholes) {
		s.wholeHC = make([]bool, len(p.wholes))
	}
	s.wholeHC = s.wholeHC[:len(p.wholes)]
	clear(s.uni)
	clear(s.whole)
	s.uniSet, s.wholeSet = s.uniSet[:0], s.wholeSet[:0]
	clear(s.all)
	s.all = s.all[:0]
	s.work, s.read = 0, 0
}

// resume readies s, a pass of the same plan on the same transaction,
// for the next pass: what it knows of each value (its index, its
// transformations, their bytes and literal owners, the header cache's
// answers) is kept, for a value is the collections' string, whose
// bytes nothing changes; what it read of the collections (each
// selector's values and the slots of their bytes) is forgotten, for
// Coraza and the inspection pass add values between the passes, but
// for the stableVariables, which are all set before phase 1.
func (s *gateState) resume() {
	kept := s.selRead[:0]
	for _, k := range s.selRead {
		if s.p.stable[k] {
			kept = append(kept, k)
			continue
		}
		s.sel[k] = s.sel[k][:0]
		s.selOK[k] = false
		s.selHC[k] = false
	}
	s.selRead = kept
	s.work, s.read = 0, 0
	uniSet := s.uniSet[:0]
	for _, slot := range s.uniSet {
		if s.p.stable[s.p.unionSel[slot]] {
			uniSet = append(uniSet, slot)
		} else {
			s.uni[slot] = 0
		}
	}
	s.uniSet = uniSet
	wholeSet := s.wholeSet[:0]
	for _, w := range s.wholeSet {
		if s.p.stableWhole[w] {
			wholeSet = append(wholeSet, w)
		} else {
			s.whole[w] = 0
		}
	}
	s.wholeSet = wholeSet
	all := s.all[:0]
	for _, c := range s.all {
		if s.p.stableVar[c.v] {
			all = append(all, c)
		}
	}
	clear(s.all[len(all):])
	s.all = all
}

// findAll is col.FindAll(), col being collection v's, asked once per
// request.
func (s *gateState) findAll(v variables.RuleVariable, col collection.Collection) []types.MatchData {
	for _, c := range s.all {
		if c.v == v {
			return c.mds
		}
	}
	mds := col.FindAll()
	s.all = append(s.all, collectionValues{v: v, mds: mds})
	return mds
}

// keyList is findAll's list of collection v's values, and whether
// every key of theirs is ASCII, worked out once per list.
func (s *gateState) keyList(v variables.RuleVariable, col collection.Collection) ([]types.MatchData, bool) {
	s.findAll(v, col)
	for i := range s.all {
		c := &s.all[i]
		if c.v != v {
			continue
		}
		if c.keys == 0 {
			c.keys = keysASCII
			for _, md := range c.mds {
				if hasNonASCII(md.Key()) {
					c.keys = keysWide
					break
				}
			}
		}
		return c.mds, c.keys == keysASCII
	}
	return nil, false
}

// values returns the indexes of selector k's values, read as Coraza's
// GetField reads them (without exceptions).
func (s *gateState) values(k int) []int {
	if s.selOK[k] {
		return s.sel[k]
	}
	s.selOK[k] = true
	s.selRead = append(s.selRead, int32(k))
	sel := &s.p.selectors[k]
	col := s.tx.Collection(sel.v)
	if col == nil {
		return nil
	}
	if single, ok := col.(collection.Single); ok {
		// Its one value, as FindAll would hand it out in a list it
		// allocates.
		i := s.valueIndex(single.Get())
		s.hlook[i] = true
		s.selHC[k] = s.loud(i, k)
		s.sel[k] = append(s.sel[k], i)
		return s.sel[k]
	}
	var mds []types.MatchData
	switch keyed, ok := col.(collection.Keyed); {
	case sel.keyRx != nil && ok:
		var all []types.MatchData
		if need := s.p.keyNeed[k]; need != nil {
			all = s.findAll(sel.v, col)
		}
		mds = keyedValues(keyed, sel.keyRx, s.p.keyNeed[k], all)
	case sel.key != "" && ok:
		// The values Coraza's FindString returns, read out of the
		// collection's list, which the pass reads once for every
		// selector of the variable (and the phase-2 pass keeps, for the
		// request's headers), where FindString lower-cases the key and
		// allocates two lists on every call. A value is taken when its
		// key and sel's are equal once lower-cased (strings.ToLower),
		// as a case-insensitive collection keeps and finds them; a
		// case-sensitive one (ARGS, when Coraza is built so) finds
		// fewer, so the gate reads a superset of the rule's values,
		// which can only keep a rule.
		if all, ascii := s.keyList(sel.v, col); len(all) <= keyMaxScan {
			for _, md := range all {
				if key := md.Key(); ascii && asciiKeyIs(key, sel.lower) || !ascii && sameKey(key, sel.lower) {
					s.take(k, key, md.Value())
				}
			}
			return s.sel[k]
		}
		mds = keyed.FindString(sel.key)
	default:
		mds = s.findAll(sel.v, col)
	}
	for _, md := range mds {
		s.take(k, md.Key(), md.Value())
	}
	return s.sel[k]
}

// take adds v (under key) to selector k's values.
func (s *gateState) take(k int, key, v string) {
	i := s.valueIndex(v)
	if !s.hlook[i] {
		// Whether the cache answers for v is settled here, before any
		// selector takes it: a selector that took it as one the cache
		// does not answer for reads its bytes with the others'
		// (union), which leave out those it answers for.
		if s.p.hdr != nil && s.p.argSel[k] {
			s.lookArg(i, key)
		} else {
			s.hlook[i] = true
		}
	}
	if s.loud(i, k) {
		s.selHC[k] = true
	}
	s.sel[k] = append(s.sel[k], i)
}

// keyMaxScan is the most values a collection may hold for a keyed
// selector to pick its values out of the collection's list (values);
// past it, the collection's own lookup is cheaper than the scan.
const keyMaxScan = 32

// sameKey reports whether strings.ToLower(k) is lower, lower being a
// lower-cased key, without allocating when k is ASCII.
func sameKey(k, lower string) bool {
	if hasNonASCII(k) {
		return strings.ToLower(k) == lower
	}
	return asciiKeyIs(k, lower)
}

// asciiKeyIs is sameKey for an ASCII k.
func asciiKeyIs(k, lower string) bool {
	if len(k) != len(lower) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// valueIndex is v's index in s.vals, v being added if it is not there.
func (s *gateState) valueIndex(v string) int {
	id := strID{unsafe.Pointer(unsafe.StringData(v)), len(v)}
	i, ok := s.valIdx[id]
	if !ok {
		i = len(s.vals)
		s.vals = append(s.vals, v)
		s.valIdx[id] = i
		// A slot per node, empty (reset leaves the capacity as it
		// was).
		n := len(s.p.nodes)
		s.tval = grown(s.tval, n)
		s.tstep = grown(s.tstep, n)
		s.mat = grown(s.mat, n)
		s.bset = grown(s.bset, n)
		s.hc = append(s.hc, 0)
		s.hlook = append(s.hlook, false)
	}
	return i
}

// grown is l with n zero elements after its own.
func grown[T any](l []T, n int) []T {
	k := len(l)
	l = slices.Grow(l, n)[:k+n]
	clear(l[k:])
	return l
}

// What a chain's last step did to a value (gateState.tstep).
const (
	stepDone    = 1 << iota // computed
	stepChanged             // no error, and it reported a change
	// stepSilent: no error, no change reported, yet another string
	// returned (removeWhitespace on invalid UTF-8): Coraza's multiMatch
	// evaluation then carries on with the value before the step, where
	// transformArg takes the string returned.
	stepSilent
)

// step runs transformation fn on in.
func (s *gateState) step(fn plugintypes.Transformation, in string) (string, bool, error) {
	s.work++
	return fn(in)
}

// transformed is value vi after node's transformations, as Coraza's
// transformArg computes it.
func (s *gateState) transformed(node, vi int) string {
	if node == 0 {
		return s.vals[vi]
	}
	at := vi*len(s.p.nodes) + node
	if s.tstep[at] != 0 {
		return s.tval[at]
	}
	n := s.p.nodes[node]
	in := s.transformed(n.parent, vi)
	out := in
	st := uint8(stepDone)
	// Where the value holds none of the bytes fn acts on, fn would
	// return it unchanged: it is not run. The value's byte set is read
	// once and serves every step after it that leaves it as it is (and
	// the rules' byte tests), where each function would scan it again.
	if n.acts == nil || s.bytes(n.parent, vi).meets(*n.acts) {
		if tw, ok := s.twin(node, vi, in); ok {
			out, st = s.tval[tw], s.tstep[tw]
		} else if v, changed, err := s.step(n.fn, in); err == nil {
			out = v
			switch {
			case changed:
				st |= stepChanged
			case v != in:
				st |= stepSilent
			}
		}
	}
	s.tval[at], s.tstep[at] = out, st
	return out
}

// bytes is the set of bytes of value vi after node's transformations.
// A step that left the value as it was (most steps, on most values) has
// the bytes of the value before it, which are not read again.
func (s *gateState) bytes(node, vi int) byteSet {
	at := vi*len(s.p.nodes) + node
	if s.bset[at] == 0 {
		t := s.transformed(node, vi)
		if node != 0 {
			if parent := s.p.nodes[node].parent; s.transformed(parent, vi) == t {
				b := s.bytes(parent, vi)
				s.bset[at] = s.bset[vi*len(s.p.nodes)+parent]
				return b
			}
		}
		s.read++
		s.bval = append(s.bval, bytesOf(t))
		s.bset[at] = int32(len(s.bval))
	}
	return s.bval[s.bset[at]-1]
}

// holdsAny reports whether value vi after node's transformations holds
// one of the bytes of set: from its byte set when the gate has it, else
// by reading the value up to the first such byte.
func (s *gateState) holdsAny(node, vi int, set byteSet) bool {
	if at := vi*len(s.p.nodes) + node; s.bset[at] != 0 {
		return s.bval[s.bset[at]-1].meets(set)
	}
	t := s.transformed(node, vi)
	for i := 0; i < len(t); i++ {
		if set.has(t[i]) {
			return true
		}
	}
	return false
}

// owns reports whether value vi after node's transformations passes
// owner bit's literal test in the chain's automata, which run once per
// value and chain for every rule.
func (s *gateState) owns(node, vi, bit int) bool {
	at := vi*len(s.p.nodes) + node
	w := s.p.words
	if s.mat[at] == 0 {
		t := s.transformed(node, vi)
		off := len(s.mval)
		for range w {
			s.mval = append(s.mval, 0)
		}
		found := s.mval[off : off+w]
		m := s.p.multi[node]
		if m.exact != nil {
			m.exact.scan(t, found)
		}
		if m.fold != nil {
			if foldsIntoASCII(t) {
				for j, b := range m.foldSet {
					found[j] |= b
				}
			} else {
				m.fold.scan(t, found)
			}
		}
		s.mat[at] = int32(off + 1)
	}
	return s.mval[int(s.mat[at])-1+bit/64]&(1<<(bit%64)) != 0
}

// multiMayMatch reports whether multiMatch rule r's operator answers true
// for one of the values Coraza's executeTransformationsMultimatch makes of
// value vi: the value, then each step's value when the step reports a
// change, which the next step transforms; a step that reports no change
// (or an error) leaves the value as it was, even if it returned another
// string (removeWhitespace rewrites invalid UTF-8 and reports no change).
//
// Until such a silent step, each step's value is the value of the chain
// so far as transformArg computes it (an erroring step keeps its input
// in both, and an unchanged one returns it), so the steps' values are
// read from the gate's cache, shared with every rule whose chain begins
// alike, and pass the rule's pick test on their cached bytes first. From
// a silent step on, the chain's values are no longer the rule's, and the
// rest of the steps run here as Coraza runs them.
func (s *gateState) multiMayMatch(r *gateRule, vi int) bool {
	if s.multiAsks(r, 0, vi) {
		return true
	}
	for i, node := range r.stepNodes {
		if i == len(r.stepNodes)-1 && s.quietLast(node, vi) {
			return false
		}
		s.transformed(node, vi)
		switch st := s.tstep[vi*len(s.p.nodes)+node]; {
		case st&stepSilent != 0:
			return s.multiRest(r, r.steps[i+1:], s.transformed(s.p.nodes[node].parent, vi))
		case st&stepChanged != 0 && s.multiAsks(r, node, vi):
			return true
		}
	}
	return false
}

// quietLast reports whether node's step, the last of a multiMatch rule,
// reports no change on value vi (its operator then sees nothing more):
// the value before it holds none of the bytes the step needs to report
// one. When the gate has the step's value already, what the step
// reported is read instead.
func (s *gateState) quietLast(node, vi int) bool {
	at := vi*len(s.p.nodes) + node
	if s.tstep[at] != 0 {
		return s.tstep[at]&stepChanged == 0
	}
	n := &s.p.nodes[node]
	return n.changes != nil && !s.holdsAny(n.parent, vi, *n.changes)
}

// multiAsks reports whether r's operator answers true for value vi after
// node's transformations, past r's pick test when the value's bytes are
// known (a step's value is mostly the rule's own, and reading its bytes
// for the pick test alone costs about what the operator's own literal
// test does).
func (s *gateState) multiAsks(r *gateRule, node, vi int) bool {
	if at := vi*len(s.p.nodes) + node; s.bset[at] != 0 {
		b := s.bval[s.bset[at]-1]
		if r.pick != nil && !r.pick.passes(b) || r.class != nil && !b.meets(*r.class) {
			return false
		}
		if r.rxOwn != nil {
			s.work++
			return s.rxAsks(r.rxOwn, s.transformed(node, vi), b)
		}
	}
	s.work++
	return r.op.Evaluate(s.tx, s.transformed(node, vi)) != r.neg
}

// rxAsks is o.Evaluate on a value t whose bytes b the gate has found to
// meet o's class test (rxOwn): the rest of the necessity test (and the
// bare one, bare.go) and the pattern, without reading t again for a byte
// of the class. The gate asks only while the transaction is not
// capturing.
func (s *gateState) rxAsks(o *rxOp, t string, b byteSet) bool {
	return len(t) >= o.need.minLen && o.need.litsMayMatch(t, b) && !o.need.bareRefuses(t, b) && o.match(t)
}

// multiRest is multiMayMatch's evaluation, uncached, of steps on v, the
// value the steps before them handed on.
func (s *gateState) multiRest(r *gateRule, steps []plugintypes.Transformation, v string) bool {
	for _, fn := range steps {
		t, changed, err := fn(v)
		if err != nil || !changed {
			continue
		}
		v = t
		s.work++
		if r.op.Evaluate(s.tx, v) != r.neg {
			return true
		}
	}
	return false
}

// guarded reports whether a rule with a skip:N action that may count
// over r was left in the transaction by this pass: r is then not
// decided, as removing it would move what the skip skips.
func (s *gateState) guarded(r *gateRule) bool {
	for _, id := range r.guards {
		if !s.removedHere(id) {
			return true
		}
	}
	return false
}

// mayMatch reports whether r's operator answers true for one of its
// values.
func (s *gateState) mayMatch(r *gateRule) bool {
	if r.captured != nil {
		return s.capturedMayMatch(r)
	}
	if r.keys != nil {
		return s.keysMayMatch(r.keys)
	}
	if (r.op != nil || r.unclocked) && !s.opMayMatch(r) {
		return false
	}
	// A chain matches only if each of its links does.
	for i := range r.links {
		if !s.opMayMatch(&r.links[i]) {
			return false
		}
	}
	return true
}

// opMayMatch reports whether r's own operator answers true for one of
// its values.
func (s *gateState) opMayMatch(r *gateRule) bool {
	if r.unclocked {
		return s.clocked
	}
	// When the bytes of all the values refuse r's byte tests, only its
	// counts (and the values the header cache answers for, which those
	// bytes leave out) are left to ask.
	counts := r.whole > 0 && !s.wholeMay(r)
	if counts && !r.counted && !s.wholeHC[r.whole-1] {
		// No count, and no value the bytes leave out.
		return false
	}
	for i, k := range r.sels {
		if s.p.selectors[k].count {
			// Coraza counts the values left after the rule's
			// exclusions, which the gate does not apply: only a count
			// of none is the count Coraza sees.
			if len(s.values(k)) > 0 || r.op.Evaluate(s.tx, "0") != r.neg {
				return true
			}
			continue
		}
		live := !counts && (r.unions == nil || s.unionMay(r, r.unions[i]))
		if !live && !s.selHC[k] {
			continue
		}
		for _, vi := range s.values(k) {
			switch {
			case s.hc[vi] != 0 && r.test >= 0:
				if s.cachedMay(r, vi) {
					return true
				}
			case s.hc[vi] != 0 || live:
				if s.valueMay(r, vi) {
					return true
				}
			}
		}
	}
	return false
}

// valueMay reports whether r's operator answers true for value vi.
func (s *gateState) valueMay(r *gateRule, vi int) bool {
	if r.multiMatch {
		return s.multiMayMatch(r, vi)
	}
	if r.pick != nil && !r.pick.passes(s.bytes(r.node, vi)) {
		return false
	}
	if r.class != nil && !s.bytes(r.node, vi).meets(*r.class) {
		return false
	}
	s.work++
	if r.bit >= 0 {
		// r.rx's own test, shared: long enough, and holding one of
		// its literals.
		t := s.transformed(r.node, vi)
		return len(t) >= r.rx.need.minLen && s.owns(r.node, vi, r.bit) &&
			!r.rx.need.bareRefuses(t, s.bytes(r.node, vi)) && r.rx.match(t)
	}
	if r.rxOwn != nil {
		// The class test passed above, on the value's bytes.
		return s.rxAsks(r.rxOwn, s.transformed(r.node, vi), s.bytes(r.node, vi))
	}
	return r.op.Evaluate(s.tx, s.transformed(r.node, vi)) != r.neg
}

// planUnions gives each (selector, chain) pair that a rule with a byte
// test reads through its slot in gateState.uni, and each (selectors,
// chain) its slot in gateState.whole: the rules reading the same
// variables through the same chain, in whatever order, share it.
func (p *gatePlan) planUnions() {
	slot := map[[2]int]int32{}
	whole := map[string]int32{}
	var visit func(r *gateRule)
	visit = func(r *gateRule) {
		if r.op != nil && !r.multiMatch && (r.pick != nil || r.class != nil) {
			r.unions = make([]int32, len(r.sels))
			var ks []int
			for i, k := range r.sels {
				if p.selectors[k].count {
					r.unions[i] = -1
					r.counted = true
					continue
				}
				r.unions[i] = p.unionSlot(slot, k, r.node)
				ks = append(ks, k)
			}
			r.whole = p.wholeSlot(slot, whole, ks, r.node)
		}
		for i := range r.links {
			visit(&r.links[i])
		}
	}
	for _, list := range p.after {
		for i := range list {
			r := &list[i]
			visit(r)
			r.quick = r.whole > 0 && !r.counted && r.op != nil && r.captured == nil && r.keys == nil && !r.unclocked
		}
	}
	p.unions = len(slot)
}

// planStable marks the selectors of stableVariables and the whole slots
// made of them alone.
func (p *gatePlan) planStable() {
	for v := range stableVariables {
		p.stableVar[v] = true
	}
	p.stable = make([]bool, len(p.selectors))
	for k, sel := range p.selectors {
		p.stable[k] = p.stableVar[sel.v]
	}
	p.stableWhole = make([]bool, len(p.wholes))
	for w, parts := range p.wholes {
		p.stableWhole[w] = !slices.ContainsFunc(parts, func(slot int32) bool { return !p.stable[p.unionSel[slot]] })
	}
}

// wholeSlot is 1 + the whole slot of the values of selectors ks (no
// counts) after node, made with the slot of the same selectors through
// the chain's beginning before the steps whose bytes are known, and
// those steps' bytes (wholeUp, wholeActs), when new; 0 when fewer than
// two union slots make it up.
func (p *gatePlan) wholeSlot(slot map[[2]int]int32, whole map[string]int32, ks []int, node int) int32 {
	parts := make([]int32, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, p.unionSlot(slot, k, node))
	}
	slices.Sort(parts)
	parts = slices.Compact(parts)
	if len(parts) < 2 {
		return 0
	}
	key := fmt.Sprint(parts)
	if w, ok := whole[key]; ok {
		return w
	}
	up, acts := int32(-1), byteSet{}
	if a := node; a != 0 && p.nodes[a].acts != nil {
		for ; a != 0 && p.nodes[a].acts != nil; a = p.nodes[a].parent {
			acts.addAll(*p.nodes[a].acts)
		}
		up = p.wholeSlot(slot, whole, ks, a) - 1
	}
	p.wholes = append(p.wholes, parts)
	p.wholeUp = append(p.wholeUp, up)
	p.wholeActs = append(p.wholeActs, acts)
	p.wholeNode = append(p.wholeNode, node)
	w := int32(len(p.wholes))
	whole[key] = w
	return w
}

// unionSlot is the slot of selector k's values after node, made with
// the slots it may take its bytes from (gatePlan.unionUp) when new.
func (p *gatePlan) unionSlot(slot map[[2]int]int32, k, node int) int32 {
	key := [2]int{k, node}
	if n, ok := slot[key]; ok {
		return n
	}
	up := int32(-1)
	if n := &p.nodes[node]; node != 0 && n.acts != nil {
		up = p.unionSlot(slot, k, n.parent)
	}
	n := int32(len(slot))
	slot[key] = n
	p.unionSel = append(p.unionSel, k)
	p.unionNode = append(p.unionNode, node)
	p.unionUp = append(p.unionUp, up)
	return n
}

// unionMay reports whether r's byte tests (pick, class) pass the bytes
// of all of a selector's values after r's chain (slot: their place in
// s.uni; -1: not kept). Both tests pass a set whenever they pass a part
// of it, so a refusal here is a refusal of every value.
func (s *gateState) unionMay(r *gateRule, slot int32) bool {
	return slot < 0 || r.bytesMay(s.union(slot))
}

// union is the set of the bytes of all of a selector's values after a
// chain, those of slot: unionUp's when the chain's last step acts on
// none of its bytes, else read value by value.
func (s *gateState) union(slot int32) byteSet {
	if s.uni[slot] == 0 {
		node := s.p.unionNode[slot]
		if up := s.p.unionUp[slot]; up >= 0 {
			if u := s.union(up); !u.meets(*s.p.nodes[node].acts) {
				s.uni[slot] = s.uni[up]
				s.uniSet = append(s.uniSet, slot)
				return u
			}
		}
		var u byteSet
		for _, vi := range s.values(s.p.unionSel[slot]) {
			if s.hc[vi] == 0 {
				u.addAll(s.bytes(node, vi))
			}
		}
		s.bval = append(s.bval, u)
		s.uni[slot] = int32(len(s.bval))
		s.uniSet = append(s.uniSet, slot)
	}
	return s.bval[s.uni[slot]-1]
}

// wholeMay reports whether r's byte tests pass the bytes of all the
// values of all of r's selectors that are not counts, after r's chain:
// the union of their unionMay sets.
func (s *gateState) wholeMay(r *gateRule) bool {
	return r.bytesMay(s.wholeBytes(r.whole - 1))
}

// wholeBytes is the set of the bytes of all the values of whole slot
// w's selectors after its chain: wholeUp's when they hold none of the
// bytes the steps after wholeUp's chain act on (the steps then leave
// every value as it was, and the selectors' own slots are not read),
// else the union of those slots. wholeHC[w] is set with it. On a benign
// GET most of the phase-2 rules' chains (t:urlDecodeUni,
// t:htmlEntityDecode, t:lowercase, ...) act on none of the bytes of the
// arguments and their names.
func (s *gateState) wholeBytes(w int32) byteSet {
	if s.whole[w] == 0 {
		if up := s.p.wholeUp[w]; up >= 0 {
			if u := s.wholeBytes(up); !u.meets(s.p.wholeActs[w]) {
				s.whole[w], s.wholeHC[w] = s.whole[up], s.wholeHC[up]
				s.wholeSet = append(s.wholeSet, w)
				return u
			}
		}
		var u byteSet
		hc := false
		for _, slot := range s.p.wholes[w] {
			u.addAll(s.union(slot))
			hc = hc || s.selHC[s.p.unionSel[slot]]
		}
		s.wholeHC[w] = hc
		s.bval = append(s.bval, u)
		s.whole[w] = int32(len(s.bval))
		s.wholeSet = append(s.wholeSet, w)
	}
	return s.bval[s.whole[w]-1]
}

// bytesMay reports whether r's byte tests (pick, class) pass a value
// whose bytes are u.
func (r *gateRule) bytesMay(u byteSet) bool {
	return (r.pick == nil || r.pick.passes(u)) && (r.class == nil || u.meets(*r.class))
}
