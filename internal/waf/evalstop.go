package waf

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Stopping once a block is certain. A request that carries an attack
// usually matches one of moat's own rules early in phase 2 (rule 90040
// for SQL injection), and that match alone reaches the inbound
// threshold; yet every detection rule after it still ran, the matching
// ones with their full regex, captures, macros and logging, only for
// CRS's blocking evaluation (REQUEST-949) to deny the request as it
// would have after that first match.
//
// The moatStop action, added at load to the rules that can stop,
// decides at each of their matches whether the block is certain: it
// asks what the context pass (rule 90090, context.go) would take back
// of the matches so far (contextJudge, the pass's own judgement, run on
// nothing it writes), and whether CRS's sums would then bring the
// blocking rule to match (the moatEval plan of rule 90090, evalskip.go,
// run on the scores the pass would leave). When they would, it takes
// the rest of the detection rules out of the transaction: the context
// pass, the sums and the blocking rule (and every rule of phase 2 after
// the pass) run as they would have, on the scores as they are, and deny
// the request with the blocking rule's status.
//
// That the rules skipped could not have changed the verdict is proved
// at load, for each rule that would carry the action (planStops), from
// the rule set as loaded; a rule set that cannot be proved so gets no
// action anywhere, and is evaluated in full. From the rule carrying the
// action (the rest of its own evaluation included) to the context pass:
//
//   - every phase-2 rule carries only metadata, logging, captures, pass,
//     skipAfter to a marker before the context pass, skip:N with N
//     markers before it (Coraza never removes a marker, and counts
//     each), and setvars of TX keys that neither the context pass, the
//     sums, the blocking rule, the budget's check nor the verdict read
//     (a key named by macro: one whose literal start no such key has),
//     but for the anomaly counters (tx.inbound_anomaly_score_plN), to
//     which a setvar may only add a non-negative literal or a severity
//     score: no allow, no ctl, no other disruptive action but the
//     budget's 503 (see below), no setvar that lowers or resets;
//   - a rule the context pass judges (familyOf) adds, in the link whose
//     matches the pass counts, at least the score the pass would take
//     back of each match to the counter it would take it from, so that
//     the pass never takes back more of those rules than they add;
//   - the rule carrying the action is judged by no family: its own
//     matches always stand, whatever the rest of its evaluation adds.
//
// Scores then only grow until the context pass, which takes back of
// the matches so far exactly what the action computed and of later
// matches no more than they added; the sums are monotone in the
// counters; so the blocking rule matches in a full evaluation whenever
// it matches after a stop. At run time the action also requires the
// engine to be On (DetectionOnly evaluates everything), none of the
// sums or the blocking rule removed from the transaction or its
// targets, and the severity scores non-negative.
//
// The budget (budget.go) answers 503 once the attack rules have spent
// it. The budget rule before the blocking evaluation is among the rules
// kept, so a request past its budget when it stops is still answered
// 503; one that stops within it is blocked 403, even if the rules it no
// longer runs would have spent the rest (the budget bounds the work on
// a request, and a stopped one does less).
//
// What a stop changes is the verdict's RuleIDs: the rules that would
// have matched after it are not listed. Verdict.StoppedAt says so, with
// the blocking score the evaluation stopped at; Config.FullEvaluation
// (and DetectionOnly) evaluate everything. TestEvalStopDifferential
// compares verdicts with and without it over CRS's regression stages
// and the request corpora.

// txStopped is the TX variable holding the blocking score at which the
// evaluation stopped.
const txStopped = "moat_stopped_at"

// stopPlan is what every moatStop action of a rule set decides with.
type stopPlan struct {
	eval *evalPlan
	// cut: the ranges of rule IDs a stop removes (every rule of phases
	// 1 and 2 but for the context pass and those after it in phase 2).
	cut [][2]int
	// needed: the sums' and the blocking rule's IDs.
	needed []int
	sevs   []string
	ranges *rangesAt
	txf    *txFields
}

// stopAction is the moatStop action.
type stopAction struct{ p *stopPlan }

func (stopAction) Init(plugintypes.RuleMetadata, string) error { return nil }

func (stopAction) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

func (a stopAction) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	p := a.p
	txv := tx.Variables().TX()
	if len(txv.Get(txStopped)) > 0 {
		return
	}
	// Cheapest first: with nothing taken back, would the sums block?
	if _, ok := p.eval.blocks(tx, nil); !ok {
		return
	}
	if !p.txf.allows(tx, p.needed) || targetsWaitFor(tx, p.needed) {
		return
	}
	for _, k := range p.sevs {
		if v := first(txv.Get(k)); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				return
			}
		}
	}
	mr, ok := tx.(matchedRuler)
	if !ok {
		return
	}
	var over []evalOver
	j := newContextJudge(tx)
	for _, m := range mr.MatchedRules() {
		counter, taken, _ := j.judge(m)
		if taken == 0 {
			continue
		}
		i := slices.IndexFunc(over, func(o evalOver) bool { return o.key == counter })
		if i < 0 {
			cur, _ := strconv.Atoi(first(txv.Get(counter)))
			over = append(over, evalOver{key: counter, vals: []string{strconv.Itoa(cur)}})
			i = len(over) - 1
		}
		// The pass's clamps at 0 add up to one: every taken is >= 0.
		n, _ := strconv.Atoi(over[i].vals[0])
		over[i].vals[0] = strconv.Itoa(max(0, n-taken))
	}
	score, ok := p.eval.blocks(tx, over)
	if !ok {
		return
	}
	if rs := p.ranges.of(tx); rs != nil {
		// First, so that each rule skipped is found in the first
		// ranges Coraza reads.
		*rs = append(slices.Clip(p.cut), *rs...)
	} else if rr, ok := tx.(ruleRemover); ok {
		for _, c := range p.cut {
			rr.RemoveRuleByIDRange(c[0], c[1])
		}
	} else {
		return
	}
	// The phase-2 gate's last pass is among the rules removed: the
	// target removals it would have filed are filed for those left.
	fileTargets(tx, p.cut)
	txv.Set(txStopped, []string{score})
}

// txFields is where Coraza's transaction keeps its engine mode and the
// rules and targets removed from it (unexported fields but for the
// engine's, found by name and type at load).
type txFields struct {
	typ                          reflect.Type
	engine, byID, ranges, target uintptr
	targetType                   reflect.Type
}

func txFieldsOf(w coraza.WAF) (*txFields, error) {
	tx := w.NewTransaction()
	defer tx.Close()
	t := reflect.TypeOf(tx)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, errors.New("waf: stop: Coraza transaction type not found")
	}
	f := &txFields{typ: t}
	for _, want := range []struct {
		name string
		typ  reflect.Type
		off  *uintptr
	}{
		{"RuleEngine", reflect.TypeFor[types.RuleEngineStatus](), &f.engine},
		{"ruleRemoveByID", reflect.TypeFor[map[int]struct{}](), &f.byID},
		{"ruleRemoveByIDRanges", reflect.TypeFor[[][2]int](), &f.ranges},
		{"ruleRemoveTargetByID", nil, &f.target},
	} {
		sf, ok := t.Elem().FieldByName(want.name)
		if !ok || want.typ != nil && sf.Type != want.typ {
			return nil, errors.New("waf: stop: Coraza transaction field " + want.name + " not found")
		}
		if want.typ == nil {
			if sf.Type.Kind() != reflect.Map || sf.Type.Key().Kind() != reflect.Int {
				return nil, errors.New("waf: stop: Coraza transaction field " + want.name + " not found")
			}
			f.targetType = sf.Type
		}
		*want.off = sf.Offset
	}
	return f, nil
}

// allows reports whether tx's engine is On and none of ids, nor a
// target of one, is removed from it.
func (f *txFields) allows(tx plugintypes.TransactionState, ids []int) bool {
	if f == nil || reflect.TypeOf(tx) != f.typ {
		return false
	}
	v := any(tx)
	data := (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1]
	if *(*types.RuleEngineStatus)(unsafe.Add(data, f.engine)) != types.RuleEngineOn {
		return false
	}
	byID := *(*map[int]struct{})(unsafe.Add(data, f.byID))
	ranges := *(*[][2]int)(unsafe.Add(data, f.ranges))
	target := reflect.NewAt(f.targetType, unsafe.Add(data, f.target)).Elem()
	for _, id := range ids {
		if _, ok := byID[id]; ok {
			return false
		}
		for _, r := range ranges {
			if id >= r[0] && id <= r[1] {
				return false
			}
		}
		if target.Len() > 0 {
			if t := target.MapIndex(reflect.ValueOf(id)); t.IsValid() && t.Len() > 0 {
				return false
			}
		}
	}
	return true
}

// stopQuietActions are the actions a rule between a stop and the
// context pass may carry besides setvar, skipAfter and the budget's
// deny: they change neither a TX variable the rules after read nor
// which rules run.
var stopQuietActions = map[string]bool{
	"id": true, "phase": true, "pass": true, "nolog": true, "noauditlog": true, "auditlog": true, "log": true,
	"tag": true, "ver": true, "rev": true, "msg": true, "severity": true, "maturity": true,
	"accuracy": true, "logdata": true, "t": true, "status": true, "capture": true, "multimatch": true, "chain": true,
}

// stopAnalysis is what planStops reads of the rule set.
type stopAnalysis struct {
	rules     reflect.Value
	pass      int             // the context pass's index
	protected map[string]bool // TX keys read from the pass on, but for the counters
	markers   map[string][]int
	consts    map[string]string // TX constants the setvars were folded with
}

// planStops adds a moatStop action to each rule from which stopping is
// proved safe (see above) and returns how many it added; a rule set not
// laid out as described gets none. consts are the TX constants folded
// into setvars (setvarfold.go).
func planStops(w coraza.WAF, rules reflect.Value, consts map[string]string) (int, error) {
	a := &stopAnalysis{rules: rules, pass: -1, markers: map[string][]int{}, consts: consts}
	var e *evalPlan
	for i := range rules.Len() {
		r := rules.Index(i)
		if m := r.FieldByName("SecMark_").String(); m != "" {
			a.markers[m] = append(a.markers[m], i)
		}
		if a.pass >= 0 || r.FieldByName("Phase_").Int() != 2 || !hasContextAction(r) {
			continue
		}
		if h := evalHolderOf(r); h != nil {
			e = h.p.Load()
		}
		a.pass = i
	}
	if a.pass < 0 || e == nil || len(e.ids) == 0 {
		return 0, nil
	}
	blockID := e.ids[len(e.ids)-1]
	blocking := -1
	for i := a.pass + 1; i < rules.Len(); i++ {
		if id, _ := intField(rules.Index(i), "ID_"); id == blockID {
			blocking = i
			break
		}
	}
	if blocking < 0 || !denies(rules.Index(blocking)) {
		return 0, nil
	}
	// The ranges: runs of the rule set's IDs (in order) of rules of
	// phases 1 and 2 but for the pass and the rules after it in phase 2.
	type idKept struct {
		id   int
		kept bool
	}
	var all []idKept
	for i := range rules.Len() {
		r := rules.Index(i)
		id, _ := intField(r, "ID_")
		phase, _ := intField(r, "Phase_")
		if id > 0 {
			all = append(all, idKept{id, phase > 2 || phase == 2 && i >= a.pass})
		}
	}
	slices.SortFunc(all, func(x, y idKept) int { return x.id - y.id })
	var cut [][2]int
	for i := 0; i < len(all); i++ {
		if all[i].kept {
			continue
		}
		j := i
		for j+1 < len(all) && !all[j+1].kept {
			j++
		}
		cut = append(cut, [2]int{all[i].id, all[j].id})
		i = j
	}
	// What the pass, the sums, the blocking rule, the budget's check
	// between them and the verdict read.
	a.protected = map[string]bool{txDiscounted: true, txStopped: true, txStart: true}
	for _, k := range e.reads() {
		a.protected[k] = true
	}
	for _, k := range []string{txCriticalScore, txErrorScore, txWarningScore, txNoticeScore} {
		a.protected[k] = true
	}
	opText := rules.Index(blocking).FieldByName("operator").Elem().FieldByName("Data").String()
	for _, m := range macroRx.FindAllStringSubmatch(opText, -1) {
		name := strings.ToLower(strings.TrimSpace(m[1]))
		key, ok := strings.CutPrefix(name, "tx.")
		if !ok {
			return 0, nil
		}
		a.protected[key] = true
	}
	txf, err := txFieldsOf(w)
	if err != nil {
		return 0, err
	}
	p := &stopPlan{eval: e, cut: cut, needed: slices.Clone(e.ids), ranges: rangesField(w), txf: txf,
		sevs: []string{txCriticalScore, txErrorScore, txWarningScore, txNoticeScore}}
	// From the pass back: safeAfter is whether every phase-2 rule after
	// rule i, up to the pass, may be skipped.
	safeAfter := true
	var links []reflect.Value // where the actions go
	for i := a.pass - 1; i >= 0; i-- {
		r := rules.Index(i)
		phase, _ := intField(r, "Phase_")
		if phase != 2 {
			continue
		}
		ok, link := a.skippable(r, i)
		if ok && safeAfter && link.IsValid() {
			if id, _ := intField(r, "ID_"); id > 0 && familyOf(id) == nil {
				links = append(links, link)
			}
		}
		safeAfter = safeAfter && ok
	}
	for _, link := range links {
		if err := addAction(link, "moatstop", stopAction{p}); err != nil {
			return 0, err
		}
	}
	return len(links), nil
}

// hasContextAction reports whether r carries moatContext.
func hasContextAction(r reflect.Value) bool {
	acts := r.FieldByName("actions")
	for j := range acts.Len() {
		if _, ok := exported(acts.Index(j).FieldByName("Function")).Interface().(contextAction); ok {
			return true
		}
	}
	return false
}

// denies reports whether r is a rule of one link whose disruptive action
// is deny or drop.
func denies(r reflect.Value) bool {
	if r.FieldByName("HasChain").Bool() {
		return false
	}
	acts := r.FieldByName("actions")
	for j := range acts.Len() {
		switch strings.ToLower(acts.Index(j).FieldByName("Name").String()) {
		case "deny", "drop":
			return true
		}
	}
	return false
}

// isCounter reports whether key is an anomaly counter the sums read.
func isCounter(key string) bool {
	n, ok := strings.CutPrefix(key, txLevelScore)
	return ok && len(n) == 1 && n[0] >= '1' && n[0] <= '4'
}

// skippable reports whether rule r (at index i) may be skipped, its own
// evaluation after a match included, and returns the last link that
// adds to a counter (invalid if none): where its moatStop goes.
func (a *stopAnalysis) skippable(r reflect.Value, i int) (bool, reflect.Value) {
	id, _ := intField(r, "ID_")
	fam := id > 0 && familyOf(id) != nil
	sevKey := severityKey(types.RuleSeverity(r.FieldByName("Severity_").Int()))
	plKey := txLevelScore + strconv.Itoa(paranoiaOf(tagsOf(r)))
	var adder reflect.Value
	famAdds := false // the last link adds the pass's score to its counter
	for link := r; ; {
		linkFamAdds := false
		opName := ""
		if opp := link.FieldByName("operator"); !opp.IsNil() {
			opName = strings.TrimPrefix(strings.TrimPrefix(opp.Elem().FieldByName("Function").String(), "!"), "@")
		}
		acts := link.FieldByName("actions")
		for j := range acts.Len() {
			name := strings.ToLower(acts.Index(j).FieldByName("Name").String())
			fn, ok := exported(acts.Index(j).FieldByName("Function")).Interface().(plugintypes.Action)
			if !ok {
				return false, reflect.Value{}
			}
			switch {
			case stopQuietActions[name]:
			case name == "deny" && opName == "moatOverBudget":
			case name == "moatgate":
				// The gate removes only rules that cannot match
				// (gate.go, gatesplit.go).
			case name == "skipafter":
				to, ok := skipTarget(fn)
				if !ok || !slices.ContainsFunc(a.markers[to], func(m int) bool { return m > i && m < a.pass }) {
					return false, reflect.Value{}
				}
			case name == "skip":
				// Coraza counts every rule of the phase that is not
				// removed, and no marker is: N markers bound its reach
				// (as skipReach reads it).
				if !a.markersBefore(i, skipCount(acts.Index(j).FieldByName("Function"))) {
					return false, reflect.Value{}
				}
			case name == "setvar":
				key, val, write, ok := a.setvarOf(fn)
				if !ok {
					return false, reflect.Value{}
				}
				if strings.HasSuffix(key, "%{") {
					// A key named by macro: safe when no key it may
					// become is read after.
					prefix := strings.TrimSuffix(key, "%{")
					if prefix == "" || strings.HasPrefix(txLevelScore, prefix) || strings.HasPrefix(prefix, txLevelScore) {
						return false, reflect.Value{}
					}
					for k := range a.protected {
						if strings.HasPrefix(k, prefix) {
							return false, reflect.Value{}
						}
					}
					continue
				}
				if !isCounter(key) {
					if a.protected[key] {
						return false, reflect.Value{}
					}
					continue
				}
				if !write {
					return false, reflect.Value{}
				}
				add, ok := a.adds(val)
				if !ok {
					return false, reflect.Value{}
				}
				adder = link
				if key == plKey && sevKey != "" && add.covers(sevKey, a.consts) {
					linkFamAdds = true
				}
			default:
				return false, reflect.Value{}
			}
		}
		famAdds = linkFamAdds
		next := link.FieldByName("Chain")
		if next.Kind() != reflect.Pointer || next.IsNil() {
			break
		}
		link = next.Elem()
	}
	if fam && sevKey != "" && !famAdds {
		return false, reflect.Value{}
	}
	return true, adder
}

// addition is what a counter's setvar adds: a literal, or a severity
// score (key).
type addition struct {
	n   int
	key string
}

// covers reports whether the addition is at least the severity score
// sevKey holds.
func (d addition) covers(sevKey string, consts map[string]string) bool {
	if d.key != "" {
		return d.key == sevKey
	}
	c, ok := consts[sevKey]
	if !ok {
		return false
	}
	n, err := strconv.Atoi(c)
	return err == nil && d.n >= n
}

// adds reads a counter setvar's value: "+N" with N >= 0, or
// "+%{tx.<severity score>}".
func (a *stopAnalysis) adds(val string) (addition, bool) {
	rest, ok := strings.CutPrefix(val, "+")
	if !ok {
		return addition{}, false
	}
	if m := oneTXMacro.FindStringSubmatch(rest); m != nil && m[1] == "" {
		key := strings.ToLower(strings.TrimSpace(m[2]))
		switch key {
		case txCriticalScore, txErrorScore, txWarningScore, txNoticeScore:
			return addition{key: key}, true
		}
		return addition{}, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || rest[0] == '+' || rest[0] == '-' {
		return addition{}, false
	}
	return addition{n: n}, true
}

// setvarOf reads a setvar: its TX key, its value's text, whether it
// writes (rather than removes); false when it names another collection.
// A key named by macro is returned as its literal text before the
// macro followed by "%{".
func (a *stopAnalysis) setvarOf(fn plugintypes.Action) (key, val string, write, ok bool) {
	f := reflect.ValueOf(fn)
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	col, rm := f.FieldByName("collection"), f.FieldByName("isRemove")
	if col.Kind() != reflect.Uint8 || rm.Kind() != reflect.Bool || variables.RuleVariable(col.Uint()) != variables.TX {
		return "", "", false, false
	}
	sv, prefix, err := readSetvar(fn)
	if err != nil {
		return "", "", false, false
	}
	if sv == nil {
		return prefix + "%{", "", !rm.Bool(), true
	}
	if sv.val != nil {
		val = sv.val.String()
	}
	return sv.key, val, !rm.Bool(), true
}

// markersBefore reports whether n markers follow rule i before the
// context pass.
func (a *stopAnalysis) markersBefore(i, n int) bool {
	if n <= 0 {
		return false
	}
	seen := 0
	for j := i + 1; j < a.pass; j++ {
		if a.rules.Index(j).FieldByName("SecMark_").String() != "" {
			if seen++; seen == n {
				return true
			}
		}
	}
	return false
}

// skipTarget is a skipAfter action's marker.
func skipTarget(fn plugintypes.Action) (string, bool) {
	f := reflect.ValueOf(fn)
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	d := f.FieldByName("data")
	if d.Kind() != reflect.String {
		return "", false
	}
	return d.String(), true
}

func tagsOf(r reflect.Value) []string {
	tags := r.FieldByName("Tags_")
	out := make([]string, tags.Len())
	for i := range out {
		out[i] = tags.Index(i).String()
	}
	return out
}

// addAction appends a nondisruptive action to rule link r's actions:
// after its setvars, so that it sees what they wrote.
func addAction(r reflect.Value, name string, fn plugintypes.Action) error {
	acts := exported(r.FieldByName("actions"))
	if acts.Kind() != reflect.Slice || acts.Type().Elem().Kind() != reflect.Struct {
		return errors.New("waf: stop: Coraza rule actions not found")
	}
	el := reflect.New(acts.Type().Elem()).Elem()
	n, f := el.FieldByName("Name"), el.FieldByName("Function")
	if n.Kind() != reflect.String || f.Kind() != reflect.Interface || !reflect.TypeOf(fn).Implements(f.Type()) {
		return errors.New("waf: stop: Coraza rule action fields not found")
	}
	n.SetString(name)
	f.Set(reflect.ValueOf(fn))
	// A copy: the slice may share its array with another rule's.
	grown := reflect.MakeSlice(acts.Type(), 0, acts.Len()+1)
	grown = reflect.AppendSlice(grown, acts)
	acts.Set(reflect.Append(grown, el))
	return nil
}
