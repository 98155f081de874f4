package waf

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestEvalStopDifferential: over CRS's regression stages (blocking at
// paranoia 4, where most stages match several rules) and the request
// corpora (at the gateway's defaults), stopping once the block is
// certain (evalstop.go) gives the verdict of a full evaluation (blocked
// or not, status, message, discounted rules), and lists of the rules
// that matched a prefix of the full list, then the blocking rule: the
// rules it no longer ran are the only difference.
func TestEvalStopDifferential(t *testing.T) {
	crs := crsTestConfig()
	crs.DetectionOnly = false
	for _, c := range []struct {
		name   string
		cfg    Config
		inputs func(*testing.T) [][]byte
	}{
		{"crs", crs, crsInputs},
		{"corpus", Config{Budget: time.Hour}, func(t *testing.T) [][]byte { return corpusInputs(t, true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			stopDifferential(t, c.cfg, c.inputs(t))
		})
	}
}

func stopDifferential(t *testing.T, cfg Config, inputs [][]byte) {
	stop, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop.Close()
	if st := stop.GateStats(); st.Stops == 0 || st.StopErr != nil {
		t.Fatalf("no rule may stop: %+v", st)
	}
	full := cfg
	full.FullEvaluation = true
	ref, err := New(full)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if n := ref.GateStats().Stops; n != 0 {
		t.Fatalf("%d rules may stop with FullEvaluation", n)
	}
	diffs := make([]string, len(inputs))
	stopped := make([]bool, len(inputs))
	blocked := make([]bool, len(inputs))
	inParallel(len(inputs), func(i int) {
		a, errA, okA := verdictOf(stop, nil, inputs[i])
		b, errB, okB := verdictOf(ref, nil, inputs[i])
		if !okA || !okB {
			return
		}
		stopped[i], blocked[i] = a.StoppedAt > 0, b.Block
		if d := stopDiff(decision(a), decision(b)); d != "" || fmt.Sprint(errA) != fmt.Sprint(errB) {
			diffs[i] = fmt.Sprintf("%s: stopping %+v (%v), full %+v (%v)", d, a, errA, b, errB)
		}
	})
	var n, nStopped, nBlocked int
	for i, d := range diffs {
		if stopped[i] {
			nStopped++
		}
		if blocked[i] {
			nBlocked++
		}
		if d != "" {
			if n++; n <= 20 {
				t.Errorf("request %d: %s\n%q", i, d, trimInput(inputs[i]))
			}
		}
	}
	t.Logf("%d requests, %d blocked, %d of them stopped early, %d differ", len(inputs), nBlocked, nStopped, n)
	if nStopped == 0 {
		t.Fatal("no request stopped early")
	}
}

// stopDiff says how a verdict given with the stop (a) departs from the
// full evaluation's (b), or "".
func stopDiff(a, b Verdict) string {
	if a.StoppedAt > 0 && !a.Block {
		return "stopped without a block"
	}
	if a.StoppedAt == 0 {
		if !reflect.DeepEqual(a, b) {
			return "verdicts differ without a stop"
		}
		return ""
	}
	if !a.Block || !b.Block || a.Status != b.Status || a.Detected != b.Detected || a.Message != b.Message {
		return "decisions differ"
	}
	if len(a.RuleIDs) == 0 || len(b.RuleIDs) == 0 || a.RuleIDs[len(a.RuleIDs)-1] != b.RuleIDs[len(b.RuleIDs)-1] {
		return "blocking rules differ"
	}
	if head := a.RuleIDs[:len(a.RuleIDs)-1]; len(head) >= len(b.RuleIDs) || !slices.Equal(head, b.RuleIDs[:len(head)]) {
		return "matched rules are not a prefix of the full evaluation's"
	}
	if len(a.Discounted) > len(b.Discounted) || !slices.Equal(a.Discounted, b.Discounted[:len(a.Discounted)]) {
		return "discounted rules are not a prefix of the full evaluation's"
	}
	a.RuleIDs, b.RuleIDs, a.Discounted, b.Discounted, a.StoppedAt = nil, nil, nil, nil, 0
	if !reflect.DeepEqual(a, b) {
		return "verdicts differ"
	}
	return ""
}

// TestEvalStopAttack: the gateway benchmark's attack stops at moat's
// SQL rule, whose match alone reaches the threshold, and is blocked as a
// full evaluation blocks it; the verdict says where it stopped.
func TestEvalStopAttack(t *testing.T) {
	for _, full := range []bool{false, true} {
		w, err := New(Config{Budget: time.Hour, FullEvaluation: full})
		if err != nil {
			t.Fatal(err)
		}
		v := attackVerdict(t, w)
		w.Close()
		if !v.Block || v.Status != 403 || !slices.Contains(v.RuleIDs, 90040) || v.RuleIDs[len(v.RuleIDs)-1] != 949110 {
			t.Fatalf("full %v: %+v", full, v)
		}
		if want := []int{90040, 949110}; !full && (v.StoppedAt != 5 || !slices.Equal(v.RuleIDs, want)) {
			t.Errorf("stopped at %d, rules %v; want 5, %v", v.StoppedAt, v.RuleIDs, want)
		}
		if full && (v.StoppedAt != 0 || len(v.RuleIDs) <= 2) {
			t.Errorf("full evaluation stopped at %d, rules %v", v.StoppedAt, v.RuleIDs)
		}
	}
	// DetectionOnly evaluates everything.
	w, err := New(Config{Budget: time.Hour, DetectionOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n := w.GateStats().Stops; n != 0 {
		t.Errorf("%d rules may stop in DetectionOnly", n)
	}
}

func attackVerdict(t *testing.T, w *WAF) Verdict {
	t.Helper()
	r := httptest.NewRequest("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--", nil)
	r.Header.Set("Host", "localhost")
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(r, "127.0.0.1:4000")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEvalStopNotProved: a rule set in which a rule after the attack's
// first match could still take the block back is not stopped there: a
// later SQL rule (942360, the attack's last match) that resets the
// blocking level's score, or removes the blocking rule. The full
// evaluation lets the request through, and so does the default.
func TestEvalStopNotProved(t *testing.T) {
	for _, update := range []string{
		"setvar:tx.inbound_anomaly_score_pl1=0",
		"ctl:ruleRemoveById=949110",
	} {
		var got [2]Verdict
		for i, full := range []bool{false, true} {
			w, err := New(Config{Budget: time.Hour, Directives: `SecRuleUpdateActionById 942360 "` + update + `"`, FullEvaluation: full})
			if err != nil {
				t.Fatal(err)
			}
			got[i] = attackVerdict(t, w)
			w.Close()
		}
		if got[1].Block || !slices.Contains(got[1].RuleIDs, 942360) {
			t.Fatalf("%s: the full evaluation gave %+v, want 942360 matched and no block", update, got[1])
		}
		if !reflect.DeepEqual(got[0], got[1]) {
			t.Errorf("%s: %+v, full evaluation %+v", update, got[0], got[1])
		}
	}
}

// TestEvalStopDiscounted: a match the context pass takes back does not
// count towards a stop. At a threshold of 10, 942190's match on a
// search for how to use "union select" (judged harmless, its 5 taken
// back) and 943100's on "http-equiv set-cookie" (5, which stands) add
// up to 10 before the pass, 5 after it: the request is not blocked, and
// the evaluation must not stop at 943100.
func TestEvalStopDiscounted(t *testing.T) {
	const target = "/search?q=union+select+%E5%85%B3%E9%94%AE%E5%AD%97%E6%80%8E%E4%B9%88%E7%94%A8&a=http-equiv+set-cookie"
	var got [2]Verdict
	for i, full := range []bool{false, true} {
		w, err := New(Config{Budget: time.Hour, InboundThreshold: 10, FullEvaluation: full})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("Host", "localhost")
		r.Header.Set("User-Agent", "Mozilla/5.0")
		r.Header.Set("Accept", "*/*")
		got[i] = judgeRequest(t, w, nil, r)
		w.Close()
	}
	if got[1].Block || !slices.Equal(got[1].RuleIDs, []int{943100}) || !slices.Equal(got[1].Discounted, []int{942190}) {
		t.Fatalf("full evaluation %+v, want 943100 matched, 942190 discounted, no block", got[1])
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Errorf("%+v, full evaluation %+v", got[0], got[1])
	}
}
