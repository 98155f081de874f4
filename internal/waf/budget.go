package waf

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// The WAF's work on one request is bounded three ways, all failing
// closed:
//
//   - argument limits, checked before any attack rule runs (rule 90003):
//     no value longer than MaxArgLength, no name longer than
//     MaxArgNameLength, no more than MaxTotalArgLength bytes of names and
//     values in all, no more than MaxArgs arguments from any one source
//     (Coraza's SecArgumentsLimit, rules 200004 and 200005). The attack
//     rules are linear in what they read, so these bound their work; a
//     request past a limit is refused with 413;
//   - decoding and expansion are linear in the request and capped (see
//     normalize, flattenJSON, the body processor, maxDerived);
//   - a CPU budget for phase 2, checked before each of CRS's rule files
//     (rules 90100 onward): a request still being inspected when it has
//     used it up is refused with 503, whatever it holds. It is CPU time,
//     not elapsed time (see threadCPU), so a busy machine does not refuse
//     requests that a quiet one inspects; it catches what the limits do
//     not foresee.

// Defaults for the limits.
const (
	DefaultMaxArgLength      = 256 << 10
	DefaultMaxArgNameLength  = 8 << 10
	DefaultMaxTotalArgLength = 1 << 20
	DefaultMaxArgs           = 4096
	DefaultBudget            = time.Second
)

// argLimitsOp is the moatArgLimits operator: it matches when ARGS_GET or
// ARGS_POST break the limits CRS keeps in TX:arg_length,
// TX:arg_name_length and TX:total_arg_length (set from Config), and
// captures which limit in TX:0. It reads the transaction, not the value
// it is given.
type argLimitsOp struct{}

func newArgLimitsOp(plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	return argLimitsOp{}, nil
}

func (argLimitsOp) Evaluate(tx plugintypes.TransactionState, _ string) bool {
	if tx == nil {
		return false
	}
	v := tx.Variables()
	limit := func(name string) int {
		vals := v.TX().Get(name)
		if len(vals) == 0 {
			return 0
		}
		n, _ := strconv.Atoi(vals[0])
		return n
	}
	argLen, nameLen, total := limit(txArgLength), limit(txArgNameLength), limit(txTotalArgLength)
	sum := 0
	for _, m := range []collection.Map{v.ArgsGet(), v.ArgsPost()} {
		for _, md := range m.FindAll() {
			k, val := md.Key(), md.Value()
			sum += len(k) + len(val)
			var why string
			switch {
			case argLen > 0 && len(val) > argLen:
				why = fmt.Sprintf("argument %.64q is %d bytes, over arg_length %d", k, len(val), argLen)
			case nameLen > 0 && len(k) > nameLen:
				why = fmt.Sprintf("an argument name is %d bytes, over arg_name_length %d", len(k), nameLen)
			case total > 0 && sum > total:
				why = fmt.Sprintf("arguments exceed total_arg_length %d", total)
			}
			if why != "" {
				if tx.Capturing() {
					tx.CaptureField(0, why)
				}
				return true
			}
		}
	}
	return false
}

// budgetOp is the moatOverBudget operator: its value is TX:moat_start
// (the thread's CPU clock when phase 2 began, set by the inspection
// pass), its argument the budget in milliseconds of CPU; it matches once
// the budget is spent.
type budgetOp struct{ budget time.Duration }

func newBudgetOp(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	ms, err := strconv.Atoi(strings.TrimSpace(opts.Arguments))
	if err != nil || ms <= 0 {
		return nil, fmt.Errorf("waf: moatOverBudget %q: want a positive number of milliseconds", opts.Arguments)
	}
	return budgetOp{budget: time.Duration(ms) * time.Millisecond}, nil
}

func (o budgetOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	start, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return false
	}
	return threadCPU()-time.Duration(start) >= o.budget
}

// crsIncludes returns the SecLang that includes CRS's rule files one by
// one, in CRS's order, with a budget checkpoint before each request-side
// file and, before the blocking evaluation, what moat runs on the
// complete set of matches (extra). It leaves out CRS's common exceptions
// (REQUEST-905): they turn every CRS rule off for Apache's own "internal
// dummy connection", told by a loopback client address, "GET /" and a
// User-Agent ending in "(internal dummy connection)". moat is not Apache;
// a client chooses the last two and, behind a proxy on the gateway's
// host, has the first, and would take CRS's verdict off its request.
func crsIncludes(budget time.Duration, extra string) (string, error) {
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("waf: list CRS rule files: %v", err)
	}
	ms := max(1, budget.Milliseconds())
	var b strings.Builder
	id := 90100
	for _, f := range files {
		base := path.Base(f)
		if strings.HasPrefix(base, "REQUEST-905") {
			continue
		}
		if strings.HasPrefix(base, "REQUEST-949") {
			b.WriteString(extra)
		}
		if strings.HasPrefix(base, "REQUEST-9") && !strings.HasPrefix(base, "REQUEST-901") {
			fmt.Fprintf(&b, budgetRule, id, ms)
			id++
		}
		fmt.Fprintf(&b, "Include %s\n", f)
	}
	return b.String(), nil
}

const budgetRule = `SecRule TX:moat_start "@moatOverBudget %[2]d" "id:%[1]d,phase:2,deny,status:503,log,t:none,msg:'WAF inspection budget spent',logdata:'budget %[2]d ms',tag:'moat',severity:'CRITICAL'"
`
