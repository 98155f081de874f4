package waf

import (
	"errors"
	"reflect"
	"regexp"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// Coraza expands a rule's logdata (CRS's "Matched Data: %{TX.0} found
// within %{MATCHED_VAR_NAME}: %{MATCHED_VAR}") into the RULE collection
// each time it evaluates the rule, matched or not, and again into every
// match. Each expansion reads TX and the MATCHED_* variables and builds
// a string: on a blocked attack, some 30 rules a request. moat reads a
// match's logged data only for the rules that refuse a body it could
// not take apart (bodyRefusalReason); the audit log is off, and no rule
// of CRS's or moat's reads RULE:logdata. So the other rules' logdata is
// dropped when the rules are loaded: verdicts, matched rules, matched
// values and messages are the same, and the data nothing reads is not
// built. A rule set where some rule reads RULE (a macro of it, or the
// variable) keeps every rule's logdata.

// readsRuleMacro matches a rule's raw text (lower case) where it
// expands a macro of RULE (%{rule.logdata}); the variables a rule reads
// are looked up among its links' own.
var readsRuleMacro = regexp.MustCompile(`%\{\s*rule\b`)

// dropLogData removes the logdata of w's rules but the body refusals'
// (see above); it returns how many rules and links it took it from.
func dropLogData(w coraza.WAF) (int, error) {
	rules, err := corazaRules(w)
	if err != nil {
		return 0, err
	}
	var links []reflect.Value
	for i := range rules.Len() {
		r, err := readRule(rules.Index(i))
		if err != nil {
			return 0, err
		}
		if readsRuleMacro.MatchString(r.raw) {
			return 0, nil
		}
		for link := r.v; ; {
			vars := link.FieldByName("variables")
			for j := range vars.Len() {
				if variables.RuleVariable(vars.Index(j).FieldByName("Variable").Uint()) == variables.Rule {
					return 0, nil
				}
			}
			if !bodyRefusal(r.id) {
				links = append(links, link)
			}
			next := link.FieldByName("Chain")
			if next.IsNil() {
				break
			}
			link = next.Elem()
		}
	}
	n := 0
	for _, link := range links {
		ld := link.FieldByName("LogData")
		if ld.Kind() != reflect.Interface || !ld.CanSet() {
			return 0, errors.New("waf: Coraza rule field LogData not found")
		}
		if !ld.IsNil() {
			ld.Set(reflect.Zero(ld.Type()))
			n++
		}
	}
	return n, nil
}
