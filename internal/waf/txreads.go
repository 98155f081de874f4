package waf

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/macro"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// The TX constants a request needs.
//
// The resolver's folded TX variables (resolve.go) are set by the phase-1
// gate at the start of every transaction, one Map.Set each. Once the
// setvars that expand them have them written in (setvarfold.go), most are
// read by nothing: CRS's setup gives each severity's score and each
// limit a variable that only the folded setvars and the removed setup
// rules named. readConsts keeps the constants something still reads at
// run time and the gate sets only those:
//
//   - a rule left (any chain link; not of the logging phase, which
//     moat's Tx never runs, nor of the response phases when no response
//     may be inspected, see resolution.responses) that targets TX whole,
//     the key (TX:x, &TX:x) or a key regex that matches it (TX:/^x/);
//   - a macro %{tx.x} in a rule's operator argument, msg or logdata
//     (as Coraza holds them after logdata.go), a setvar's key or value
//     (after folding), or a setenv;
//   - an arithmetic setvar of the key (tx.x=+5 reads x first), unless
//     the constant is 0 or empty: Coraza adds to 0 then, as to a key not
//     set, and writes the same;
//   - moat's own Go code: txGoReads, and the keys a moatEval plan
//     (evalskip.go, planned before) tests, and those its sums write,
//     whose holding it compares.
//
// Anything unreadable in the rule set keeps every constant.

// txGoReads are the TX variables moat's own code reads by name: the
// argument limits (moatArgLimits, budget.go) and the severities' scores
// (the context scorers' discount, context.go).
var txGoReads = []string{
	txArgLength, txArgNameLength, txTotalArgLength,
	txCriticalScore, txErrorScore, txWarningScore, txNoticeScore,
}

// txGoWrites are the TX variables moat's own code writes: the inspection
// pass's clock and bound, the multipart check's reason, a route's
// executable uploads, and the rules the context scorers list apart;
// txGoWriteLevels those it names by a number after the text, the
// paranoia level of a rule whose score it takes back (context.go). The
// gate's key readers (gatekeyrx.go) check them.
var (
	txGoWrites      = []string{txStart, txIncomplete, txMultipartError, txExecutableUploads, txDiscounted}
	txGoWriteLevels = []string{txLevelScore}
)

const (
	txLevelScore     = "inbound_anomaly_score_pl"
	txArgLength      = "arg_length"
	txArgNameLength  = "arg_name_length"
	txTotalArgLength = "total_arg_length"
	txCriticalScore  = "critical_anomaly_score"
	txErrorScore     = "error_anomaly_score"
	txWarningScore   = "warning_anomaly_score"
	txNoticeScore    = "notice_anomaly_score"
)

// readConsts returns the constants of consts that rules (Coraza's rule
// list, as the WAF will run it) or moat's code read; responses says
// whether the response phases run.
func readConsts(rules reflect.Value, consts []txConst, responses bool) ([]txConst, error) {
	read, arith := map[string]bool{}, map[string]bool{}
	for _, k := range txGoReads {
		read[k] = true
	}
	for pl := 1; pl <= 4; pl++ {
		// The context scorers take a discounted score back from these,
		// reading a key not set as 0 (context.go).
		arith[txLevelScore+strconv.Itoa(pl)] = true
	}
	keys := make([]string, len(consts))
	for i, c := range consts {
		keys[i] = c.key
	}
	for i := range rules.Len() {
		ph, err := intField(rules.Index(i), "Phase_")
		if err != nil {
			return consts, err
		}
		if ph != 0 && !phaseRuns(ph, responses) {
			continue
		}
		if h := evalHolderOf(rules.Index(i)); h != nil {
			if e := h.p.Load(); e != nil {
				for _, k := range e.reads() {
					read[strings.ToLower(k)] = true
				}
			}
		}
		for link := rules.Index(i); ; {
			all, err := linkReads(link, keys, read, arith)
			if err != nil {
				return consts, err
			}
			if all {
				return consts, nil
			}
			next := link.FieldByName("Chain")
			if next.Kind() != reflect.Pointer {
				return consts, errors.New("waf: Coraza rule chain not found")
			}
			if next.IsNil() {
				break
			}
			link = next.Elem()
		}
	}
	out := make([]txConst, 0, len(read))
	for _, c := range consts {
		if read[c.key] || arith[c.key] && c.value != "0" && c.value != "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// linkReads adds to read the keys one rule or chain link reads, to arith
// those its arithmetic setvars add to; true when it reads TX whole.
func linkReads(v reflect.Value, keys []string, read, arith map[string]bool) (bool, error) {
	vars := v.FieldByName("variables")
	if vars.Kind() != reflect.Slice {
		return false, errors.New("waf: Coraza rule variables not found")
	}
	for i := range vars.Len() {
		rv := vars.Index(i)
		vr, ks, krx := rv.FieldByName("Variable"), rv.FieldByName("KeyStr"), rv.FieldByName("KeyRx")
		if vr.Kind() != reflect.Uint8 || ks.Kind() != reflect.String || krx.Kind() != reflect.Pointer {
			return false, errors.New("waf: Coraza variable fields not found")
		}
		if variables.RuleVariable(vr.Uint()) != variables.TX {
			continue
		}
		switch {
		case !krx.IsNil():
			rx, ok := exported(krx).Interface().(interface{ MatchString(string) bool })
			if !ok {
				return false, errors.New("waf: Coraza variable key regex not found")
			}
			for _, k := range keys {
				if rx.MatchString(k) {
					read[k] = true
				}
			}
		case ks.String() == "":
			return true, nil
		default:
			read[strings.ToLower(ks.String())] = true
		}
	}
	if op := v.FieldByName("operator"); op.Kind() != reflect.Pointer {
		return false, errors.New("waf: Coraza rule operator not found")
	} else if !op.IsNil() {
		data := op.Elem().FieldByName("Data")
		if data.Kind() != reflect.String {
			return false, errors.New("waf: Coraza operator fields not found")
		}
		macroReads(data.String(), read)
	}
	for _, f := range []string{"Msg", "LogData"} {
		m := v.FieldByName(f)
		if m.Kind() != reflect.Interface {
			return false, errors.New("waf: Coraza rule " + f + " not found")
		}
		if mm, _ := exported(m).Interface().(macro.Macro); mm != nil {
			macroReads(mm.String(), read)
		}
	}
	acts := v.FieldByName("actions")
	if acts.Kind() != reflect.Slice {
		return false, errors.New("waf: Coraza rule actions not found")
	}
	for i := range acts.Len() {
		a := acts.Index(i)
		name := a.FieldByName("Name").String()
		if name != "setvar" && name != "setenv" {
			// msg and logdata are the rule's Msg and LogData above; no
			// other action of Coraza's expands macros.
			continue
		}
		f := reflect.ValueOf(exported(a.FieldByName("Function")).Interface())
		if f.Kind() == reflect.Pointer && !f.IsNil() {
			f = f.Elem()
		}
		if f.Kind() != reflect.Struct {
			return false, errors.New("waf: Coraza " + name + " not found")
		}
		// setvar's key is a macro, setenv's a name.
		k, val := f.FieldByName("key"), f.FieldByName("value")
		if name == "setvar" && k.Kind() != reflect.Interface || val.Kind() != reflect.Interface {
			return false, errors.New("waf: Coraza " + name + " fields not found")
		}
		vm, _ := exported(val).Interface().(macro.Macro)
		var ktext, vtext string
		if km, _ := exported(k).Interface().(macro.Macro); km != nil && name == "setvar" {
			ktext = km.String()
		}
		if vm != nil {
			vtext = vm.String()
		}
		macroReads(ktext, read)
		macroReads(vtext, read)
		if name == "setvar" && (strings.HasPrefix(vtext, "+") || strings.HasPrefix(vtext, "-")) {
			arith[strings.ToLower(ktext)] = true
		}
	}
	return false, nil
}

// macroReads adds to read the TX keys text's macros read.
func macroReads(text string, read map[string]bool) {
	for _, m := range macroRx.FindAllStringSubmatch(text, -1) {
		col, key, ok := strings.Cut(m[1], ".")
		if ok && strings.EqualFold(strings.TrimSpace(col), "tx") {
			read[strings.ToLower(strings.TrimSpace(key))] = true
		}
	}
}
