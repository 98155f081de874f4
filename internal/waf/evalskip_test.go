package waf

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corazawaf/coraza/v3"
)

// TestEvalSkipDetection: the committed corpus and waf-dev's sample give
// the same verdicts, matched rules, values and messages with CRS's
// blocking evaluation decided by moatEval (evalskip.go) as run by Coraza,
// but for the matches of the sums (nolog rules, which no verdict shows)
// that moatEval removes.
func TestEvalSkipDetection(t *testing.T) {
	on, err := New(Config{Budget: time.Hour, FullEvaluation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer on.Close()
	ref, err := New(Config{Budget: time.Hour, FullEvaluation: true, noEvalSkip: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if n := on.GateStats().Evals; n != 2 {
		t.Fatalf("%d evaluations planned, want phase 1's and phase 2's", n)
	}
	if n := ref.GateStats().Evals; n != 0 {
		t.Fatalf("%d evaluations planned in the reference", n)
	}
	rules, err := corazaRules(on.waf)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[int]bool{}
	for i := range rules.Len() {
		if h := evalHolderOf(rules.Index(i)); h != nil && h.p.Load() != nil {
			e := h.p.Load()
			for _, id := range e.ids[:len(e.sums)] {
				sums[id] = true
			}
		}
	}
	if len(sums) != 2 {
		t.Fatalf("sums %v, want 949052 and 949059", sums)
	}
	sameOutcomesBut(t, on, ref, func(id int) bool { return sums[id] })
}

// evalRules builds directives with moat's plugins and plans their
// moatEval rules; it returns the WAF and how many were planned.
func evalRules(t *testing.T, directives string) (coraza.WAF, int) {
	t.Helper()
	register()
	w, _, _, err := build(directives)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := corazaRules(w)
	if err != nil {
		t.Fatal(err)
	}
	n, err := planEvals(rules)
	if err != nil {
		t.Fatal(err)
	}
	return w, n
}

// The rules of the run-time test: X-Score's digits are a score (rule 1),
// rule 3 sums it into tx.total, rule 4 blocks at 5.
const evalTestRules = `SecAction "id:10,phase:1,pass,nolog,setvar:tx.total=0,setvar:tx.s=0"
SecRule REQUEST_HEADERS:X-Score "@rx ^(\d+)$" "id:1,phase:1,pass,nolog,capture,setvar:tx.s=%{tx.1}"
SecRule REQUEST_METHOD "@moatEval" "id:2,phase:1,pass,nolog"
SecMarker "SUMS"
SecAction "id:3,phase:1,pass,nolog,setvar:tx.total=+%{tx.s}"
SecRule TX:TOTAL "@ge 5" "id:4,phase:1,deny,status:403,log,msg:'over'"
`

// TestEvalSkipRuns: a request that scores nothing has the sum and the
// blocking rule removed (rule 3, which would match, is not among the
// matches); one that scores is blocked as without moatEval, and one
// that scores below the threshold has its sum run. The second fails when
// the sums' effect is not checked (noop true), the third when the
// blocking rule's answer is not.
func TestEvalSkipRuns(t *testing.T) {
	w, n := evalRules(t, evalTestRules)
	if n != 1 {
		t.Fatalf("%d evaluations planned, want 1", n)
	}
	for _, c := range []struct {
		score         string
		block, summed bool
	}{{"", false, false}, {"0", false, false}, {"7", true, true}, {"3", false, true}} {
		tx := w.NewTransaction()
		if c.score != "" {
			tx.AddRequestHeader("X-Score", c.score)
		}
		tx.ProcessURI("/", "GET", "HTTP/1.1")
		it := tx.ProcessRequestHeaders()
		var ids []int
		for _, mr := range tx.MatchedRules() {
			ids = append(ids, mr.Rule().ID())
		}
		if (it != nil) != c.block || slices.Contains(ids, 3) != c.summed {
			t.Errorf("X-Score %q: interruption %v, matched %v; want blocked %v, rule 3 run %v", c.score, it, ids, c.block, c.summed)
		}
		tx.Close()
	}
}

// TestEvalSkipBlockDecided: with the threshold at 0, the sum of nothing
// (a no-op) reaches it: the blocking rule must run. Fails when the
// blocking rule's answer is not checked.
func TestEvalSkipBlockDecided(t *testing.T) {
	rules := strings.Replace(evalTestRules, `"@ge 5"`, `"@ge 0"`, 1)
	w, n := evalRules(t, rules)
	if n != 1 {
		t.Fatalf("%d evaluations planned, want 1", n)
	}
	tx := w.NewTransaction()
	defer tx.Close()
	tx.ProcessURI("/", "GET", "HTTP/1.1")
	if it := tx.ProcessRequestHeaders(); it == nil {
		t.Error("a total of 0 at a threshold of 0 passed")
	}
}

// TestEvalSkipPlan: a rule set where something between moatEval and the
// blocking rule may change TX, or where the rules are not sums and a
// test of them, gets no plan. Fails when the checks are skipped.
func TestEvalSkipPlan(t *testing.T) {
	head := `SecAction "id:10,phase:1,pass,nolog,setvar:tx.total=0,setvar:tx.s=0"
SecRule REQUEST_METHOD "@moatEval" "id:2,phase:1,pass,nolog"
`
	sum := `SecAction "id:3,phase:1,pass,nolog,setvar:tx.total=+%{tx.s}"` + "\n"
	block := `SecRule TX:TOTAL "@ge 5" "id:4,phase:1,deny,status:403,log"` + "\n"
	for _, c := range []struct {
		name, rules string
		want        int
	}{
		{"laid out", head + sum + block, 1},
		{"a quiet rule between", head + sum + `SecRule REQUEST_URI "@contains x" "id:5,phase:1,deny,status:403,log"` + "\n" + block, 1},
		{"a rule between writes the score", head + sum + `SecRule REQUEST_URI "@contains x" "id:5,phase:1,pass,nolog,setvar:tx.s=9"` + "\n" + block, 0},
		{"a rule between writes the total", head + sum + `SecRule REQUEST_URI "@contains x" "id:5,phase:1,pass,nolog,setvar:tx.total=9"` + "\n" + block, 0},
		{"a rule between with a ctl", head + sum + `SecRule REQUEST_URI "@contains x" "id:5,phase:1,pass,nolog,ctl:ruleRemoveById=4"` + "\n" + block, 0},
		{"a rule between with moat's operator", head + sum + `SecRule ARGS "@moatSQLi" "id:5,phase:1,pass,nolog"` + "\n" + block, 0},
		{"a logged sum", head + `SecAction "id:3,phase:1,pass,log,setvar:tx.total=+%{tx.s}"` + "\n" + block, 0},
		{"a sum reading what it writes", head + `SecAction "id:3,phase:1,pass,nolog,setvar:tx.total=+%{tx.total}"` + "\n" + block, 0},
		{"a threshold the sum writes", head + `SecAction "id:3,phase:1,pass,nolog,setvar:tx.total=+%{tx.s},setvar:tx.limit=1"` + "\n" + `SecRule TX:TOTAL "@ge %{tx.limit}" "id:4,phase:1,deny,status:403,log"` + "\n", 0},
		{"a transformed test", head + sum + `SecRule TX:TOTAL "@ge 5" "id:4,phase:1,deny,status:403,log,t:length"` + "\n", 0},
		{"no sums", head + block, 0},
	} {
		if _, n := evalRules(t, c.rules); n != c.want {
			t.Errorf("%s: %d planned, want %d", c.name, n, c.want)
		}
	}
}
