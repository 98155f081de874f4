package waf

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestConstsReadDetection: the committed corpus and waf-dev's sample give
// the same verdicts, matched rules, values and messages with only the TX
// constants something reads set (txreads.go) as with all of them.
func TestConstsReadDetection(t *testing.T) {
	read, err := New(Config{Budget: time.Hour, FullEvaluation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	all, err := New(Config{Budget: time.Hour, FullEvaluation: true, keepConsts: true})
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	s, ref := read.GateStats(), all.GateStats()
	if s.ConstsRead >= s.Consts || ref.ConstsRead != ref.Consts {
		t.Fatalf("%d of %d constants set, reference %d of %d", s.ConstsRead, s.Consts, ref.ConstsRead, ref.Consts)
	}
	t.Logf("%d of %d constants set: %v", s.ConstsRead, s.Consts, setConsts(read))
	sameOutcomes(t, read, all)
}

// setConsts is the TX keys w's phase-1 gate sets.
func setConsts(w *WAF) []string {
	var out []string
	for _, c := range w.res.set {
		out = append(out, c.key)
	}
	slices.Sort(out)
	return out
}

// TestConstsRead: a folded TX constant read only through an operator's
// macro, a TX key regex, a TX key, or a msg macro is still set, and one
// nothing reads is not. Each request below passes, or loses its message,
// when its read is missed.
func TestConstsRead(t *testing.T) {
	before := filepath.Join(t.TempDir(), "before.conf")
	rules := `SecAction "id:1000201,phase:1,pass,nolog,setvar:tx.probe_op=evil,setvar:tx.probe_rx=evil,setvar:tx.probe_key=evil,setvar:tx.probe_msg=evil,setvar:tx.probe_unread=evil"
SecRule ARGS:op "@streq %{tx.probe_op}" "id:1000202,phase:2,deny,status:403,log,msg:'op'"
SecRule ARGS:rx "@streq go" "id:1000203,phase:2,deny,status:403,log,msg:'rx',chain"
  SecRule TX:/^probe_r/ "@streq evil" ""
SecRule ARGS:key "@streq go" "id:1000204,phase:2,deny,status:403,log,msg:'key',chain"
  SecRule TX:probe_key "@streq evil" ""
SecRule ARGS:msg "@streq go" "id:1000205,phase:2,pass,log,msg:'seen %{tx.probe_msg}'"
`
	if err := os.WriteFile(before, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{RuleFilesBefore: []string{before}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	set := setConsts(w)
	for _, k := range []string{"probe_op", "probe_rx", "probe_key", "probe_msg"} {
		if !slices.Contains(set, k) {
			t.Errorf("%s not set: %v", k, set)
		}
	}
	if slices.Contains(set, "probe_unread") || !slices.Contains(setConsts(w), "allowed_methods") {
		t.Errorf("set: %v", set)
	}
	for _, q := range []string{"op=evil", "rx=go", "key=go"} {
		v, _, err := outcomeWithMessages(w, httptest.NewRequest("GET", "/?"+q, http.NoBody), nil)
		if err != nil || !v.Block {
			t.Errorf("%s: %+v, %v; want blocked", q, v, err)
		}
	}
	_, msgs, err := outcomeWithMessages(w, httptest.NewRequest("GET", "/?msg=go", http.NoBody), nil)
	if err != nil || !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, "seen evil") }) {
		t.Errorf("msg: %q, %v; want seen evil", msgs, err)
	}
}

// TestConstsGoReads: the severities' scores, which only moat's context
// scorers read once the setvars have them written in, and the argument
// limits stay set; without txGoReads they would not be.
func TestConstsGoReads(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	set := setConsts(w)
	for _, k := range txGoReads {
		if !slices.Contains(set, k) {
			t.Errorf("%s not set: %v", k, set)
		}
	}
	rules, err := corazaRules(w.waf)
	if err != nil {
		t.Fatal(err)
	}
	saved := txGoReads
	txGoReads = nil
	read, err := readConsts(rules, w.res.consts, w.res.responses)
	txGoReads = saved
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(read, func(c txConst) bool { return c.key == txCriticalScore }) {
		t.Errorf("%s read by a rule: the test no longer shows the Go read", txCriticalScore)
	}
}

// TestConstsReadResponses: a constant read only by a rule of the
// response phases is set when responses are inspected (the response is
// refused; it passes when the response phases' reads are not counted)
// and not otherwise, those phases then never running
// (TestResponseOnlyInspected).
func TestConstsReadResponses(t *testing.T) {
	before := filepath.Join(t.TempDir(), "before.conf")
	rules := `SecAction "id:1000211,phase:1,pass,nolog,setvar:tx.probe_resp=evil"
SecRule RESPONSE_HEADERS:X-Probe "@streq %{tx.probe_resp}" "id:1000212,phase:3,deny,status:403,log,msg:'resp'"
`
	if err := os.WriteFile(before, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, inspect := range []bool{false, true} {
		w, err := New(Config{RuleFilesBefore: []string{before}, InspectResponses: inspect})
		if err != nil {
			t.Fatal(err)
		}
		if set := setConsts(w); slices.Contains(set, "probe_resp") != inspect {
			t.Errorf("inspect %v: set %v", inspect, set)
		}
		if inspect {
			tx := w.Begin(nil)
			if _, err := tx.Request(httptest.NewRequest("GET", "/", http.NoBody), "127.0.0.1:4000"); err != nil {
				t.Fatal(err)
			}
			resp := &http.Response{StatusCode: 200, Proto: "HTTP/1.1", Header: http.Header{"Content-Type": {"text/html"}, "X-Probe": {"evil"}}, Body: http.NoBody}
			v, err := tx.Response(resp)
			tx.Close()
			if err != nil || !v.Block {
				t.Errorf("response: %+v, %v; want refused", v, err)
			}
		}
		w.Close()
	}
}
