package waf

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The resolver at other configurations than the gateway's default: the
// verdicts of the resolved and gated rule set must equal Coraza's own on
// CRS's regression requests and the committed corpus (TestGateDifferential
// covers the defaults and waf-dev's sample).
func TestResolveDifferentialConfigs(t *testing.T) {
	dir := t.TempDir()
	rules := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An operator's rule that raises the paranoia level of POST requests
	// at run time: no paranoia check may be decided at load.
	postParanoia := rules("post-paranoia.conf", `SecRule REQUEST_METHOD "@streq POST" "id:1001,phase:1,pass,nolog,t:none,setvar:tx.detection_paranoia_level=4,setvar:tx.blocking_paranoia_level=3"`+"\n")
	// An operator's rule that removes a paranoia check at run time: the
	// check must stay, or its range would not run when it fires.
	ctlRemove := rules("ctl-remove.conf", `SecRule REQUEST_METHOD "@streq POST" "id:1002,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=942013"`+"\n")
	// A threshold that a rule lowers at run time.
	threshold := rules("threshold.conf", `SecRule ARGS_NAMES "@streq q" "id:1003,phase:1,pass,nolog,t:none,setvar:tx.inbound_anomaly_score_threshold=3"`+"\n")
	inputs := corpusInputs(t, false)
	if !testing.Short() {
		inputs = append(inputs, crsInputs(t)...)
	}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"paranoia2", Config{Paranoia: 2}},
		{"paranoia1-detect3", Config{Paranoia: 1, DetectionParanoia: 3}},
		{"paranoia3-threshold10", Config{Paranoia: 3, InboundThreshold: 10}},
		{"stock", Config{StockCRS: true}},
		{"runtime-paranoia", Config{RuleFilesBefore: []string{postParanoia}}},
		{"runtime-ctl", Config{RuleFilesBefore: []string{ctlRemove}}},
		{"runtime-threshold", Config{RuleFilesBefore: []string{threshold}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Budget = time.Hour
			differential(t, c.cfg, nil, inputs)
		})
	}
}

// What a rule changes at run time is not decided at load: with an
// operator's rule that sets the paranoia level, every paranoia check
// stays; with one that removes a check, that check stays; without them,
// the checks are gone.
func TestResolveLeavesWhatRulesChange(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := filepath.Join(dir, "r.conf")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	has := func(w *WAF, id int) bool {
		rules, err := corazaRules(w.waf)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rules.Len() {
			if n, _ := intField(rules.Index(i), "ID_"); n == id {
				return true
			}
		}
		return false
	}
	load := func(cfg Config) *WAF {
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		if st := w.GateStats(); st.ResolveErr != nil || st.Resolved == 0 {
			t.Fatalf("resolver off: %+v", st)
		}
		return w
	}
	w := load(Config{})
	// 949152 runs its sum from 949052, 949159, 949060 and 949160 from
	// 949059 (merge).
	// 901350 reads a constant through t:urlDecodeUni.
	for _, id := range []int{942011, 942013, 920013, 901125, 900000, 949061, 949152, 949159, 949060, 949160, 901350} {
		if has(w, id) {
			t.Errorf("default rule set: rule %d was not resolved", id)
		}
	}
	for _, id := range []int{942100, 920170, 949110, 949052, 949059} {
		if !has(w, id) {
			t.Errorf("default rule set: rule %d was removed", id)
		}
	}
	w = load(Config{RuleFilesBefore: []string{write(`SecRule REQUEST_METHOD "@streq POST" "id:1001,phase:1,pass,nolog,t:none,setvar:tx.detection_paranoia_level=4"` + "\n")}})
	for _, id := range []int{942011, 942013, 942015, 920013, 949152} {
		if !has(w, id) {
			t.Errorf("paranoia set at run time: rule %d was removed", id)
		}
	}
	w = load(Config{RuleFilesBefore: []string{write(`SecRule REQUEST_METHOD "@streq POST" "id:1002,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=942013"` + "\n")}})
	if !has(w, 942013) || has(w, 920013) {
		t.Errorf("a ctl removes 942013 at run time: 942013 kept %v (want true), 920013 kept %v (want false)", has(w, 942013), has(w, 920013))
	}
	// A ctl that may remove one sum and not the others: it keeps its own
	// setvars.
	w = load(Config{RuleFilesBefore: []string{write(`SecRule REQUEST_METHOD "@streq POST" "id:1003,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=949160"` + "\n")}})
	if !has(w, 949160) || has(w, 949060) {
		t.Errorf("a ctl removes 949160 at run time: 949160 kept %v (want true), 949060 kept %v (want false)", has(w, 949160), has(w, 949060))
	}
}

// A route that excludes a rule the resolver decided on is inspected by
// the unresolved rule set, with the same verdicts as Coraza's; one that
// excludes a whole family (and with it the family's paranoia checks and
// everything they skip) keeps the resolved rule set.
func TestResolveExclusions(t *testing.T) {
	w, err := New(Config{Budget: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	inputs := corpusInputs(t, false)
	if !testing.Short() {
		inputs = append(inputs, crsInputs(t)...)
	}
	for _, c := range []struct {
		list     []string
		fallback bool
	}{
		{[]string{"942000-942999"}, false},
		{[]string{"942100", "932000-932999"}, false},
		{[]string{"920013"}, true},            // a paranoia check without what it skips
		{[]string{"901000-901999"}, true},     // CRS's initialisation
		{[]string{"900000"}, true},            // moat's paranoia and thresholds
		{[]string{"1-999999"}, true},          // everything, the phase-1 gate with it
		{[]string{"949061", "949161"}, false}, // rules that never match at paranoia 1
		{[]string{"949160"}, true},            // a sum merged into 949059
	} {
		ex, err := NewExclusions(c.list)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.excludesAnchor(ex); got != c.fallback {
			t.Errorf("exclusions %v: unresolved rule set %v, want %v", c.list, got, c.fallback)
		}
		t.Run(c.list[0], func(t *testing.T) {
			differential(t, Config{Budget: time.Hour}, ex, inputs)
		})
	}
	if w.full != nil {
		t.Error("the unresolved rule set was built without a request that needs it")
	}
	ex, _ := NewExclusions([]string{"920013"})
	tx := w.Begin(ex)
	tx.Close()
	if w.full == nil || w.full.res != nil {
		t.Errorf("a route excluding 920013 was not given the unresolved rule set")
	}
}

// The resolver leaves out the SecMarkers no rule left names (a skipAfter
// can end nowhere else) when no rule could tell a marker ran: a marker
// named by a rule that stays, and every marker of a rule set where a rule
// reads MATCHED_VAR before its own match (a marker's match empties it),
// stay, with Coraza's verdicts; the default rule set loses the rest, the
// response files' markers only while no response is inspected.
func TestResolveIdleMarkers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	skip := write("skip.conf", `SecRule ARGS:a "@streq x" "id:1101,phase:1,pass,nolog,skipAfter:END-MOAT-TEST"
SecRule ARGS:b "@streq y" "id:1102,phase:1,deny,status:403"
SecMarker END-MOAT-TEST
SecRule ARGS:c "@streq z" "id:1103,phase:1,deny,status:403"
`)
	matched := write("matched.conf", `SecRule ARGS:a "@streq x" "id:1201,phase:1,pass,nolog"
SecMarker MOAT-TEST-IDLE
SecRule MATCHED_VAR "@streq x" "id:1202,phase:1,deny,status:403"
`)
	load := func(cfg Config) *WAF {
		t.Helper()
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	status := func(w *WAF, target string) int {
		t.Helper()
		tx := w.Begin(nil)
		defer tx.Close()
		v, err := tx.Request(httptest.NewRequest("GET", target, http.NoBody), "127.0.0.1:4000")
		if err != nil {
			t.Fatal(err)
		}
		if v.Block {
			return v.Status
		}
		return http.StatusOK
	}
	for _, c := range []struct {
		file, target string
		want         int
	}{
		{skip, "/?a=x&b=y&c=z", http.StatusForbidden}, // 1102 skipped, 1103 past the marker
		{skip, "/?a=x&b=y", http.StatusOK},
		{matched, "/?a=x", http.StatusOK}, // the marker emptied MATCHED_VAR
	} {
		cfg := Config{RuleFilesBefore: []string{c.file}, Budget: time.Hour}
		ref := cfg
		ref.noGate, ref.noResolve = true, true
		w := load(cfg)
		if st := w.GateStats(); st.ResolveErr != nil || st.Resolved == 0 {
			t.Fatalf("resolver off: %+v", st)
		}
		got, want := status(w, c.target), status(load(ref), c.target)
		if want != c.want || got != want {
			t.Errorf("%s %s: resolved %d, Coraza %d, want %d", filepath.Base(c.file), c.target, got, want, c.want)
		}
	}

	markers := func(w *WAF) map[string]bool {
		t.Helper()
		rules, err := corazaRules(w.waf)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for i := range rules.Len() {
			if m := rules.Index(i).FieldByName("SecMark_").String(); m != "" {
				out[m] = true
			}
		}
		return out
	}
	all := markers(load(Config{noResolve: true}))
	def := markers(load(Config{}))
	resp := markers(load(Config{InspectResponses: true}))
	if len(def) >= len(all)/4 {
		t.Errorf("default rule set keeps %d of %d markers: %v", len(def), len(all), def)
	}
	for _, m := range []string{"END-RESPONSE-950-DATA-LEAKAGES", "END-RESPONSE-954-DATA-LEAKAGES-IIS"} {
		if !all[m] || def[m] || !resp[m] {
			t.Errorf("marker %s: loaded %v, kept without response inspection %v (want false), with it %v (want true)", m, all[m], def[m], resp[m])
		}
	}
	if m := markers(load(Config{RuleFilesBefore: []string{matched}})); len(m) != len(all)+1 {
		t.Errorf("a rule reads MATCHED_VAR before its own match: %d markers kept, want all %d", len(m), len(all)+1)
	}
}

// The response phases run only for an inspected response: without
// response inspection the resolver has left out the markers only their
// rules name (TestResolveIdleMarkers).
func TestResponseOnlyInspected(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tx := w.Begin(nil)
	defer tx.Close()
	if _, err := tx.Request(httptest.NewRequest("GET", "/", http.NoBody), "127.0.0.1:4000"); err != nil {
		t.Fatal(err)
	}
	resp := &http.Response{StatusCode: 200, Proto: "HTTP/1.1", Header: http.Header{"Content-Type": {"text/html"}}, Body: http.NoBody}
	if tx.ResponseInspected() {
		t.Fatal("response inspected without InspectResponses")
	}
	if _, err := tx.Response(resp); err == nil {
		t.Error("Response ran the response phases of a response not inspected")
	}
}

// TestResolveTransformations: a rule on a constant is decided on the
// value its transformations make of it. t:lowercase makes "AB" equal
// to "ab", so 1000041 refuses every request and stays; 1000042 never
// matches and goes. Fails when the transformations are not run (1000041
// is then removed as never matching, and the request passes).
func TestResolveTransformations(t *testing.T) {
	w, err := New(Config{Directives: `
SecAction "id:1000040,phase:1,pass,nolog,setvar:tx.t_word=AB"
SecRule TX:t_word "@streq ab" "id:1000041,phase:1,deny,status:403,log,t:none,t:lowercase"
SecRule TX:t_word "@streq AB" "id:1000042,phase:1,deny,status:403,log,t:none,t:lowercase"
`})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rules, err := corazaRules(w.waf)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[int]bool{}
	for i := range rules.Len() {
		id, _ := intField(rules.Index(i), "ID_")
		kept[id] = true
	}
	if !kept[1000041] || kept[1000042] {
		t.Errorf("1000041 kept %v (want true), 1000042 kept %v (want false)", kept[1000041], kept[1000042])
	}
	tx := w.Begin(nil)
	defer tx.Close()
	v, err := tx.Request(httptest.NewRequest("GET", "/", http.NoBody), "127.0.0.1:4000")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Block || !slices.Contains(v.RuleIDs, 1000041) {
		t.Errorf("%+v, want refused by 1000041", v)
	}
}

// Coraza walks its whole rule list in every phase it runs: the resolver
// leaves out the rules of the phases no transaction runs, the response
// phases' without response inspection and the logging phase's always,
// and keeps the response phases' when a response may be inspected. Fails
// while they are kept (the rule list held 165 such rules at CRS 4.25).
func TestResolveUnrunPhases(t *testing.T) {
	count := func(cfg Config) (map[int]int, GateStats) {
		t.Helper()
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		rules, err := corazaRules(w.waf)
		if err != nil {
			t.Fatal(err)
		}
		byPhase := map[int]int{}
		for i := range rules.Len() {
			ph, err := intField(rules.Index(i), "Phase_")
			if err != nil {
				t.Fatal(err)
			}
			byPhase[ph]++
		}
		return byPhase, w.GateStats()
	}
	all, _ := count(Config{noResolve: true})
	if all[3] == 0 || all[4] == 0 || all[5] == 0 {
		t.Fatalf("loaded rule set has no rules of phase 3, 4 or 5: %v", all)
	}
	def, st := count(Config{})
	if def[3]+def[4]+def[5] != 0 || st.Unrun != all[3]+all[4]+all[5] {
		t.Errorf("default rule set keeps %v of phases 3, 4 and 5 (Unrun %d), want none", def, st.Unrun)
	}
	resp, st := count(Config{InspectResponses: true})
	if resp[3] != all[3] || resp[4] != all[4] || resp[5] != 0 || st.Unrun != all[5] {
		t.Errorf("with response inspection: %v (Unrun %d), want phases 3 and 4 as loaded (%d, %d) and none of 5", resp, st.Unrun, all[3], all[4])
	}
}
