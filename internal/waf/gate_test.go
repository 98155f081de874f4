package waf

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/corazawaf/coraza/v3"
)

// gateCorpus is a fuller request corpus the differential test adds to the
// committed one when it is present (waf-dev's tuning sample).
var gateCorpus = flag.String("gate-corpus", "/work/shared/waf-dev/requests.jsonl", "extra JSON-lines corpus for TestGateDifferential (used when the file exists)")

// TestGateDifferential is the proof for the gate and the resolver: the
// same requests through the rule set as the gateway loads it (resolved at
// load, gated per request) and through the rule set as Coraza alone runs
// it (every rule evaluated) give identical verdicts: block, status,
// detection, every matched rule in order, the discounted rules and the
// first attack rule's message. The CPU budget is set out of reach on both
// sides: it refuses a request by the time spent, which the gate changes.
// The requests are every stage of CRS's request-side regression tests (at
// paranoia 4, as TestCRSRegression runs them) and the request corpora (at
// the gateway's defaults).
func TestGateDifferential(t *testing.T) {
	t.Run("crs", func(t *testing.T) {
		differential(t, crsTestConfig(), nil, crsInputs(t))
	})
	t.Run("corpus", func(t *testing.T) {
		differential(t, Config{Budget: time.Hour}, nil, corpusInputs(t, true))
	})
}

func crsTestConfig() Config {
	return Config{Paranoia: 4, DetectionOnly: true, RuleFilesBefore: []string{"testdata/crs-test-setup.conf"}, Budget: time.Hour}
}

func crsInputs(t *testing.T) [][]byte {
	var inputs [][]byte
	for _, j := range crsTests(t) {
		for _, st := range j.tc.Stages {
			inputs = append(inputs, st.Input.raw())
		}
	}
	return inputs
}

// corpusInputs is the committed corpus and, with full (and outside short
// mode), waf-dev's sample when it is present.
func corpusInputs(t *testing.T, full bool) [][]byte {
	reqs := readCorpus(t, "testdata/corpus.jsonl")
	switch _, err := os.Stat(*gateCorpus); {
	case !full:
	case testing.Short():
		t.Logf("short mode: the committed corpus only")
	case err != nil:
		t.Logf("the committed corpus only: %v", err)
	default:
		reqs = append(reqs, readCorpus(t, *gateCorpus)...)
	}
	inputs := make([][]byte, len(reqs))
	for i := range reqs {
		inputs[i] = reqs[i].raw()
	}
	return inputs
}

// differential runs inputs through cfg's rule set as loaded for
// production and as Coraza alone runs it, both with the route exclusions
// ex (may be nil), and fails on any verdict that differs.
func differential(t *testing.T, cfg Config, ex *Exclusions, inputs [][]byte) {
	// The verdicts compared list every rule that matched: neither side
	// stops once its block is certain (TestEvalStopDifferential
	// compares stopping with not).
	cfg.FullEvaluation = true
	gated, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gated.Close()
	if st := gated.GateStats(); st.Err != nil || st.Rules == 0 || st.ResolveErr != nil || st.Resolved == 0 {
		t.Fatalf("gate or resolver not active: %+v", st)
	}
	full := cfg
	full.noGate, full.noResolve = true, true
	ref, err := New(full)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if st := ref.GateStats(); st.Rules != 0 || st.Resolved != 0 {
		t.Fatalf("reference WAF has the gate or the resolver on: %+v", st)
	}

	type outcome struct {
		skipped, blocked bool
		diff             string
	}
	out := make([]outcome, len(inputs))
	inParallel(len(inputs), func(i int) {
		a, errA, okA := verdictOf(gated, ex, inputs[i])
		b, errB, okB := verdictOf(ref, ex, inputs[i])
		if !okA || !okB {
			out[i].skipped = true
			return
		}
		out[i].blocked = b.Detected
		if !reflect.DeepEqual(decision(a), decision(b)) || fmt.Sprint(errA) != fmt.Sprint(errB) {
			out[i].diff = fmt.Sprintf("gated %+v (%v), full %+v (%v)", a, errA, b, errB)
		}
	})
	var same, skipped, detected, diffs int
	for i, o := range out {
		switch {
		case o.skipped:
			skipped++
		case o.diff != "":
			diffs++
			if diffs <= 20 {
				t.Errorf("request %d verdicts differ: %s\n%q", i, o.diff, trimInput(inputs[i]))
			}
		default:
			same++
			if o.blocked {
				detected++
			}
		}
	}
	t.Logf("%d requests: %d identical verdicts (%d detected), %d differ, %d not parsed by net/http", len(inputs), same, detected, diffs, skipped)
	if same == 0 {
		t.Fatal("no request compared")
	}
}

// decision is what of a verdict the rules decide. Variable and Matched
// are left out, and so is the variable's name where a message quotes it
// (921180's "HTTP Parameter Pollution (%{TX.1})"): they name the first
// value the first attack rule matched, and Coraza yields a collection's
// names (request headers, arguments, TX) in its map's order, so which of
// several matching values comes first differs from run to run with or
// without the gate and the resolver.
func decision(v Verdict) Verdict {
	if v.Variable != "" {
		v.Message = strings.ReplaceAll(v.Message, v.Variable, "VARIABLE")
	}
	v.Variable, v.Matched = "", ""
	return v
}

// verdictOf parses raw as net/http's server would and runs it through w.
func verdictOf(w *WAF, ex *Exclusions, raw []byte) (Verdict, error, bool) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return Verdict{}, nil, false
	}
	tx := w.Begin(ex)
	defer tx.Close()
	v, err := tx.Request(r, "127.0.0.1:4000")
	return v, err, true
}

func trimInput(b []byte) []byte {
	if len(b) > 300 {
		return b[:300]
	}
	return b
}

// A value the inspection pass derives (here a JWT cookie's decoded header)
// is inspected on every request: Coraza caches transformations by the
// address of a value's name and its position in the collection, so a
// derived value that shared its original's name string was at times given
// the original's transformations and never inspected itself (one request
// in ten here). Sent to a real listener 60 times; every answer must list
// the same rules.
func TestDerivedValuesInspectedEveryTime(t *testing.T) {
	w, err := New(Config{Paranoia: 4, DetectionOnly: true, RuleFilesBefore: []string{"testdata/crs-test-setup.conf"}, Budget: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	addr := crsServer(t, w)
	raw := []byte("POST /post HTTP/1.1\r\nHost: localhost\r\nCookie: token=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9\r\nUser-Agent: OWASP CRS test agent\r\nConnection: close\r\n\r\n")
	first := ""
	for i := range 60 {
		res := send(addr, raw)
		if res.err != nil {
			t.Fatal(res.err)
		}
		got := fmt.Sprint(res.ids)
		if i == 0 {
			first = got
			if !strings.Contains(got, "942200") {
				t.Fatalf("rules %s: the decoded JWT header was not inspected", got)
			}
		}
		if got != first {
			t.Fatalf("request %d matched %s, the first %s", i, got, first)
		}
	}
}

// A multiMatch rule's operator sees the values Coraza's multiMatch
// evaluation makes: a step that reports no change hands the value before
// it to the next step. removeWhitespace rewrites an invalid byte as U+FFFD
// and reports no change, so here only the value as sent, URL-decoded
// after it, matches ("\xff%41" → "\xffA"); the value after both steps
// ("\uFFFDA") does not. Rule 1499 reads the same chain first, without
// multiMatch, so the gate has cached the chain's values ("\uFFFD%41",
// "\uFFFDA"), which are not the ones rule 1500's operator sees.
func TestGateMultiMatchSteps(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.conf")
	const rule = `SecRule ARGS_GET "@rx \xffZ" "id:1499,phase:1,pass,t:none,t:removeWhitespace,t:urlDecodeUni,msg:'the chain without multiMatch'"` + "\n" +
		`SecRule ARGS_GET "@rx \xffA" "id:1500,phase:1,deny,status:403,t:none,t:removeWhitespace,t:urlDecodeUni,multiMatch,msg:'multiMatch steps'"` + "\n"
	if err := os.WriteFile(rules, []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{rules}}
	hit := []byte("GET /?q=%FF%2541 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	miss := []byte("GET /?q=%FF%2542 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	differential(t, cfg, nil, [][]byte{hit, miss})
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range []struct {
		raw  []byte
		want bool
	}{{hit, true}, {miss, false}} {
		v, err, _ := verdictOf(w, nil, c.raw)
		if got := slices.Contains(v.RuleIDs, 1500); got != c.want || err != nil {
			t.Errorf("%q: rule 1500 matched %v (%+v, %v), want %v", c.raw, got, v, err, c.want)
		}
	}
}

// TestGateMultiMatchLastStep: a multiMatch rule's last step is skipped
// on a value holding none of the bytes it needs to report a change
// (gateState.quietLast); on values that hold them, and whose last step's
// value alone matches, the rule still matches: an ideographic space
// (U+3000) and an ASCII one for removeWhitespace, a comment for
// replaceComments; an invalid byte (rewritten, no change reported) and
// an asterisk without a comment do not.
func TestGateMultiMatchLastStep(t *testing.T) {
	const rules = `SecRule ARGS_GET:w "@rx ab" "id:1510,phase:1,deny,status:403,t:none,t:urlDecodeUni,t:removeWhitespace,multiMatch,msg:'last step removeWhitespace'"` + "\n" +
		`SecRule ARGS_GET:c "@rx a b" "id:1511,phase:1,deny,status:403,t:none,t:urlDecodeUni,t:replaceComments,multiMatch,msg:'last step replaceComments'"` + "\n"
	queryMatches(t, rules, []int{1510, 1511}, []queryMatch{
		{"w=a%25E3%2580%2580b", 1510}, {"w=a%2520b", 1510}, {"w=a%25FFb", 0}, {"w=a-b", 0},
		{"c=a%252F*x*%252Fb", 1511}, {"c=a*b", 0}, {"c=a%252F*x", 0},
	})
}

// queryMatch is a GET's query and the one rule it must match (0: none).
type queryMatch struct {
	q    string
	want int
}

// queryMatches loads rules before CRS, holds the gate to Coraza on a GET
// of each query (differential), and checks that each matches its rule of
// ids and no other.
func queryMatches(t *testing.T, rules string, ids []int, cases []queryMatch) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "rules.conf")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{file}}
	var raws [][]byte
	for _, c := range cases {
		raws = append(raws, []byte("GET /?"+c.q+" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"))
	}
	differential(t, cfg, nil, raws)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, c := range cases {
		v, err, _ := verdictOf(w, nil, raws[i])
		for _, id := range ids {
			if got := slices.Contains(v.RuleIDs, id); got != (id == c.want) || err != nil {
				t.Errorf("%s: rule %d matched %v (%+v, %v), want %v", c.q, id, got, v, err, id == c.want)
			}
		}
	}
}

// TestGateTransformationActs: a transformation the gate does not run on a
// value holding none of the bytes it acts on (gateNode.acts) returns every
// such value as it was, reporting no change and no error, as Coraza runs
// it; one whose step the gate does not run last in a multiMatch rule on a
// value holding none of the bytes it needs to report a change
// (gateNode.changes) reports none on every such value: every string of
// one and two bytes, every rune alone and between two others, and longer
// strings.
func TestGateTransformationActs(t *testing.T) {
	register() // moatDecodeEvasions
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(`SecRule ARGS "@rx x" "id:1,phase:1,pass,t:none,t:removeWhitespace,t:replaceComments,t:removeCommentsChar,t:urlDecodeUni,t:jsDecode,t:cssDecode,t:htmlEntityDecode,t:removeNulls,t:utf8toUnicode,t:lowercase,t:compressWhitespace,t:cmdLine,t:normalizePath,t:normalizePathWin,t:moatDecodeEvasions"`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := planGate(w, nil, 1, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for a := range 256 {
		inputs = append(inputs, string([]byte{byte(a)}))
		for b := range 256 {
			inputs = append(inputs, string([]byte{byte(a), byte(b)}))
		}
	}
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		inputs = append(inputs, string(r), "a"+string(r)+"\xff")
	}
	inputs = append(inputs, "Mozilla/5.0 (X11; Linux x86_64)", "text/html,application/json", strings.Repeat("a", 700),
		"caf\u00e9", "a\u0085b", "a\u00a0b", "\u2003", "\xff%41", "tab\there", "v\vf\fr\r", "a<!--b-->c", "a/*b*/c", "a/*b", "x--y", "#z",
		"", "C:x", "a:b", "a.b", "a. ", "a .", "x/../y", "x//y", "x/", "a\\b", "%2e%2e", "a+b", "&lt;", "&#46;", "A\x00B", "0x2f", "ab0x2fcd",
		"\\u0041", "\\41 ", "Ana Maria", "leave at the door, please", "ana@example.com", "A-100", "a^b", "a;b", "a,b", "a (b", "\"x'")
	names := map[string]bool{}
	for i := range p.nodes {
		n := &p.nodes[i]
		if n.acts == nil && n.changes == nil {
			continue
		}
		name := transformationName(n.fn)
		names[name] = true
		kept, quiet := 0, 0
		for _, in := range inputs {
			b := bytesOf(in)
			if n.acts != nil && !b.meets(*n.acts) {
				kept++
				if out, changed, err := n.fn(in); out != in || changed || err != nil {
					t.Errorf("%s %q: the gate keeps it, the function gives %q, changed %v, error %v", name, in, out, changed, err)
				}
			}
			if n.changes != nil && !b.meets(*n.changes) {
				quiet++
				if _, changed, _ := n.fn(in); changed {
					t.Errorf("%s %q: the gate takes it for no change, the function reports one", name, in)
				}
			}
		}
		if n.acts != nil && kept < 90*90 || n.changes != nil && quiet < 90*90 {
			t.Errorf("%s: only %d inputs kept, %d quiet: a byte set is too wide", name, kept, quiet)
		}
	}
	for _, f := range []string{"removeWhitespace", "replaceComments", "removeCommentsChar", "urlDecodeUni", "jsDecode", "cssDecode",
		"htmlEntityDecode", "removeNulls", "utf8ToUnicode", "lowerCase", "compressWhitespace", "cmdLine", "normalisePath", "normalisePathWin"} {
		if !names[corazaTransformations+f] {
			t.Errorf("%s's bytes not known: the gate runs it on every value", f)
		}
	}
	if !names["moat/internal/waf.decodeEvasions"] {
		t.Error("moatDecodeEvasions's bytes not known: the gate runs it on every value")
	}
}

// TestGateWholeUnion: rules that read the same variables through the
// same chain, in whatever order, share the bytes of all their values
// (gateRule.whole), which decide each of them once; a count among the
// variables stays apart, and a rule whose other variables' bytes refuse
// it still matches on the count.
func TestGateWholeUnion(t *testing.T) {
	const rules = `SecRule ARGS_GET|ARGS_GET_NAMES|REQUEST_HEADERS:X-A "@pm zq" "id:1520,phase:1,pass,log,t:none,t:lowercase,msg:'whole pm'"` + "\n" +
		`SecRule REQUEST_HEADERS:X-A|ARGS_GET_NAMES|ARGS_GET "@rx jx" "id:1521,phase:1,pass,log,t:none,t:lowercase,msg:'whole rx'"` + "\n" +
		`SecRule &REQUEST_HEADERS:X-B|ARGS_GET|ARGS_GET_NAMES "@pm 0" "id:1522,phase:1,pass,log,t:none,msg:'whole and a count'"` + "\n"
	file := filepath.Join(t.TempDir(), "rules.conf")
	if err := os.WriteFile(file, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{file}}
	req := func(q, hdr string) []byte {
		return []byte("GET /?" + q + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\nX-B: 1\r\n" + hdr + "\r\n")
	}
	cases := []struct {
		raw  []byte
		want []int
	}{
		{req("a=ZQ", ""), []int{1520}},
		{req("JX=b", ""), []int{1521}},
		{req("a=b", "X-A: zq jx\r\n"), []int{1520, 1521}},
		{req("a=b", ""), nil},
		{req("a=0", ""), []int{1522}},
		{[]byte("GET /?a=b HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n"), []int{1522}},
	}
	var raws [][]byte
	for _, c := range cases {
		raws = append(raws, c.raw)
	}
	differential(t, cfg, nil, raws)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range cases {
		v, err, _ := verdictOf(w, nil, c.raw)
		for _, id := range []int{1520, 1521, 1522} {
			if got, want := slices.Contains(v.RuleIDs, id), slices.Contains(c.want, id); got != want || err != nil {
				t.Errorf("%q: rule %d matched %v, want %v (%+v, %v)", c.raw, id, got, want, v, err)
			}
		}
	}
	p, err := planGate(w.waf, []int{gate1ID}, 1, time.Hour, w.res.consts)
	if err != nil {
		t.Fatal(err)
	}
	decided := map[int]*gateRule{}
	for i, r := range p.after[gate1ID] {
		decided[r.id] = &p.after[gate1ID][i]
	}
	a, b, c := decided[1520], decided[1521], decided[1522]
	if a == nil || b == nil || c == nil {
		t.Fatalf("rules left to Coraza: 1520 %v, 1521 %v, 1522 %v", a != nil, b != nil, c != nil)
	}
	if a.whole == 0 || a.whole != b.whole || len(p.wholes[a.whole-1]) != 3 {
		t.Errorf("rules 1520 and 1521 do not share the bytes of their three variables: slots %d and %d", a.whole, b.whole)
	}
	if c.whole == 0 || c.whole == a.whole || len(p.wholes[c.whole-1]) != 2 {
		t.Errorf("rule 1522's two variables that are not counts have no slot of their own: %d", c.whole)
	}
}
