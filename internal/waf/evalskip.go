package waf

import (
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// CRS's blocking evaluation runs on every request: in each phase, rules
// that add the paranoia levels' scores into the blocking score (949052,
// and 949059 into which the resolver merged phase 2's), then the rule
// that blocks when that score reaches the threshold (949111, 949110).
// On most requests nothing scored, and they change nothing, yet Coraza
// pays its per-rule bookkeeping for each (4 µs for a sum, 1.5 for the
// comparison, on the benign GET).
//
// The moatEval action, on a rule placed right before them (rules/
// moat-before-blocking.conf; in phase 2 after moatContext, the last thing
// that changes scores), decides them with the TX they will see: it runs
// the sums' setvars on a copy of the variables they write, exactly as
// Coraza's setvar would, and when every one of those variables would
// keep the value it holds, and the blocking rule's operator answers no
// on that value, it removes the sums and the blocking rule from the
// transaction. Nothing between the action and the blocking rule may
// write TX (planEvals checks it at load): the rules it passes over are
// SecMarkers, the sums (each always matching, or a test of TX variables
// the sums do not write, with no transformation), and rules that set
// nothing (the budget rules). The sums are nolog, so removing them
// changes no verdict; a blocking rule that cannot match would have run
// nothing. A rule set not laid out this way is left to Coraza.
//
// TestEvalSkipDetection compares verdicts, matched rules, values and
// messages with and without it over the request corpora.

// evalPlan is what the moatEval action of one rule decides.
type evalPlan struct {
	sums  []evalSum
	block evalTest
	ids   []int // the sums' and the blocking rule's, removed together
}

// evalSum is a rule that adds scores: its test (nil: it always matches)
// and its setvars, in order.
type evalSum struct {
	test    *evalTest
	setvars []evalSetvar
}

// evalSetvar is a setvar of a sum: the TX key it writes and its value,
// read as text, text and one TX variable's first value (txKey), or
// else by the macro.
type evalSetvar struct {
	key         string
	val         macro.Macro
	text, txKey string
	expand      bool
}

// oneTXMacro matches a setvar value that is a text and one TX macro.
var oneTXMacro = regexp.MustCompile(`^([^%]*)%\{(?i:tx)\.([^}]+)\}$`)

func newEvalSetvar(key string, val macro.Macro) evalSetvar {
	sv := evalSetvar{key: key, val: val}
	text := val.String()
	if m := oneTXMacro.FindStringSubmatch(text); m != nil {
		sv.text, sv.txKey = m[1], strings.ToLower(strings.TrimSpace(m[2]))
	} else if strings.Contains(text, "%{") {
		sv.expand = true
	} else {
		sv.text = text
	}
	return sv
}

// reads is the TX keys the plan reads on a request: the tests' and
// every key a sum writes, whose holding it compares (a key not set is
// not one that holds 0).
func (e *evalPlan) reads() []string {
	out := slices.Clone(e.block.keys)
	for _, s := range e.sums {
		if s.test != nil {
			out = append(out, s.test.keys...)
		}
		for _, sv := range s.setvars {
			out = append(out, sv.key)
			if sv.txKey != "" {
				out = append(out, sv.txKey)
			}
		}
	}
	return out
}

// evalTest is a rule's (or a chain's first link's) test of TX
// variables, with no transformation.
type evalTest struct {
	keys []string
	op   plugintypes.Operator
	neg  bool
}

// evalHolder holds the plan of one rule's moatEval action or operator;
// New gives it (planEvals).
type evalHolder struct{ p atomic.Pointer[evalPlan] }

// decide removes the evaluation from tx when its plan finds it would
// change nothing.
func (h *evalHolder) decide(tx plugintypes.TransactionState) {
	e := h.p.Load()
	if e == nil {
		return
	}
	rr, ok := tx.(ruleRemover)
	if !ok || !e.noop(tx) {
		return
	}
	for _, id := range e.ids {
		rr.RemoveRuleByIDRange(id, id)
	}
}

// evalAction is the moatEval action: on a rule that matches anyway
// (phase 2's moatContext SecAction), it costs no evaluation of its own.
type evalAction struct{ h *evalHolder }

func newEvalAction() plugintypes.Action { return evalAction{&evalHolder{}} }

func (evalAction) Init(plugintypes.RuleMetadata, string) error { return nil }

func (evalAction) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

func (a evalAction) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	a.h.decide(tx)
}

// evalOp is the moatEval operator, for a phase with no rule that matches
// right before the evaluation: a rule that never matches costs Coraza a
// fraction of one that does (no match is recorded, no action run). It
// decides once per transaction, on the rule's first value, and answers
// false.
type evalOp struct{ h *evalHolder }

func newEvalOp(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	return evalOp{&evalHolder{}}, nil
}

func (o evalOp) Evaluate(tx plugintypes.TransactionState, _ string) bool {
	o.h.decide(tx)
	return false
}

// evalScratch is what noop has read of TX and would write, in arrays
// rather than maps: a plan reads and writes a handful of variables.
type evalScratch struct {
	col collection.Map
	// over: values read in place of TX's (see evalPlan.blocks).
	over   []evalOver
	rk     [12]string
	rv     [12][]string
	rn     int
	wk, wv [16]string
	wn     int
}

// read returns TX key's values, as Coraza's collection holds them.
func (s *evalScratch) read(key string) ([]string, bool) {
	for i := range s.over {
		if s.over[i].key == key {
			return s.over[i].vals, true
		}
	}
	for i := range s.rn {
		if s.rk[i] == key {
			return s.rv[i], true
		}
	}
	if s.rn == len(s.rk) {
		return nil, false
	}
	v := s.col.Get(key)
	s.rk[s.rn], s.rv[s.rn] = key, v
	s.rn++
	return v, true
}

// current is the first value of key once the writes so far are made.
func (s *evalScratch) current(key string) (string, bool) {
	for i := s.wn - 1; i >= 0; i-- {
		if s.wk[i] == key {
			return s.wv[i], true
		}
	}
	v, ok := s.read(key)
	if len(v) == 0 {
		return "", ok
	}
	return v[0], ok
}

// matches reports whether t answers true on TX as it is.
func (s *evalScratch) matches(tx plugintypes.TransactionState, t *evalTest) (bool, bool) {
	for _, k := range t.keys {
		vals, ok := s.read(k)
		if !ok {
			return false, false
		}
		for _, v := range vals {
			if t.op.Evaluate(tx, v) != t.neg {
				return true, true
			}
		}
	}
	return false, true
}

// noop reports whether the sums would leave TX as it is and the blocking
// rule would then not match; false too when the scratch runs out of room.
func (e *evalPlan) noop(tx plugintypes.TransactionState) bool {
	s := evalScratch{col: tx.Variables().TX()}
	if !s.sum(tx, e) {
		return false
	}
	for i := range s.wn {
		if v, ok := s.read(s.wk[i]); !ok || len(v) != 1 || v[0] != s.wv[i] {
			return false
		}
	}
	m, ok := s.matches(tx, &e.block)
	return ok && !m
}

// evalOver is a TX variable's value as evalPlan.blocks is to read it.
type evalOver struct {
	key  string
	vals []string
}

// blocks reports whether the sums, run on TX as it is but for over,
// would bring the blocking rule to match, and the value it would match
// (the blocking score); false when the scratch runs out of room or a sum
// expands a macro the scratch cannot answer (it would read TX itself,
// not over).
func (e *evalPlan) blocks(tx plugintypes.TransactionState, over []evalOver) (string, bool) {
	s := evalScratch{col: tx.Variables().TX(), over: over}
	for i := range e.sums {
		for j := range e.sums[i].setvars {
			if e.sums[i].setvars[j].expand {
				return "", false
			}
		}
	}
	if !s.sum(tx, e) {
		return "", false
	}
	for _, k := range e.block.keys {
		vals, ok := s.read(k)
		if !ok {
			return "", false
		}
		if v, written := s.written(k); written {
			vals = []string{v}
		}
		for _, v := range vals {
			if e.block.op.Evaluate(tx, v) != e.block.neg {
				return v, true
			}
		}
	}
	return "", false
}

// written is the last value the sums wrote to key, if they wrote it.
func (s *evalScratch) written(key string) (string, bool) {
	for i := s.wn - 1; i >= 0; i-- {
		if s.wk[i] == key {
			return s.wv[i], true
		}
	}
	return "", false
}

// sum runs e's sums into s's writes; false when the scratch runs out of
// room.
func (s *evalScratch) sum(tx plugintypes.TransactionState, e *evalPlan) bool {
	for i := range e.sums {
		sum := &e.sums[i]
		if sum.test != nil {
			m, ok := s.matches(tx, sum.test)
			if !ok {
				return false
			}
			if !m {
				continue
			}
		}
		for j := range sum.setvars {
			sv := &sum.setvars[j]
			value := sv.text
			switch {
			case sv.expand:
				value = sv.val.Expand(tx)
			case sv.txKey != "":
				v, ok := s.read(sv.txKey)
				if !ok {
					return false
				}
				if len(v) > 0 {
					value += v[0]
				}
			}
			cur, ok := s.current(sv.key)
			if !ok {
				return false
			}
			v, writes := setvarResult(cur, value)
			if !writes {
				continue
			}
			if s.wn == len(s.wk) {
				return false
			}
			s.wk[s.wn], s.wv[s.wn] = sv.key, v
			s.wn++
		}
	}
	return true
}

// setvarResult is what Coraza's setvar writes to a TX variable holding
// cur (its first value; "" when it has none) given its expanded value;
// false when it writes nothing.
func setvarResult(cur, value string) (string, bool) {
	switch {
	case value == "":
		return "", true
	case value[0] == '+' || value[0] == '-':
		n := 0
		if len(value) > 1 {
			var err error
			if n, err = strconv.Atoi(value[1:]); err != nil {
				if strings.HasPrefix(value[1:], "tx.") {
					return "", false
				}
				return value, true
			}
		}
		c := 0
		if cur != "" {
			var err error
			if c, err = strconv.Atoi(cur); err != nil {
				return "", false
			}
		}
		if value[0] == '+' {
			return strconv.Itoa(c + n), true
		}
		return strconv.Itoa(c - n), true
	}
	return value, true
}

// evalQuietActions are the actions a rule between moatEval and the
// blocking rule may carry: it writes no variable and moves no rule.
var evalQuietActions = map[string]bool{
	"id": true, "phase": true, "pass": true, "nolog": true, "noauditlog": true, "auditlog": true, "log": true,
	"tag": true, "ver": true, "rev": true, "msg": true, "severity": true, "maturity": true,
	"accuracy": true, "logdata": true, "t": true, "deny": true, "status": true, "block": true, "drop": true,
}

// planEvals plans the moatEval action or operator of each rule of rules
// carrying one, and returns how many it planned; a rule whose followers
// are not laid out as described above gets no plan, and decides nothing.
func planEvals(rules reflect.Value) (int, error) {
	n := 0
	for i := range rules.Len() {
		r := rules.Index(i)
		h := evalHolderOf(r)
		if h == nil {
			continue
		}
		phase, err := intField(r, "Phase_")
		if err != nil {
			return n, err
		}
		e, err := planEval(rules, i+1, phase)
		if err != nil {
			return n, err
		}
		if e != nil {
			h.p.Store(e)
			n++
		}
	}
	return n, nil
}

// evalHolderOf returns the holder of rule r's moatEval action or
// operator, or nil.
func evalHolderOf(r reflect.Value) *evalHolder {
	if opp := r.FieldByName("operator"); opp.Kind() == reflect.Pointer && !opp.IsNil() {
		if op, ok := exported(opp.Elem().FieldByName("Operator")).Interface().(evalOp); ok {
			return op.h
		}
	}
	acts := r.FieldByName("actions")
	for j := range acts.Len() {
		if a, ok := exported(acts.Index(j).FieldByName("Function")).Interface().(evalAction); ok {
			return a.h
		}
	}
	return nil
}

// planEval reads the rules of phase from index i on: sums, quiet rules
// and markers up to the blocking rule.
func planEval(rules reflect.Value, i, phase int) (*evalPlan, error) {
	e := &evalPlan{}
	written := map[string]bool{}
	var reads []string // the macros and keys the plan's tests and values read
	for ; i < rules.Len(); i++ {
		r := rules.Index(i)
		rr, err := readRule(r)
		if err != nil {
			return nil, err
		}
		if rr.marker != "" {
			continue
		}
		if rr.phase != phase {
			if rr.phase == 0 {
				return nil, nil
			}
			continue
		}
		if t, _, ok := readEvalTest(r); ok && len(e.sums) > 0 && readsAny(t.keys, written) {
			return e.finish(r, rr.id, reads, written)
		}
		if quietRule(r) {
			continue
		}
		if rr.id > 0 && !rr.log && !rr.chain && len(rr.dynKeys) == 0 && len(rr.setvars) > 0 && sumActions(r) {
			s := evalSum{}
			if !r.FieldByName("operator").IsNil() {
				t, text, ok := readEvalTest(r)
				if !ok || r.FieldByName("variables").Index(0).FieldByName("Exceptions").Len() > 0 {
					return nil, nil
				}
				s.test = t
				reads = append(reads, text)
				reads = append(reads, t.keys...)
			}
			for _, sv := range rr.setvars {
				if !txSetvar(sv.fn) || sv.val == nil {
					return nil, nil
				}
				s.setvars = append(s.setvars, newEvalSetvar(sv.key, sv.val))
				written[sv.key] = true
				reads = append(reads, sv.val.String())
			}
			e.sums = append(e.sums, s)
			e.ids = append(e.ids, rr.id)
			continue
		}
		return nil, nil
	}
	return nil, nil
}

// finish completes e with its blocking rule r (id), whose first link
// decides whether it matches, once what the plan's tests and values read
// (reads) is found not to be what the sums write (written), but for the
// blocking rule's variables, read after them.
func (e *evalPlan) finish(r reflect.Value, id int, reads []string, written map[string]bool) (*evalPlan, error) {
	t, text, ok := readEvalTest(r)
	if !ok || id <= 0 {
		return nil, nil
	}
	e.block = *t
	e.ids = append(e.ids, id)
	for _, text := range append(reads, text) {
		if !txOnlyMacros(text) {
			return nil, nil
		}
		lower := strings.ToLower(text)
		for k := range written {
			if strings.Contains(lower, k) {
				return nil, nil
			}
		}
	}
	return e, nil
}

func readsAny(keys []string, written map[string]bool) bool {
	for _, k := range keys {
		if written[k] {
			return true
		}
	}
	return false
}

// readEvalTest reads rule r's own test when it is a test of TX variables
// by key, with no transformation, and an operator of resolveOperators;
// text is the operator's argument.
func readEvalTest(r reflect.Value) (*evalTest, string, bool) {
	if r.FieldByName("MultiMatch").Bool() || r.FieldByName("transformations").Len() > 0 {
		return nil, "", false
	}
	opp := r.FieldByName("operator")
	if opp.IsNil() {
		return nil, "", false
	}
	opv := opp.Elem()
	name := strings.TrimPrefix(strings.TrimPrefix(opv.FieldByName("Function").String(), "!"), "@")
	if !resolveOperators[name] {
		return nil, "", false
	}
	op, ok := exported(opv.FieldByName("Operator")).Interface().(plugintypes.Operator)
	if !ok || op == nil {
		return nil, "", false
	}
	t := &evalTest{op: op, neg: opv.FieldByName("Negation").Bool()}
	vars := r.FieldByName("variables")
	if vars.Len() == 0 {
		return nil, "", false
	}
	for j := range vars.Len() {
		rv := vars.Index(j)
		key := strings.ToLower(rv.FieldByName("KeyStr").String())
		if variables.RuleVariable(rv.FieldByName("Variable").Uint()) != variables.TX || key == "" ||
			!rv.FieldByName("KeyRx").IsNil() || rv.FieldByName("Count").Bool() {
			return nil, "", false
		}
		t.keys = append(t.keys, key)
	}
	return t, opv.FieldByName("Data").String(), true
}

// txOnlyMacros reports whether every macro of text reads TX.
func txOnlyMacros(text string) bool {
	for _, m := range macroRx.FindAllStringSubmatch(text, -1) {
		if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(m[1])), "tx.") {
			return false
		}
	}
	return true
}

// txSetvar reports whether setvar fn writes (not removes) a TX variable.
func txSetvar(fn plugintypes.Action) bool {
	f := reflect.ValueOf(fn)
	if f.Kind() == reflect.Pointer {
		f = f.Elem()
	}
	col, rm := f.FieldByName("collection"), f.FieldByName("isRemove")
	return col.Kind() == reflect.Uint8 && rm.Kind() == reflect.Bool &&
		variables.RuleVariable(col.Uint()) == variables.TX && !rm.Bool()
}

// quietRule reports whether r and its chain carry only evalQuietActions.
// Of moat's operators only the budget's may be on it: others may write
// TX.
func quietRule(r reflect.Value) bool {
	for link := r; ; {
		if opp := link.FieldByName("operator"); !opp.IsNil() {
			name := strings.TrimPrefix(strings.TrimPrefix(opp.Elem().FieldByName("Function").String(), "!"), "@")
			if strings.HasPrefix(name, "moat") && name != "moatOverBudget" {
				return false
			}
		}
		next := link.FieldByName("Chain")
		if next.Kind() != reflect.Pointer || next.IsNil() {
			break
		}
		link = next.Elem()
	}
	return onlyActions(r, func(name string) bool { return evalQuietActions[name] })
}

// sumActions reports whether r carries only quiet actions and setvars,
// none of them disruptive.
func sumActions(r reflect.Value) bool {
	return onlyActions(r, func(name string) bool {
		switch name {
		case "setvar":
			return true
		case "deny", "block", "drop", "status":
			return false
		}
		return evalQuietActions[name]
	})
}

func onlyActions(r reflect.Value, ok func(string) bool) bool {
	for link := r; ; {
		acts := link.FieldByName("actions")
		for j := range acts.Len() {
			if !ok(strings.ToLower(acts.Index(j).FieldByName("Name").String())) {
				return false
			}
		}
		next := link.FieldByName("Chain")
		if next.Kind() != reflect.Pointer || next.IsNil() {
			return true
		}
		link = next.Elem()
	}
}
