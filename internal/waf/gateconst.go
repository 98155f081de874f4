package waf

import (
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// Coraza's comparison operators expand their argument's macros on every
// value they are asked about: for CRS's argument limits (@gt
// %{tx.arg_length}) and its allowed lists (@within
// %{tx.allowed_request_content_type}), a TX lookup that lower-cases the
// key and copies the variable's values, and a number read from text, per
// argument, header and name the gate asks about. Where the argument reads
// only TX constants (constMacros: the resolver's, set by the phase-1 gate
// before any rule runs, written by none), the gate asks constOp instead,
// built at load with the constants written in; Coraza's own operator
// still runs for the rules the gate keeps.

// constOps are the operators constOp answers for, as Coraza's do.
var constOps = map[string]bool{"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "within": true, "streq": true}

// constOp is a constOps operator with its argument expanded.
type constOp struct {
	name string
	data string // the argument, its macros expanded
	n    int    // data read as a number, as Coraza reads it (0 if it is none)
}

// constOperator returns the gate's operator for @name data when data's
// macros read only constants (constMacros holds) and name is one of
// constOps.
func (p *gatePlan) constOperator(name, data string) (plugintypes.Operator, bool) {
	if !constOps[name] || !strings.Contains(data, "%{") {
		return nil, false
	}
	ok := true
	text := macroRx.ReplaceAllStringFunc(data, func(m string) string {
		_, key, _ := strings.Cut(m[2:len(m)-1], ".")
		v, found := p.constVals[strings.ToLower(key)]
		ok = ok && found
		return v
	})
	if !ok {
		return nil, false
	}
	n, _ := strconv.Atoi(text)
	return constOp{name: name, data: text, n: n}, true
}

// Evaluate answers as Coraza's operator of o's name on its expanded
// argument (operators/gt.go and the others: both sides read by
// strconv.Atoi, 0 when not a number).
func (o constOp) Evaluate(_ plugintypes.TransactionState, value string) bool {
	switch o.name {
	case "within":
		return strings.Contains(o.data, value)
	case "streq":
		return o.data == value
	}
	v, _ := strconv.Atoi(value)
	switch o.name {
	case "eq":
		return v == o.n
	case "ge":
		return v >= o.n
	case "gt":
		return v > o.n
	case "le":
		return v <= o.n
	}
	return v < o.n // lt
}
