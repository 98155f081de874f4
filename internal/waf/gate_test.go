package waf

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gateCorpus is a fuller request corpus the differential test adds to the
// committed one when it is present (waf-dev's tuning sample).
var gateCorpus = flag.String("gate-corpus", "/work/shared/waf-dev/requests.jsonl", "extra JSON-lines corpus for TestGateDifferential (used when the file exists)")

// TestGateDifferential is the gate's proof: the same requests through the
// rule set with the gate and without it (every rule evaluated, as Coraza
// alone does) give identical verdicts: block, status, detection, every
// matched rule in order, the discounted rules and the first attack rule's
// message. The CPU budget is set out of reach on both sides: it refuses
// a request by the time spent, which the gate changes. The requests are every stage of CRS's request-side
// regression tests (at paranoia 4, as TestCRSRegression runs them) and the
// request corpora (at the gateway's defaults).
func TestGateDifferential(t *testing.T) {
	t.Run("crs", func(t *testing.T) {
		cfg := Config{Paranoia: 4, DetectionOnly: true, RuleFilesBefore: []string{"testdata/crs-test-setup.conf"}, Budget: time.Hour}
		var inputs [][]byte
		for _, j := range crsTests(t) {
			for _, st := range j.tc.Stages {
				inputs = append(inputs, st.Input.raw())
			}
		}
		differential(t, cfg, inputs)
	})
	t.Run("corpus", func(t *testing.T) {
		reqs := readCorpus(t, "testdata/corpus.jsonl")
		switch _, err := os.Stat(*gateCorpus); {
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
		differential(t, Config{Budget: time.Hour}, inputs)
	})
}

// differential runs inputs through cfg's rule set with and without the
// gate and fails on any verdict that differs.
func differential(t *testing.T, cfg Config, inputs [][]byte) {
	gated, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer gated.Close()
	if st := gated.GateStats(); st.Err != nil || st.Rules == 0 {
		t.Fatalf("gate not active: %+v", st)
	}
	full := cfg
	full.noGate = true
	ref, err := New(full)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if ref.GateStats().Rules != 0 {
		t.Fatal("reference WAF has the gate on")
	}

	type outcome struct {
		skipped, blocked bool
		diff             string
	}
	out := make([]outcome, len(inputs))
	inParallel(len(inputs), func(i int) {
		a, errA, okA := verdictOf(gated, inputs[i])
		b, errB, okB := verdictOf(ref, inputs[i])
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
// are left out: they name the first value the first attack rule matched,
// and Coraza yields a collection's names (request headers, arguments) in
// its map's order, so which of several matching values comes first
// differs from run to run with or without the gate.
func decision(v Verdict) Verdict {
	v.Variable, v.Matched = "", ""
	return v
}

// verdictOf parses raw as net/http's server would and runs it through w.
func verdictOf(w *WAF, raw []byte) (Verdict, error, bool) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return Verdict{}, nil, false
	}
	tx := w.Begin(nil)
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
