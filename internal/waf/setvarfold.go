package waf

import (
	"errors"
	"reflect"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
)

// A rule that matches adds its score with setvars such as
// tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}: Coraza
// expands the value's macro on every match, a TX lookup (which copies
// the values) and a string built, before the lookup and the write the
// setvar is for. The TX variables such values read are mostly the
// configuration's (the anomaly scores of each severity), which the
// resolver fixes and the phase-1 gate sets at the start of every
// transaction, and which no rule of the set writes (gatePlan.consts): the
// value is the same on every request. foldSetvars writes it in when the
// rules are loaded, so that the setvar expands a constant.

// foldSetvars replaces the value macro of each setvar of w's rules
// whose every macro reads a TX variable of consts (lower-case keys, each
// always holding values[key]) by the text it expands to; it returns how
// many it replaced.
func foldSetvars(rules reflect.Value, consts map[string]bool, values map[string]string) (int, error) {
	n := 0
	for i := range rules.Len() {
		for link := rules.Index(i); ; {
			acts := link.FieldByName("actions")
			if acts.Kind() != reflect.Slice {
				return n, errors.New("waf: Coraza rule actions not found")
			}
			for j := range acts.Len() {
				a := acts.Index(j)
				if a.FieldByName("Name").String() != "setvar" {
					continue
				}
				f := reflect.ValueOf(exported(a.FieldByName("Function")).Interface())
				if f.Kind() != reflect.Pointer || f.IsNil() || f.Elem().Kind() != reflect.Struct {
					return n, errors.New("waf: Coraza setvar not found")
				}
				val := f.Elem().FieldByName("value")
				if val.Kind() != reflect.Interface {
					return n, errors.New("waf: Coraza setvar fields not found")
				}
				m, _ := exported(val).Interface().(macro.Macro)
				if m == nil {
					continue
				}
				text, ok := constText(m.String(), consts, values)
				if !ok || text == m.String() {
					continue
				}
				folded, err := macro.NewMacro(text)
				if err != nil {
					continue
				}
				exported(val).Set(reflect.ValueOf(folded))
				n++
			}
			next := link.FieldByName("Chain")
			if next.Kind() != reflect.Pointer || next.IsNil() {
				break
			}
			link = next.Elem()
		}
	}
	return n, nil
}

// constText is text with each of its macros replaced by the value of
// the TX variable it reads; false when one reads something else, or
// when what is left would read as a macro again.
func constText(text string, consts map[string]bool, values map[string]string) (string, bool) {
	ok := true
	out := macroRx.ReplaceAllStringFunc(text, func(m string) string {
		col, key, cut := strings.Cut(m[2:len(m)-1], ".")
		key = strings.ToLower(key)
		v, known := values[key]
		if !cut || !strings.EqualFold(col, "tx") || !consts[key] || !known {
			ok = false
			return m
		}
		return v
	})
	if !ok || out == "" || strings.Contains(out, "%{") {
		return "", false
	}
	return out, true
}
