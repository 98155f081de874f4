package waf

import (
	"errors"
	"reflect"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// What the gate decides beyond a rule's own test (gate.go):
//
//   - Chains whose first rule matches most requests (CRS's 920170 "GET
//     or HEAD with a body", 920180 "POST without a length",
//     920360-920390's length checks): a chain matches only if every link
//     does, so a link whose test the gate can ask and that answers false
//     for each of its values decides the whole chain. The chain is
//     removed only when the links before that one, which Coraza would
//     evaluate first, do nothing of their own when they match: no
//     capture, and no action that runs on a link's match (setvar, ctl,
//     moat's own) but the inert ones (t, log flags, logdata, multiMatch,
//     evaluated later or never). Their matches would have set
//     MATCHED_VAR and MATCHED_VAR_NAME, which outlive the rule; the plan
//     decides chains only when no rule of the set reads those before its
//     own match sets them (chainSafe).
//   - Operators whose argument is a macro of TX variables the resolver
//     fixed (resolve.go) and no rule of the set writes: the phase-1 gate
//     sets them before any rule runs, so they hold their value
//     throughout phases 1 and 2 and the operator's answer depends on the
//     value alone (911100's `!@within %{tx.allowed_methods}`, 920360's
//     `@gt %{tx.arg_name_length}`).
//
// TestGateDifferential compares every verdict, matched rule and message
// with Coraza alone; TestGateChains checks each of these decisions
// against a rule set built to catch it being wrong.

// quietActions are the actions Coraza runs on a link's match that do
// nothing there (by Coraza's lower-case names): transformations, the log
// flags, multiMatch, and logdata, which is expanded only once the whole
// chain matches. capture is inert as an action; the rule's Capture field
// says whether the operator captures.
var quietActions = map[string]bool{
	"t": true, "log": true, "nolog": true, "auditlog": true, "noauditlog": true,
	"logdata": true, "multimatch": true, "capture": true,
}

// quietLink reports whether link v of a chain does nothing of its own
// when it matches but set MATCHED_VAR*: no capture, and no non-disruptive
// action but the quiet ones (disruptive and flow actions run only when
// the whole chain matches).
func quietLink(v reflect.Value) (bool, error) {
	c := v.FieldByName("Capture")
	acts := v.FieldByName("actions")
	if c.Kind() != reflect.Bool || acts.Kind() != reflect.Slice {
		return false, errors.New("waf: gate: Coraza rule fields Capture and actions not found")
	}
	if c.Bool() {
		return false, nil
	}
	for i := range acts.Len() {
		a := acts.Index(i)
		fn, ok := exported(a.FieldByName("Function")).Interface().(plugintypes.Action)
		if !ok || fn == nil {
			return false, errors.New("waf: gate: Coraza rule actions not found")
		}
		if fn.Type() == plugintypes.ActionTypeNondisruptive && !quietActions[strings.ToLower(a.FieldByName("Name").String())] {
			return false, nil
		}
	}
	return true, nil
}

// chainLinks adds to gr (the gate's view of chain head r, nil when the
// gate cannot ask the head's own test) the tests of r's links that decide
// the chain: each link the gate can ask whose links before it, the head
// included, are quiet.
func (p *gatePlan) chainLinks(r reflect.Value, gr *gateRule, nodeOf map[[2]uintptr]int, selOf map[gateSelector]int) (*gateRule, error) {
	if !p.chains || gr != nil && gr.unclocked {
		return gr, nil
	}
	hc, next := r.FieldByName("HasChain"), r.FieldByName("Chain")
	if hc.Kind() != reflect.Bool || next.Kind() != reflect.Pointer {
		return nil, errors.New("waf: gate: Coraza rule fields HasChain and Chain not found")
	}
	id, _ := intField(r, "ID_")
	if !hc.Bool() || id <= 0 || r.FieldByName("operator").IsNil() {
		return gr, nil
	}
	phase, err := intField(r, "Phase_")
	if err != nil {
		return nil, err
	}
	var links []gateRule
	for link := r; ; {
		quiet, err := quietLink(link)
		if err != nil {
			return nil, err
		}
		next := link.FieldByName("Chain")
		if !quiet || next.Kind() != reflect.Pointer || next.IsNil() {
			break
		}
		link = next.Elem()
		lr, err := gateTest(link, id, phase, p, nodeOf, selOf)
		if err != nil {
			return nil, err
		}
		if lr != nil && !lr.unclocked {
			lr.bit = -1 // its own necessity test (planMulti plans the rules, not links)
			links = append(links, *lr)
		}
	}
	if len(links) == 0 {
		return gr, nil
	}
	if gr == nil {
		gr = &gateRule{id: id, bit: -1}
	}
	gr.links = links
	return gr, nil
}

// matchedVarVariables are the variables a rule's match sets.
var matchedVarVariables = map[variables.RuleVariable]bool{
	variables.MatchedVar: true, variables.MatchedVarName: true,
	variables.MatchedVars: true, variables.MatchedVarsNames: true,
}

// chainSafe reports whether removing a chain whose first links matched
// changes nothing another rule reads: no chain's first rule reads
// MATCHED_VAR* as a variable or in its operator's macro (a chain's later
// links read what its own earlier ones matched), and no rule reads the
// RULE collection (which every rule evaluated writes, msg included, with
// what MATCHED_VAR holds then).
func chainSafe(all []*rrule) bool {
	for _, r := range all {
		if strings.Contains(r.raw, "%{rule.") {
			return false
		}
		if r.id <= 0 {
			continue
		}
		vars := r.v.FieldByName("variables")
		for i := range vars.Len() {
			if matchedVarVariables[variables.RuleVariable(vars.Index(i).FieldByName("Variable").Uint())] {
				return false
			}
		}
		if op := r.v.FieldByName("operator"); !op.IsNil() && strings.Contains(strings.ToLower(op.Elem().FieldByName("Data").String()), "matched_var") {
			return false
		}
	}
	return true
}

// planChains reads what chainLinks and constMacros need of the rule set.
func (p *gatePlan) planChains(rules reflect.Value, consts []txConst) error {
	all := make([]*rrule, rules.Len())
	for i := range all {
		r, err := readRule(rules.Index(i))
		if err != nil {
			return err
		}
		all[i] = r
	}
	p.chains = chainSafe(all)
	p.consts = constTX(all, consts)
	p.all = all
	p.constVals = make(map[string]string, len(consts))
	for _, c := range consts {
		p.constKeys = append(p.constKeys, c.key)
		if len(c.values) > 0 {
			p.constVals[c.key] = c.values[0]
		}
	}
	return nil
}

// constTX is the TX variables (lower-case keys) that hold consts' values
// throughout phases 1 and 2: the resolver's, set by the phase-1 gate,
// that no rule of the set may write (by setvar, or by capture).
func constTX(all []*rrule, consts []txConst) map[string]bool {
	out := map[string]bool{}
	for _, c := range consts {
		if !captureKey(c.key) {
			out[c.key] = true
		}
	}
	for _, r := range all {
		for k := range out {
			if writesKey(r, k) {
				delete(out, k)
			}
		}
	}
	return out
}

// constMacros reports whether every macro in text is a TX variable of
// p.consts.
func (p *gatePlan) constMacros(text string) bool {
	for _, m := range macroRx.FindAllStringSubmatch(text, -1) {
		col, key, ok := strings.Cut(m[1], ".")
		if !ok || !strings.EqualFold(col, "tx") || !p.consts[strings.ToLower(key)] {
			return false
		}
	}
	return true
}
