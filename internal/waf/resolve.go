package waf

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The resolver: what a configuration fixes is decided once, when the rules
// are loaded, instead of on every request.
//
// CRS spends most of the rules a request meets on its own configuration:
// the paranoia-level checks in every file (TX:DETECTION_PARANOIA_LEVEL
// "@lt 2" ... skipAfter:END-...), the initialisation rules that give each
// setting its default (&TX:x "@eq 0" ... setvar), the SecActions that set
// them, and the per-level sums of the blocking evaluation ("@ge 3"). For a
// given rule set their outcome is the same on every request, and Coraza
// charges each the bookkeeping of a full rule. The resolver reads the
// loaded rules in order, phases 1 and 2, and follows what TX holds:
//
//   - a TX variable is known when every rule that wrote it so far did so
//     unconditionally with a value that is itself known (a literal, or
//     macros of known TX variables); a rule that writes it conditionally,
//     or a name built from a macro, makes it (or everything) unknown;
//     variables moat's own code writes (moat_*) are never known;
//   - a rule whose only input is one known TX variable (or its count),
//     with a value-only operator, is decided by running its own
//     transformations and operator on the value, on a scratch
//     transaction (no multiMatch);
//   - a rule decided never to match is removed from the rule set (it
//     would run no action); one decided always to match, whose actions are
//     only setvar with known values and skipAfter (nolog, no ctl, no skip,
//     no capture), is removed too: its skipAfter removes the rules of its
//     phase up to the marker (markers stay), and its setvars are folded
//     into one assignment made by the first rule of phase 1 (the phase-1
//     gate);
//   - always-matching rules that stay (their setvars add TX values only a
//     request knows, such as CRS's anomaly sums) and match one value,
//     with nothing between them at run time, run as one: the first is
//     given the setvars of the others, which are removed (see merge);
//   - nothing is decided after a rule that can change the flow of the
//     phase (allow, skip, a skipAfter that is not decided, ctl that removes
//     rules) until the marker it skips to or the end of the phase, and no
//     rule that a skip:N may count is removed;
//   - the SecMarkers that no rule left names (no skipAfter can end
//     there) leave the rule set too (idleMarkers): Coraza evaluates each
//     in every phase;
//   - a folded variable is given its final value at the start of the
//     transaction only if no rule left before its last folded writer
//     mentions it (in its text, or reads TX whole or by a key regex);
//     otherwise its writers stay;
//   - a rule the decisions rely on (a folded or constant-skip rule, a
//     merged one and the rule it was merged into, the phase-1 gate) is
//     an anchor: a ctl in the rule set that could remove
//     an anchor switches the resolver off, and a request whose route
//     excludes an anchor is inspected by the unresolved rule set (see
//     WAF.Begin).
//
// TestResolveDifferential runs CRS's regression suite and the request
// corpora through the resolved and the unresolved rule sets at several
// configurations and requires identical verdicts.

// resolution is what the resolver decided for one rule set.
type resolution struct {
	consts []txConst // folded: each key's value after its last folded writer
	set    []txConst // of them, those the phase-1 gate sets before any other rule (txreads.go)
	// responses: some transaction's response may be inspected, and the
	// response phases' rules run (Tx.Response).
	responses bool
	removed   int // rules removed from the rule set
	markers   int // SecMarkers removed: no skipAfter left names them (idleMarkers)
	unrun     int // rules removed because no transaction runs their phase (phaseRuns)
	folded    int // of them, always-matching rules whose setvars were folded
	merged    int // of them, always-matching rules whose setvars were merged into the rule before
	// anchors are the rules whose exclusion would change what was
	// resolved; for a constant skip, the rules of its range (an exclusion
	// that covers the skip and its whole range changes nothing).
	anchors map[int][]int
}

// txConst is a TX variable the resolver folded; values is {value}, made
// once for the phase-1 gate to set it with (Coraza's Map.Set copies it).
type txConst struct {
	key, value string
	values     []string
}

// corazaRules returns the slice of w's loaded rules (Coraza keeps it
// unexported), settable.
func corazaRules(w coraza.WAF) (reflect.Value, error) {
	rv := reflect.ValueOf(w)
	if rv.Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("waf: unexpected Coraza WAF type %s", rv.Type())
	}
	inner := rv.FieldByName("waf")
	if inner.Kind() != reflect.Pointer || inner.IsNil() {
		return reflect.Value{}, fmt.Errorf("waf: unexpected Coraza WAF type %s", rv.Type())
	}
	rules := inner.Elem().FieldByName("Rules").FieldByName("rules")
	if rules.Kind() != reflect.Slice {
		return reflect.Value{}, errors.New("waf: Coraza's rule list not found")
	}
	return exported(rules), nil
}

// resolveOperators are Coraza's operators the resolver may run on a
// constant: their answer depends on the value and their argument alone.
var resolveOperators = map[string]bool{
	"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "streq": true, "within": true,
	"beginsWith": true, "endsWith": true, "contains": true, "unconditionalMatch": true, "noMatch": true,
}

// foldActions are the actions an always-matching rule may carry and still
// be removed: metadata, pass, setvar and skipAfter (by Coraza's lower-case
// names; log is Coraza's default, the rule's Log field says whether it
// logs).
var foldActions = map[string]bool{
	"id": true, "phase": true, "pass": true, "nolog": true, "noauditlog": true, "auditlog": true,
	"tag": true, "ver": true, "rev": true, "msg": true, "severity": true, "maturity": true,
	"accuracy": true, "logdata": true, "setvar": true, "skipafter": true, "t": true, "log": true,
}

// rule is the resolver's view of one loaded rule.
type rrule struct {
	v        reflect.Value // the Rule, addressable and exported
	id       int
	phase    int
	marker   string
	log      bool
	chain    bool
	raw      string // lower case, with the chain's
	readsTX  bool   // reads TX whole or by key regex (itself or its chain)
	setvars  []rsetvar
	dynKeys  []string // setvars (here or in the chain) that name their key with a macro: the literal text before it
	skipTo   string
	skip     bool // skip:N
	allow    bool
	ctlFlow  bool // ctl that switches the engine
	ctlRm    []ctlRemoval
	others   bool // actions beyond foldActions
	removed  bool
	folded   bool
	decision int // 0 dynamic, 1 never matches, 2 always matches
	index    int // in the rule set
	matches  int // values an always-matching rule matches (its actions run once for each)
	// mergeable: an always-matching rule that matches once, left in the
	// rule set, whose actions are metadata, pass and setvars of TX
	// arithmetic (see merge).
	mergeable bool
	merged    bool // its setvars were moved to the rule before it
	host      bool // it was given the setvars of rules after it
}

// ctlRemoval is a ctl that removes rules or their targets at run time.
type ctlRemoval struct {
	kind   int
	target string
	rules  bool // removes the rules, not their targets
}

type rsetvar struct {
	key string
	fn  plugintypes.Action
	val macro.Macro
}

const (
	dynamic = iota
	never
	always
)

// resolve decides what w's rule set fixes (see above) and removes the
// decided rules from it.
func resolve(w coraza.WAF) (*resolution, error) {
	rules, err := corazaRules(w)
	if err != nil {
		return nil, err
	}
	all := make([]*rrule, rules.Len())
	for i := range all {
		r, err := readRule(rules.Index(i))
		if err != nil {
			return nil, err
		}
		r.index = i
		all[i] = r
	}
	protected := skipReach(all)
	tx := w.NewTransaction()
	defer tx.Close()
	st, ok := tx.(plugintypes.TransactionState)
	if !ok {
		return nil, errors.New("waf: resolve: Coraza transaction has no state")
	}
	s := &resolver{all: all, st: st, ctls: ctlsOn(all), unknown: map[string]bool{}, last: map[string]int{}, lastVal: map[string]*string{}}
	for _, phase := range []int{1, 2} {
		s.walk(phase, protected)
	}
	res := &resolution{anchors: map[int][]int{gate1ID: nil}}
	s.unfoldRead()
	if err := s.merge(); err != nil {
		return nil, err
	}
	// What the folded rules leave in TX, by the value after each key's
	// last folded writer.
	for k, v := range s.lastVal {
		if v != nil {
			res.consts = append(res.consts, txConst{k, *v, []string{*v}})
		}
	}
	// The response phases run only for a transaction whose response
	// body is accessible (Tx.Response): by default, or by a rule's ctl.
	responses := tx.IsResponseBodyAccessible()
	for _, r := range all {
		responses = responses || strings.Contains(r.raw, "responsebodyaccess")
	}
	res.responses = responses
	idle := idleMarkers(all, protected, responses)
	kept := reflect.MakeSlice(rules.Type(), 0, rules.Len())
	for i, r := range all {
		if idle[i] {
			res.markers++
			continue
		}
		if r.phase != 0 && !phaseRuns(r.phase, responses) {
			// Never evaluated, but walked past in every phase that is.
			res.unrun++
			continue
		}
		switch {
		case r.folded:
			res.anchors[r.id] = nil
			res.folded++
		case r.merged:
			res.anchors[r.id] = nil
			res.merged++
		case r.host:
			res.anchors[r.id] = nil // it carries the setvars of the rules after it
		case r.decision == always && !r.removed:
			res.anchors[r.id] = nil // an unfolded writer: it still sets what was decided
		case r.removed && r.decision == always:
			// A constant skip: its range is what an exclusion of it
			// would bring back.
			rng := []int{}
			for _, o := range all[i+1:] {
				if o.phase == r.phase && o.removed && o.decision != always && o.id > 0 {
					rng = append(rng, o.id)
				}
				if o.marker != "" && o.marker == r.skipTo {
					break
				}
			}
			res.anchors[r.id] = rng
		}
		if r.removed {
			res.removed++
			continue
		}
		kept = reflect.Append(kept, r.v)
	}
	rules.Set(kept)
	if err := resolveTargetRemovals(rules); err != nil {
		return nil, err
	}
	return res, nil
}

// phaseRuns reports whether a transaction runs the rules of phase (1 to
// 5): the request phases always; the response phases only when some
// response may be inspected (responses, see Tx.Response); the logging
// phase never (see Tx.Close). Coraza walks its whole rule list in every
// phase it runs, so the rules of a phase never run cost each request
// the walk past them (a 400-byte rule each, phases 1 and 2): the
// resolver leaves them out.
func phaseRuns(phase int, responses bool) bool {
	switch types.RulePhase(phase) {
	case types.PhaseRequestHeaders, types.PhaseRequestBody:
		return true
	case types.PhaseResponseHeaders, types.PhaseResponseBody:
		return responses
	}
	return false
}

type resolver struct {
	all         []*rrule
	ctls        [][]ctlRemoval // by rule: the ctls that may remove it first
	st          plugintypes.TransactionState
	unknown     map[string]bool
	poison      bool               // a setvar's key is all macro: nothing is known
	dynPrefixes []string           // keys with these prefixes may be written by a macro-named setvar
	last        map[string]int     // key → index of its last folded writer
	lastVal     map[string]*string // key → its value after that writer (nil: unset)
}

// walk follows one phase.
func (s *resolver) walk(phase int, protected map[int]bool) {
	var (
		skipTo   string // a decided skipAfter: rules up to this marker are removed
		skipping bool
		condTo   = map[string]bool{} // undecided skipAfters: markers that end them
		condEnd  bool                // flow may change until the end of the phase
	)
	for i, r := range s.all {
		if r.phase != phase && r.phase != 0 {
			continue
		}
		if r.marker != "" {
			if skipping && r.marker == skipTo {
				skipping = false
			}
			delete(condTo, r.marker)
			continue
		}
		if skipping {
			r.removed = true
			continue
		}
		cond := condEnd || len(condTo) > 0
		r.decision = s.decide(r)
		switch {
		case r.decision == never && !protected[i]:
			r.removed = true
			continue
		case r.decision == always && !cond && !protected[i] && s.foldable(r, phase) && s.ctlSafe(i):
			r.removed = true
			if len(r.setvars) > 0 {
				r.folded = true
				for _, sv := range r.setvars {
					sv.fn.Evaluate(r.v.Addr().Interface().(plugintypes.RuleMetadata), s.st)
					s.last[sv.key] = i
					if vals := s.st.Variables().TX().Get(sv.key); len(vals) > 0 {
						v := vals[0]
						s.lastVal[sv.key] = &v
					} else {
						s.lastVal[sv.key] = nil
					}
				}
			}
			if r.skipTo != "" {
				skipTo, skipping = r.skipTo, true
			}
			continue
		}
		r.mergeable = r.decision == always && r.matches == 1 && !protected[i] && s.mergeableActions(r)
		r.decision = dynamic
		for _, p := range r.dynKeys {
			if p == "" {
				s.poison = true
			}
			s.dynPrefixes = append(s.dynPrefixes, p)
		}
		for _, sv := range r.setvars {
			s.unknown[sv.key] = true
		}
		if r.skipTo != "" {
			condTo[r.skipTo] = true
		}
		if r.allow || r.ctlFlow {
			condEnd = true
		}
		// A skip:N reaches no further than protected says, and nothing
		// protected is decided.
	}
}

// decide runs r on the known TX, or says it cannot.
func (s *resolver) decide(r *rrule) int {
	if s.poison {
		return dynamic
	}
	if r.id <= 0 {
		return dynamic
	}
	v := r.v
	if v.FieldByName("MultiMatch").Bool() {
		return dynamic
	}
	// The rule's transformations, run on the value as Coraza runs them
	// (a step that errs leaves the value as it was): functions of the
	// value alone.
	ts := v.FieldByName("transformations")
	steps := make([]plugintypes.Transformation, ts.Len())
	for i := range steps {
		t, _, err := transformationAt(ts, i)
		if err != nil || t == nil {
			return dynamic
		}
		steps[i] = t
	}
	opp := v.FieldByName("operator")
	if opp.IsNil() {
		if r.chain {
			return dynamic
		}
		r.matches = 1
		return always // SecAction
	}
	opv := opp.Elem()
	name := strings.TrimPrefix(strings.TrimPrefix(opv.FieldByName("Function").String(), "!"), "@")
	data := opv.FieldByName("Data").String()
	if !resolveOperators[name] || !s.knownMacros(data) {
		return dynamic
	}
	op, ok := exported(opv.FieldByName("Operator")).Interface().(plugintypes.Operator)
	if !ok || op == nil {
		return dynamic
	}
	neg := opv.FieldByName("Negation").Bool()
	vars := v.FieldByName("variables")
	if vars.Len() != 1 {
		return dynamic
	}
	rv := vars.Index(0)
	key := strings.ToLower(rv.FieldByName("KeyStr").String())
	if variables.RuleVariable(rv.FieldByName("Variable").Uint()) != variables.TX || key == "" ||
		!rv.FieldByName("KeyRx").IsNil() || rv.FieldByName("Exceptions").Len() > 0 || !s.known(key) {
		return dynamic
	}
	values := s.st.Variables().TX().Get(key)
	if rv.FieldByName("Count").Bool() {
		values = []string{strconv.Itoa(len(values))}
	}
	matched := false
	r.matches = 0
	for _, val := range values {
		for _, t := range steps {
			if out, _, err := t(val); err == nil {
				val = out
			}
		}
		if op.Evaluate(s.st, val) != neg {
			matched = true
			r.matches++
		}
	}
	switch {
	case !matched:
		return never
	case r.chain:
		return dynamic // the chain decides
	}
	return always
}

func (s *resolver) known(key string) bool {
	if s.poison || s.unknown[key] || strings.HasPrefix(key, "moat") || captureKey(key) {
		return false
	}
	for _, p := range s.dynPrefixes {
		if strings.HasPrefix(key, p) {
			return false
		}
	}
	return true
}

// captureKey reports whether TX key is one a rule's capture writes
// (TX:0 to TX:9), which no setvar shows.
func captureKey(key string) bool {
	return len(key) == 1 && key[0] >= '0' && key[0] <= '9'
}

var macroRx = regexp.MustCompile(`%\{([^}]*)\}`)

// knownMacros reports whether every macro in text is a known TX variable.
func (s *resolver) knownMacros(text string) bool {
	for _, m := range macroRx.FindAllStringSubmatch(text, -1) {
		col, key, ok := strings.Cut(m[1], ".")
		if !ok || !strings.EqualFold(col, "tx") || !s.known(strings.ToLower(key)) {
			return false
		}
	}
	return true
}

// foldable reports whether an always-matching r may be removed: its
// actions are metadata, pass, skipAfter and, in phase 1, setvars of
// known values.
func (s *resolver) foldable(r *rrule, phase int) bool {
	if r.log || r.chain || r.others || len(r.dynKeys) > 0 || r.skip || r.allow || r.ctlFlow {
		return false
	}
	if len(r.setvars) > 0 && phase != 1 {
		return false
	}
	for _, sv := range r.setvars {
		if sv.val == nil || !s.knownMacros(sv.val.String()) {
			return false
		}
	}
	return true
}

// mergeableActions reports whether an always-matching r that stays in the
// rule set may hand its setvars to the rule before it: it logs nothing,
// changes no flow, captures nothing, and each setvar names its TX key
// literally and builds its value from TX alone (no macro that depends on
// the rule that runs it, such as MATCHED_VAR or RULE).
func (s *resolver) mergeableActions(r *rrule) bool {
	if r.log || r.chain || r.others || len(r.dynKeys) > 0 || r.skip || r.allow || r.ctlFlow || r.skipTo != "" || len(r.setvars) == 0 {
		return false
	}
	for _, c := range s.ctls[r.index] {
		if !c.rules {
			return false // a ctl that removes targets
		}
	}
	for _, sv := range r.setvars {
		if sv.val == nil {
			return false
		}
		for _, m := range macroRx.FindAllStringSubmatch(sv.val.String(), -1) {
			if col, _, ok := strings.Cut(m[1], "."); !ok || !strings.EqualFold(col, "tx") {
				return false
			}
		}
	}
	return true
}

// merge runs the setvars of consecutive mergeable rules as one rule: of
// each run of them that nothing separates at run time in its phase (no
// marker, no rule left between them), the first keeps its own actions
// and is given the setvars of the others, in order, and the others are
// removed. Each would have matched once, run its setvars and nothing
// else, right after the one before; the first now runs them all in the
// same order at the same point. None of them is counted by a skip:N; a
// ctl that may remove one of a run removes them all (it removes whole
// rules, and reaches the first and each other alike); and each is an
// anchor: a route that excludes one is inspected by the unresolved rule
// set.
func (s *resolver) merge() error {
	for _, phase := range []int{1, 2} {
		host := -1
		for i, r := range s.all {
			if r.phase != phase && r.phase != 0 {
				continue
			}
			switch {
			case r.removed:
				continue
			case r.marker != "" || !r.mergeable:
				host = -1
				continue
			case host < 0 || !s.sameCtls(host, i):
				host = i
				continue
			}
			h := exported(s.all[host].v.FieldByName("actions"))
			acts := exported(r.v.FieldByName("actions"))
			for j := range acts.Len() {
				if a := acts.Index(j); a.FieldByName("Name").String() == "setvar" {
					if !h.CanSet() {
						return errors.New("waf: resolve: Coraza rule actions not settable")
					}
					h.Set(reflect.Append(h, a))
				}
			}
			r.removed, r.merged, s.all[host].host = true, true, true
		}
	}
	return nil
}

// sameCtls reports whether every ctl that may remove rule i or rule j
// reaches both.
func (s *resolver) sameCtls(i, j int) bool {
	for _, p := range [][2]int{{i, j}, {j, i}} {
		for _, c := range s.ctls[p[0]] {
			if !ctlHits(c.kind, c.target, s.all[p[1]]) {
				return false
			}
		}
	}
	return true
}

// ctlSafe reports whether removing always-matching rule i is sound
// against the ctls that may remove it at run time: it sets nothing, and
// each of them removes the whole range it skips as well.
func (s *resolver) ctlSafe(i int) bool {
	ctls := s.ctls[i]
	if len(ctls) == 0 {
		return true
	}
	r := s.all[i]
	if len(r.setvars) > 0 || r.skipTo == "" {
		return false
	}
	for _, c := range ctls {
		if !c.rules {
			return false
		}
		for _, o := range s.all[i+1:] {
			if o.marker == r.skipTo {
				break
			}
			if o.phase == r.phase && o.id > 0 && !ctlHits(c.kind, c.target, o) {
				return false
			}
		}
	}
	return true
}

// unfoldRead keeps, for each folded key that a rule left before its last
// folded writer mentions, every folded writer of that key (and, with
// them, every key they write), until nothing changes.
func (s *resolver) unfoldRead() {
	for changed := true; changed; {
		changed = false
		for key, at := range s.last {
			reader := false
			for _, r := range s.all[:at] {
				if r.phase == 1 && !r.removed && (r.readsTX || strings.Contains(r.raw, key) || dynWrites(r, key)) {
					reader = true
					break
				}
			}
			if !reader {
				continue
			}
			for _, w := range s.all {
				if !w.folded || !writes(w, key) {
					continue
				}
				w.folded, w.removed, changed = false, false, true
				for _, sv := range w.setvars {
					delete(s.last, sv.key)
					delete(s.lastVal, sv.key)
				}
			}
		}
	}
}

// dynWrites reports whether a macro-named setvar of r may write key.
func dynWrites(r *rrule, key string) bool {
	for _, p := range r.dynKeys {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// writesKey reports whether r may write TX key (lower case).
func writesKey(r *rrule, key string) bool {
	return writes(r, key) || dynWrites(r, key)
}

func writes(r *rrule, key string) bool {
	for _, sv := range r.setvars {
		if sv.key == key {
			return true
		}
	}
	return false
}

// readRule reads what the resolver needs of one loaded rule and its chain.
func readRule(v reflect.Value) (*rrule, error) {
	id, err := intField(v, "ID_")
	if err != nil {
		return nil, err
	}
	phase, err := intField(v, "Phase_")
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"MultiMatch", "HasChain", "Log"} {
		if v.FieldByName(f).Kind() != reflect.Bool {
			return nil, fmt.Errorf("waf: resolve: Coraza rule field %s not found", f)
		}
	}
	for _, f := range []string{"operator", "Chain"} {
		if v.FieldByName(f).Kind() != reflect.Pointer {
			return nil, fmt.Errorf("waf: resolve: Coraza rule field %s not found", f)
		}
	}
	for _, f := range []string{"variables", "transformations", "actions"} {
		if v.FieldByName(f).Kind() != reflect.Slice {
			return nil, fmt.Errorf("waf: resolve: Coraza rule field %s not found", f)
		}
	}
	r := &rrule{
		v: v, id: id, phase: phase, marker: v.FieldByName("SecMark_").String(),
		log: v.FieldByName("Log").Bool(), chain: v.FieldByName("HasChain").Bool(),
	}
	var raw strings.Builder
	for link := v; ; {
		raw.WriteString(link.FieldByName("Raw_").String())
		raw.WriteByte('\n')
		if err := r.readLink(link); err != nil {
			return nil, err
		}
		next := link.FieldByName("Chain")
		if next.Kind() != reflect.Pointer || next.IsNil() {
			break
		}
		link = next.Elem()
	}
	r.raw = strings.ToLower(raw.String())
	return r, nil
}

// readLink reads one link of a chain: the TX it reads whole and its
// actions.
func (r *rrule) readLink(v reflect.Value) error {
	vars := v.FieldByName("variables")
	for i := range vars.Len() {
		rv := vars.Index(i)
		vr, ks, krx := rv.FieldByName("Variable"), rv.FieldByName("KeyStr"), rv.FieldByName("KeyRx")
		if vr.Kind() != reflect.Uint8 || ks.Kind() != reflect.String || krx.Kind() != reflect.Pointer {
			return errors.New("waf: resolve: Coraza variable fields not found")
		}
		if variables.RuleVariable(vr.Uint()) == variables.TX && (ks.String() == "" || !krx.IsNil()) {
			r.readsTX = true
		}
	}
	acts := v.FieldByName("actions")
	for i := range acts.Len() {
		a := acts.Index(i)
		name := a.FieldByName("Name").String()
		fn, ok := exported(a.FieldByName("Function")).Interface().(plugintypes.Action)
		if !ok {
			return errors.New("waf: resolve: Coraza rule actions not found")
		}
		if !foldActions[name] {
			r.others = true
		}
		switch name {
		case "setvar":
			sv, prefix, err := readSetvar(fn)
			if err != nil {
				return err
			}
			if sv == nil {
				r.dynKeys = append(r.dynKeys, prefix)
				continue
			}
			r.setvars = append(r.setvars, *sv)
		case "skipafter":
			f := reflect.ValueOf(fn)
			if f.Kind() == reflect.Pointer {
				f = f.Elem()
			}
			d := f.FieldByName("data")
			if d.Kind() != reflect.String {
				return errors.New("waf: resolve: Coraza skipAfter fields not found")
			}
			r.skipTo = d.String()
		case "skip":
			r.skip = true
		case "allow":
			r.allow = true
		case "ctl":
			kind, val, ruleKind, err := readCtl(fn)
			if err != nil {
				return err
			}
			switch kind {
			case ctlEngine:
				r.ctlFlow = true
			case ctlRemoveByID, ctlRemoveByTag, ctlRemoveByMsg:
				target, _, _ := strings.Cut(val, ";")
				r.ctlRm = append(r.ctlRm, ctlRemoval{kind, target, ruleKind})
			}
		}
	}
	return nil
}

// readSetvar reads a setvar action. When its key has a macro, it returns
// nil and the key's literal text before the macro.
func readSetvar(fn plugintypes.Action) (*rsetvar, string, error) {
	f := reflect.ValueOf(fn)
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	k, val := f.FieldByName("key"), f.FieldByName("value")
	if k.Kind() != reflect.Interface || val.Kind() != reflect.Interface {
		return nil, "", errors.New("waf: resolve: Coraza setvar fields not found")
	}
	km, _ := exported(k).Interface().(macro.Macro)
	if km == nil {
		return nil, "", nil
	}
	if prefix, _, dyn := strings.Cut(km.String(), "%{"); dyn {
		return nil, strings.ToLower(prefix), nil
	}
	vm, _ := exported(val).Interface().(macro.Macro)
	return &rsetvar{key: strings.ToLower(km.String()), fn: fn, val: vm}, "", nil
}

// Kinds of ctl the resolver cares about (Coraza's own numbering is
// unexported; these are read by name from its parameter).
const (
	ctlOther = iota
	ctlRemoveByID
	ctlRemoveByTag
	ctlRemoveByMsg
	ctlEngine
)

// readCtl reads a ctl action's kind and value. Coraza numbers its kinds
// in declaration order (ctl.go): 1-3 remove targets by ID, tag and
// message, 9 is ruleEngine, 10-12 remove rules by ID, message and tag.
func readCtl(fn plugintypes.Action) (kind int, value string, rules bool, err error) {
	if _, ok := fn.(*targetRemoval); ok {
		// Made by resolve at its end: what it removes was already read.
		return ctlOther, "", false, nil
	}
	f := reflect.ValueOf(fn)
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	a, val := f.FieldByName("action"), f.FieldByName("value")
	if !a.CanInt() || val.Kind() != reflect.String {
		return 0, "", false, errors.New("waf: resolve: Coraza ctl fields not found")
	}
	v, n := val.String(), a.Int()
	switch n {
	case 1, 10:
		return ctlRemoveByID, v, n == 10, nil
	case 2, 12:
		return ctlRemoveByTag, v, n == 12, nil
	case 3, 11:
		return ctlRemoveByMsg, v, n == 11, nil
	case 9:
		return ctlEngine, v, false, nil
	}
	return ctlOther, v, false, nil
}

// skipReach returns the rules a skip:N may count over (see planGate):
// from the skip to its phase's N-th next marker.
// idleMarkers returns the SecMarkers (by index in all) that the resolved
// rule set can do without. Coraza evaluates a marker in every phase, as
// a rule that always matches (it writes RULE and MATCHED_VAR*), some 60
// evaluations a request for CRS's markers, and it is needed only as the
// end of a skipAfter. A marker goes when no rule left (not removed by the
// resolver) that may run names it, in any case and anywhere in its text
// or its chain's (so no skipAfter can end there; the rules of the
// response phases run only when responses do), no skip:N may count it
// (protected, skipReach), and no rule could tell that it ran: chainSafe,
// for its match is what a chain's removal takes away too (what it writes
// to MATCHED_VAR* is read by no rule before its own match, RULE by no
// macro; every rule writes RULE's id, rev and severity anew).
func idleMarkers(all []*rrule, protected map[int]bool, responses bool) map[int]bool {
	if !chainSafe(all) {
		return nil
	}
	idle := map[int]bool{}
	for i, m := range all {
		if m.marker == "" || protected[i] {
			continue
		}
		name := strings.ToLower(m.marker)
		named := false
		for _, r := range all {
			if r.marker == "" && !r.removed && (responses || r.phase < 3) && strings.Contains(r.raw, name) {
				named = true
				break
			}
		}
		if !named {
			idle[i] = true
		}
	}
	return idle
}

func skipReach(all []*rrule) map[int]bool {
	out := map[int]bool{}
	for i, r := range all {
		if !r.skip {
			continue
		}
		n := skipN(r.v)
		markers := 0
		for j := i + 1; j < len(all) && markers < n; j++ {
			if all[j].phase != r.phase && all[j].phase != 0 {
				continue
			}
			out[j] = true
			if all[j].marker != "" {
				markers++
			}
		}
	}
	return out
}

func skipN(v reflect.Value) int {
	acts := v.FieldByName("actions")
	for j := range acts.Len() {
		if a := acts.Index(j); a.FieldByName("Name").String() == "skip" {
			return skipCount(a.FieldByName("Function"))
		}
	}
	return 1 << 30
}

// ctlsOn returns, for each rule, the ctls that may remove it (or its
// targets) before it runs: those of earlier rules of its phase and of
// earlier phases.
func ctlsOn(all []*rrule) [][]ctlRemoval {
	out := make([][]ctlRemoval, len(all))
	for c, r := range all {
		for _, ctl := range r.ctlRm {
			for i, o := range all {
				if o.id > 0 && (o.phase > r.phase || o.phase == r.phase && i > c) && ctlHits(ctl.kind, ctl.target, o) {
					out[i] = append(out[i], ctl)
				}
			}
		}
	}
	return out
}

// ctlHits reports whether a ctl of kind with target may reach rule r.
// A target the resolver cannot read reaches every rule.
func ctlHits(kind int, target string, r *rrule) bool {
	switch kind {
	case ctlRemoveByID:
		a, b, err := ParseExclusion(target)
		return err != nil || a <= r.id && r.id <= b
	case ctlRemoveByTag:
		tags := r.v.FieldByName("Tags_")
		for i := range tags.Len() {
			if strings.EqualFold(tags.Index(i).String(), target) {
				return true
			}
		}
		return strings.Contains(target, "%{")
	case ctlRemoveByMsg:
		m, _ := r.v.FieldByName("Msg").Interface().(macro.Macro)
		return m != nil && strings.EqualFold(m.String(), target) || strings.Contains(target, "%{")
	}
	return true
}

// excludesAnchor reports whether ex takes out a rule the resolver's
// decisions rely on: a folded rule, the phase-1 gate that sets what they
// folded, or a constant skip without the whole range it skips.
func (w *WAF) excludesAnchor(ex *Exclusions) bool {
	if v, ok := w.anchorHits.Load(ex); ok {
		return v.(bool)
	}
	hit := false
	for id, rng := range w.res.anchors {
		if !ex.covers(id) {
			continue
		}
		if rng == nil {
			hit = true
			break
		}
		for _, o := range rng {
			if !ex.covers(o) {
				hit = true
				break
			}
		}
	}
	w.anchorHits.Store(ex, hit)
	return hit
}

// unresolved returns the rule set as loaded, without the resolver's
// decisions, built on first use.
func (w *WAF) unresolved() (*WAF, error) {
	w.fullOnce.Do(func() {
		cfg := w.cfg
		cfg.noResolve = true
		w.full, w.fullErr = New(cfg)
		if w.fullErr != nil {
			w.fullErr = fmt.Errorf("waf: the rule set for a route that excludes a configuration rule: %w", w.fullErr)
		}
	})
	if w.full == nil && w.fullErr == nil {
		return nil, errors.New("waf: rule set closed")
	}
	return w.full, w.fullErr
}

// targetRemoval is a ctl:ruleRemoveTargetById, ByTag or ByMsg with the
// rules it names found at load: Coraza's looks through every rule of the
// set for them on each request that runs it (CRS's 941010 does, on nearly
// every request), and the set does not change after load.
type targetRemoval struct {
	ids   []int
	col   variables.RuleVariable
	key   string
	keyRx *regexp.Regexp
	// now and later: ids split by the gate's plan (gatetargets.go),
	// later filed by the phase-2 gate; later is nil when ids are all
	// filed at once.
	now, later []int
}

type targetRemover interface {
	RemoveRuleTargetByID(id int, variable variables.RuleVariable, key string, keyRx *regexp.Regexp)
}

func (*targetRemoval) Init(plugintypes.RuleMetadata, string) error { return nil }

func (*targetRemoval) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

func (a *targetRemoval) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	rt, ok := tx.(targetRemover)
	if !ok {
		return // Coraza's own would not run either; the rules keep every target
	}
	ids := a.ids
	if a.later != nil {
		if m := memoOf(tx); m != nil {
			m.targets = append(m.targets, a)
			ids = a.now
		}
	}
	for _, id := range ids {
		rt.RemoveRuleTargetByID(id, a.col, a.key, a.keyRx)
	}
}

// resolveTargetRemovals replaces each target-removing ctl of the (final)
// rule set by a targetRemoval.
func resolveTargetRemovals(rules reflect.Value) error {
	type ruleRef struct {
		id   int
		tags []string
		msg  string
		hasM bool
	}
	refs := make([]ruleRef, rules.Len())
	for i := range refs {
		r := rules.Index(i)
		refs[i].id = int(r.FieldByName("ID_").Int())
		tags := r.FieldByName("Tags_")
		for j := range tags.Len() {
			refs[i].tags = append(refs[i].tags, tags.Index(j).String())
		}
		if m, _ := r.FieldByName("Msg").Interface().(macro.Macro); m != nil {
			refs[i].msg, refs[i].hasM = m.String(), true
		}
	}
	for i := range rules.Len() {
		for link := rules.Index(i); ; {
			acts := link.FieldByName("actions")
			for j := range acts.Len() {
				a := acts.Index(j)
				if a.FieldByName("Name").String() != "ctl" {
					continue
				}
				fnv := exported(a.FieldByName("Function"))
				f := reflect.ValueOf(fnv.Interface())
				if f.Kind() != reflect.Pointer || f.IsNil() {
					continue
				}
				f = f.Elem()
				kind, col, key, krx, val := f.FieldByName("action"), f.FieldByName("collection"), f.FieldByName("colKey"), f.FieldByName("colKeyRx"), f.FieldByName("value")
				if !kind.CanInt() || col.Kind() != reflect.Uint8 || key.Kind() != reflect.String || krx.Kind() != reflect.Pointer || val.Kind() != reflect.String {
					return errors.New("waf: resolve: Coraza ctl fields not found")
				}
				tr := &targetRemoval{col: variables.RuleVariable(col.Uint()), key: key.String()}
				if !krx.IsNil() {
					tr.keyRx = exported(krx).Interface().(*regexp.Regexp)
				}
				v := val.String()
				switch kind.Int() {
				case 1: // ruleRemoveTargetById
					lo, hi, err := ParseExclusion(v)
					if err != nil {
						continue // Coraza's logs it and removes nothing; left to it
					}
					for _, r := range refs {
						if r.id >= lo && r.id <= hi {
							tr.ids = append(tr.ids, r.id)
						}
					}
				case 2: // ruleRemoveTargetByTag
					for _, r := range refs {
						if slices.Contains(r.tags, v) {
							tr.ids = append(tr.ids, r.id)
						}
					}
				case 3: // ruleRemoveTargetByMsg
					for _, r := range refs {
						if r.hasM && r.msg == v {
							tr.ids = append(tr.ids, r.id)
						}
					}
				default:
					continue
				}
				fnv.Set(reflect.ValueOf(plugintypes.Action(tr)))
			}
			next := link.FieldByName("Chain")
			if next.IsNil() {
				break
			}
			link = next.Elem()
		}
	}
	return nil
}
