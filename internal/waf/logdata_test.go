package waf

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLogDataDetection: the committed corpus and waf-dev's sample give
// the same verdicts (messages included), the same matched rules, values
// and messages with the rules' logdata dropped (logdata.go) as with
// every rule keeping it.
func TestLogDataDetection(t *testing.T) {
	dropped, err := New(Config{Budget: time.Hour, FullEvaluation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dropped.Close()
	kept, err := New(Config{Budget: time.Hour, FullEvaluation: true, keepLogData: true})
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if st := dropped.GateStats(); st.LogData < 100 || st.LogDataErr != nil {
		t.Fatalf("logdata dropped from %d rules (%v), want most of CRS's", st.LogData, st.LogDataErr)
	}
	if st := kept.GateStats(); st.LogData != 0 {
		t.Fatalf("logdata dropped from %d rules of the reference", st.LogData)
	}
	sameOutcomes(t, dropped, kept)
}

// sameOutcomes compares what a and b make of the committed corpus and
// waf-dev's sample: verdicts (messages included), matched rules, values
// and messages. (The verdict's variable and value are compared among the
// matched values: which of a rule's values Coraza hands out first
// follows its maps' order.)
func sameOutcomes(t *testing.T, a, b *WAF) {
	t.Helper()
	sameOutcomesBut(t, a, b, nil)
}

// sameOutcomesBut is sameOutcomes with the matches of the rules that
// skip names (nolog rules one of a and b may not run) left out.
func sameOutcomesBut(t *testing.T, a, b *WAF, skip func(id int) bool) {
	t.Helper()
	inputs := corpusInputs(t, true)
	diffs := make([]string, len(inputs))
	inParallel(len(inputs), func(i int) {
		ra, rb := rawRequest(t, inputs[i]), rawRequest(t, inputs[i])
		if ra == nil {
			return
		}
		va, ma, ea := outcomeWithMessages(a, ra, skip)
		vb, mb, eb := outcomeWithMessages(b, rb, skip)
		if !reflect.DeepEqual(va, vb) || !slices.Equal(ma, mb) || fmt.Sprint(ea) != fmt.Sprint(eb) {
			diffs[i] = fmt.Sprintf("%+v %q (%v), reference %+v %q (%v)", va, ma, ea, vb, mb, eb)
		}
	})
	n := 0
	for i, d := range diffs {
		if d != "" {
			if n++; n <= 20 {
				t.Errorf("request %d: %s\n%q", i, d, trimInput(inputs[i]))
			}
		}
	}
	t.Logf("%d requests, %d differ", len(inputs), n)
}

// outcomeWithMessages is outcomeOf with each matched rule's and value's
// message, but those of the rules skip names (nil: none).
func outcomeWithMessages(w *WAF, r *http.Request, skip func(id int) bool) (Verdict, []string, error) {
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(r, "127.0.0.1:4000")
	var out []string
	for _, mr := range tx.tx.MatchedRules() {
		if skip != nil && skip(mr.Rule().ID()) {
			continue
		}
		var mds []string
		for _, md := range mr.MatchedDatas() {
			mds = append(mds, fmt.Sprintf("%s:%s=%q %q", md.Variable().Name(), md.Key(), md.Value(), md.Message()))
		}
		slices.Sort(mds)
		out = append(out, fmt.Sprintf("%d %q %s", mr.Rule().ID(), mr.Message(), strings.Join(mds, " ")))
	}
	return decision(v), out, err
}

// TestLogDataBodyRefusal: a body refused as one the WAF cannot take
// apart still says why, from its rule's logged data.
func TestLogDataBodyRefusal(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, _ := http.NewRequest("POST", "http://localhost/api", strings.NewReader(`{"a": [1, 2`))
	r.Header.Set("Content-Type", "application/json")
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(r, "127.0.0.1:4000")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Block || !slices.ContainsFunc(v.RuleIDs, bodyRefusal) || !strings.Contains(v.Message, "(") {
		t.Errorf("broken JSON: %+v, want a body refusal saying why", v)
	}
}

// TestLogDataReadByRule: a rule set in which a rule expands RULE's
// logdata, or reads the RULE collection, keeps every rule's logdata.
func TestLogDataReadByRule(t *testing.T) {
	for _, d := range []string{
		`SecRule REQUEST_URI "@streq /x" "id:1000001,phase:2,pass,nolog,logdata:'%{MATCHED_VAR}',setvar:'tx.seen=%{rule.logdata}'"`,
		`SecRule RULE:logdata "@contains x" "id:1000002,phase:2,pass,nolog"`,
	} {
		w, err := New(Config{Directives: d + "\n"})
		if err != nil {
			t.Fatal(err)
		}
		if st := w.GateStats(); st.LogData != 0 || st.LogDataErr != nil {
			t.Errorf("%s: logdata dropped from %d rules (%v), want none", d, st.LogData, st.LogDataErr)
		}
		w.Close()
	}
}
