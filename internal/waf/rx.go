package waf

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	re2 "github.com/wasilibs/go-re2"
	"rsc.io/binaryregexp"
)

// rxOp is moat's @rx operator, in place of Coraza's. It answers exactly as
// Coraza's does (Go's regexp with "(?sm)" in front of the pattern, the
// binary engine for patterns that name invalid UTF-8), only faster:
//
//   - a necessity test (see necessity) rejects most inputs before any
//     engine runs;
//   - inputs of re2MinLen bytes or more go to RE2, whose DFA is linear in
//     the input where Go's engine falls back to a slow NFA on long inputs
//     (and is faster from a few bytes on); shorter ones stay with Go's.
//
// RE2 and Go's regexp share one syntax and leftmost-first semantics, so
// they agree on matches and submatches of valid UTF-8. They differ on
// invalid UTF-8 (Go reads each bad byte as U+FFFD, RE2 stops), so such
// inputs stay with Go's engine. A pattern RE2 refuses, or on which the two
// engines disagree over probeInputs, runs on Go's engine alone;
// WAF.RegexStats counts both.
//
// corazawaf/coraza-wasilibs registers an RE2 @rx the same way; it is not
// served to this project, so the glue lives here, with the necessity test
// and the per-input choice of engine.
type rxOp struct {
	std  *regexp.Regexp
	bin  *binaryregexp.Regexp // instead of std for patterns over bytes
	re2  *re2.Regexp          // nil: Go's engine only
	need *necessity
	// whole: the pattern's leftmost match is every value whole (^.*$
	// with (?s)), so no engine is run to find it.
	whole bool
}

// re2MinLen is the input length from which RE2 beats Go's engine on CRS's
// patterns: BenchmarkRxEngines has RE2 ahead from 4 bytes on (the
// DFA is ready after a pattern's first few inputs; Go's backtracker and
// NFA pay per byte and per state).
const re2MinLen = 4

// RegexStats counts how the rule set's @rx patterns run.
type RegexStats struct {
	// Patterns is the number of distinct @rx patterns.
	Patterns int
	// RE2 run on RE2 for long inputs.
	RE2 int
	// RE2Refused could not be compiled by RE2 and run on Go's engine.
	RE2Refused int
	// Disagreed compiled on RE2 but answered a probe differently from Go's
	// engine, so they run on Go's engine.
	Disagreed int
	// Binary match bytes rather than UTF-8 text (Coraza's rule for
	// patterns that name invalid UTF-8) and run on the binary engine.
	Binary int
	// Prefiltered have a literal necessity test.
	Prefiltered int
}

func statsOf(patterns map[string]*rxCompiled) RegexStats {
	st := RegexStats{Patterns: len(patterns)}
	for _, c := range patterns {
		switch c.kind {
		case "re2":
			st.RE2++
		case "refused":
			st.RE2Refused++
		case "disagreed":
			st.Disagreed++
		case "binary":
			st.Binary++
		}
		if len(c.op.need.lits) > 0 {
			st.Prefiltered++
		}
	}
	return st
}

// rxCompiled is what one pattern compiles to, shared by every rule and
// WAF that uses the pattern.
type rxCompiled struct {
	op   *rxOp
	kind string // "re2", "refused", "disagreed", "binary"
}

var (
	rxCache sync.Map // pattern → *rxCompiled
	// rxCollect, when set, receives each pattern a WAF being built uses
	// (see New, which holds buildMu while it is set).
	rxCollect atomic.Pointer[map[string]*rxCompiled]
	buildMu   sync.Mutex
)

func newRxOp(opts plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	pattern := opts.Arguments
	c, err := compileRx(pattern)
	if err != nil {
		return nil, err
	}
	if m := rxCollect.Load(); m != nil {
		(*m)[pattern] = c
	}
	return c.op, nil
}

func compileRx(pattern string) (*rxCompiled, error) {
	if c, ok := rxCache.Load(pattern); ok {
		return c.(*rxCompiled), nil
	}
	var c *rxCompiled
	if namesInvalidUTF8(pattern) {
		// As Coraza: such patterns match bytes, without "(?sm)".
		re, err := binaryregexp.Compile(pattern)
		if err != nil {
			return nil, err
		}
		c = &rxCompiled{op: &rxOp{bin: re, need: newBinaryNecessity(pattern)}, kind: "binary"}
	} else {
		expr := "(?sm)" + pattern
		std, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		tree, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			return nil, err
		}
		op := &rxOp{std: std, need: newNecessity(tree), whole: matchesWhole(tree)}
		c = &rxCompiled{op: op, kind: "refused"}
		if r, err := re2.Compile(expr); err == nil {
			c.kind = "disagreed"
			if agree(std, r, probeInputs(op.need)) {
				op.re2 = r
				c.kind = "re2"
			}
		}
	}
	got, _ := rxCache.LoadOrStore(pattern, c)
	return got.(*rxCompiled), nil
}

func (o *rxOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if !o.need.mayMatch(value) {
		return false
	}
	if !tx.Capturing() {
		return o.match(value)
	}
	var m []int
	switch {
	case o.bin != nil:
		m = o.bin.FindStringSubmatchIndex(value)
	case o.re2 != nil && len(value) >= re2MinLen && utf8.ValidString(value):
		m = o.re2.FindStringSubmatchIndex(value)
	default:
		m = o.std.FindStringSubmatchIndex(value)
	}
	if m == nil {
		return false
	}
	// As Coraza: TX.0 to TX.8 hold the match and its first groups; a
	// group that did not take part is empty.
	for i := 0; i < len(m)/2 && i < 9; i++ {
		if m[2*i] >= 0 {
			tx.CaptureField(i, value[m[2*i]:m[2*i+1]])
		} else {
			tx.CaptureField(i, "")
		}
	}
	return true
}

// match runs the pattern on value, past the necessity test, without
// capturing.
func (o *rxOp) match(value string) bool {
	switch {
	case o.whole:
		return true
	case o.bin != nil:
		return o.bin.MatchString(value)
	case o.re2 != nil && len(value) >= re2MinLen && utf8.ValidString(value):
		return o.re2.MatchString(value)
	}
	return o.std.MatchString(value)
}

// matchesWhole reports whether re's leftmost-first match is every input
// whole: a start of line or text, any run of any character (dot
// matching newlines), greedy, and an end of line or text. The match
// starts at 0, where both starts hold; the greedy run takes the input to
// its end, where both ends hold, and is the first choice tried.
func matchesWhole(re *syntax.Regexp) bool {
	if re.Op != syntax.OpConcat || len(re.Sub) != 3 {
		return false
	}
	start, run, end := re.Sub[0], re.Sub[1], re.Sub[2]
	return (start.Op == syntax.OpBeginLine || start.Op == syntax.OpBeginText) &&
		run.Op == syntax.OpStar && run.Flags&syntax.NonGreedy == 0 && run.Sub[0].Op == syntax.OpAnyChar &&
		(end.Op == syntax.OpEndLine || end.Op == syntax.OpEndText)
}

// agree reports whether both engines give the same match and submatches
// for every input.
func agree(std *regexp.Regexp, r *re2.Regexp, inputs []string) bool {
	for _, in := range inputs {
		a, b := std.FindStringSubmatchIndex(in), r.FindStringSubmatchIndex(in)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return false
		}
	}
	return true
}

// probeInputs are the inputs agree checks a pattern on: its own literals
// in several cases and surroundings, so that the probes reach past the
// necessity test into the engines.
func probeInputs(n *necessity) []string {
	in := []string{"", "a", "\n", " \t\r\n", "0", "select 1 from t", "<script>alert(1)</script>", "../../etc/passwd", "é ü 日本"}
	for i, l := range n.lits {
		if i == 8 {
			break
		}
		in = append(in, l, "x"+l+"x", " "+l+"(", "\n"+l+"\n", l+" "+l, strconv.Quote(l))
	}
	return in
}

// namesInvalidUTF8 reports whether the pattern, with its \xHH and \x{HH}
// escapes read as bytes, is not valid UTF-8: Coraza runs such patterns on a
// byte-oriented engine, and moat must decide as Coraza does to answer the
// same. Coraza's reading is followed to the letter: a backslash before
// anything but "x" stays and the next byte is read on its own, and the
// last three bytes are never read as an escape.
func namesInvalidUTF8(expr string) bool {
	b := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+3 >= len(expr) {
			b = append(b, expr[i:]...)
			break
		}
		if expr[i+1] != 'x' {
			b = append(b, c)
			continue
		}
		hex, skip := expr[i+2:i+4], 3
		if expr[i+2] == '{' && len(expr)-i >= 6 {
			if end := strings.IndexByte(expr[i:], '}'); end >= 0 {
				// Only the first two digits count, as in \xHH.
				hex, skip = expr[i+3:i+end], end
				hex = hex[:min(len(hex), 2)]
			}
		}
		v, err := strconv.ParseUint(hex, 16, 8)
		if err != nil || len(hex) != 2 {
			b = append(b, c)
			continue
		}
		b = append(b, byte(v))
		i += skip
	}
	return !utf8.Valid(b)
}
