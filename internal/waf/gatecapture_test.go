package waf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestGateCapturedChain checks the chains the gate decides with what
// their first link would write (gatecapture.go), modelled on CRS's
// 920450, against Coraza alone: each way the decision could be unsound
// shows as a verdict. Rule 1704 reads TX:0 after the chain (a header
// name, as the chain's capture leaves it); 1703 reads the chain's TX
// variables by a key regex, fed by a header of a certain name; 1705
// captures between the gate and the chain; 1706 (second rule set)
// writes a variable the chain's second link reads.
func TestGateCapturedChain(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const chain = `
SecAction "id:1701,phase:1,pass,nolog,setvar:'tx.test_restricted=/x-bad/ /x-worse/'"
SecRule REQUEST_HEADERS:X-Cap "@rx (.+)" "id:1705,phase:1,pass,nolog,capture,t:none"
SecRule REQUEST_HEADERS_NAMES "@rx ^.*$" "id:1702,phase:1,deny,status:403,capture,t:none,t:lowercase,\
  msg:'restricted header (%{MATCHED_VAR})',logdata:'%{MATCHED_VAR}',setvar:'tx.hn_1702_%{tx.0}=/%{tx.0}/',chain"
  SecRule TX:/^hn_1702_/ "@within %{tx.test_restricted}" "t:none"
SecRule TX:/SPY_*/ "@rx ." "id:1703,phase:1,deny,status:403,msg:'key read'"
SecRule TX:0 "@rx ^(?:host|user-agent|accept|x-[a-z-]+)$" "id:1704,phase:1,deny,status:403,msg:'capture read'"
`
	req := func(headers string) []byte {
		return []byte("GET /?q=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n" + headers + "\r\n")
	}
	cases := []struct {
		raw  []byte
		rule int // the rule that must refuse it
	}{
		{req(""), 1704},
		{[]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), 1704},
		{req("X-Bad: 1\r\n"), 1702},
		{req("X-worse: 1\r\n"), 1702},
		{req("X-Spy-Lo: 1\r\n"), 1703},
		{req("X-Cap: 0123\r\n"), 1704},
		{req("X-Cap: 0123\r\nX-Bad: 1\r\n"), 1702},
	}
	var inputs [][]byte
	for _, c := range cases {
		inputs = append(inputs, c.raw)
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{write("chain.conf", chain)}}
	differential(t, cfg, nil, inputs)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range cases {
		v, err, _ := verdictOf(w, nil, c.raw)
		if len(v.RuleIDs) == 0 || v.RuleIDs[0] != c.rule || err != nil {
			t.Errorf("%q: rules %v, want %d first (%v)", c.raw, v.RuleIDs, c.rule, err)
		}
	}
	decided := func(w *WAF, id int) *capturedChain {
		p, err := planGate(w.waf, []int{gate1ID, gate2ID}, 1, time.Hour, w.res.consts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.after[gate1ID] {
			if r.id == id {
				return r.captured
			}
		}
		return nil
	}
	if c := decided(w, 1702); c == nil || len(c.before) != 1 || c.before[0].id != 1705 {
		t.Errorf("chain 1702 is not decided at the gate after rule 1705: %+v", c)
	}

	// Routes that exclude the chain: Coraza does not run it, and the
	// gate must not set TX:0 for it.
	ex, err := NewExclusions([]string{"1702"})
	if err != nil {
		t.Fatal(err)
	}
	differential(t, cfg, ex, inputs[:2])

	// Rule sets where the chain is Coraza's: another rule writes a
	// variable its second link reads (a constant the phase-1 gate sets,
	// or a rule's setvar), so it matches; a rule the gate leaves to
	// Coraza captures between the gate and it, so the TX:0 the gate
	// would set could be overwritten; a ctl removes it.
	for _, c := range []struct {
		rules   string
		matches bool
	}{
		{`SecAction "id:1706,phase:1,pass,nolog,setvar:'tx.hn_1702_zz=/x-bad/'"`, true},
		{`SecRule REQUEST_METHOD "@rx ^GET$" "id:1706,phase:1,pass,nolog,t:none,setvar:'tx.hn_1702_zz=/x-bad/'"`, true},
		{`SecRule REMOTE_ADDR "@rx ^.*$" "id:1707,phase:1,pass,nolog,capture"`, false},
		{`SecRule REQUEST_HEADERS:X-Off "@rx ." "id:1708,phase:1,pass,nolog,ctl:ruleRemoveById=1702"`, false},
	} {
		cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{write("other.conf", c.rules+chain)}}
		differential(t, cfg, nil, append(inputs[:2:2], req("X-Off: 1\r\n")))
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if v, err, _ := verdictOf(w, nil, inputs[0]); slices.Contains(v.RuleIDs, 1702) != c.matches || err != nil {
			t.Errorf("%s: rule 1702 matched %v, want %v (%+v, %v)", c.rules, !c.matches, c.matches, v, err)
		}
		if decided(w, 1702) != nil {
			t.Errorf("chain 1702 is decided at the gate beside %s", c.rules)
		}
	}

	// An exception to the chain's variables: Coraza leaves that header
	// out, so TX:0 is "host" (1704 refuses); were the chain the gate's,
	// it would set TX:0 to one of both names, taken in a map's order.
	cfg = Config{Budget: time.Hour, RuleFilesBefore: []string{write("except.conf",
		chain+`SecRuleUpdateTargetById 1702 "!REQUEST_HEADERS_NAMES:skip-me"`+"\n")}}
	skip := []byte("GET / HTTP/1.1\r\nHost: localhost\r\nSkip-Me: 1\r\n\r\n")
	differential(t, cfg, nil, slices.Repeat([][]byte{skip}, 12))
	w4, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w4.Close()
	if decided(w4, 1702) != nil {
		t.Error("chain 1702 is decided at the gate though an exception leaves out some of its values")
	}
}

// TestGateCapturedConstKey checks the chains whose first link captures
// into one constant TX key that the second link reads transformed
// (gatecapture.go), modelled on CRS's 920420, against Coraza alone. Rule
// 1714 reads TX:0 after the chain (the type, as the chain's capture
// leaves it); the second link lowercases what it reads, so "APP/X" is
// refused though the list holds it as written; the rule sets after read
// or write the key, which leaves the chain to Coraza. In the default
// rule set CRS's 920420 is decided so, and with it 920450, which
// follows it.
func TestGateCapturedConstKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const chain = `
SecAction "id:1711,phase:1,pass,nolog,setvar:'tx.test_types=|text/plain| |APP/X|'"
SecRule REQUEST_HEADERS:Content-Type "@rx ^[^;\s]+" "id:1712,phase:1,deny,status:403,capture,t:none,\
  msg:'type not allowed',logdata:'%{MATCHED_VAR}',setvar:'tx.ct_1712=|%{tx.0}|',chain"
  SecRule TX:ct_1712 "!@within %{tx.test_types}" "t:lowercase"
`
	const reader = `SecRule TX:0 "@rx (?i)^(?:text/plain|app/x)$" "id:1714,phase:1,deny,status:403,msg:'capture read'"
`
	req := func(ctype string) []byte {
		return []byte("GET / HTTP/1.1\r\nHost: localhost\r\nContent-Type: " + ctype + "\r\n\r\n")
	}
	cases := []struct {
		raw  []byte
		rule int // the rule that must refuse it
	}{
		{req("text/plain"), 1714},
		{req("text/plain; charset=utf-8"), 1714},
		{req("APP/X"), 1712},
		{req("application/xml"), 1712},
	}
	var inputs [][]byte
	for _, c := range cases {
		inputs = append(inputs, c.raw)
	}
	decided := func(w *WAF, id int) *capturedChain {
		p, err := planGate(w.waf, []int{gate1ID, gate2ID}, 1, time.Hour, w.res.consts)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.after[gate1ID] {
			if r.id == id {
				return r.captured
			}
		}
		return nil
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{write("chain.conf", chain+reader)}}
	differential(t, cfg, nil, inputs)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range cases {
		v, err, _ := verdictOf(w, nil, c.raw)
		if len(v.RuleIDs) == 0 || v.RuleIDs[0] != c.rule || err != nil {
			t.Errorf("%q: rules %v, want %d first (%v)", c.raw, v.RuleIDs, c.rule, err)
		}
	}
	if decided(w, 1712) == nil {
		t.Error("chain 1712 is not decided at the gate")
	}

	// Rule sets where the key is read (before 1714 refuses) or written
	// by another rule: the chain is Coraza's.
	for _, other := range []string{
		`SecRule TX:ct_1712 "@rx ^\|text/plain\|$" "id:1715,phase:1,deny,status:403,msg:'key read'"`,
		`SecRule TX:/^ct_17/ "@rx ^\|text/plain\|$" "id:1715,phase:1,deny,status:403,msg:'key read'"`,
		`SecRule REQUEST_METHOD "@rx ^GET$" "id:1715,phase:1,deny,status:403,msg:'%{tx.ct_1712}'"`,
		`SecAction "id:1715,phase:1,pass,nolog,setvar:'tx.ct_1712=|APP/X|'"`,
	} {
		cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{write("other.conf", chain+other+"\n"+reader)}}
		differential(t, cfg, nil, inputs)
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if decided(w, 1712) != nil {
			t.Errorf("chain 1712 is decided at the gate beside %s", other)
		}
	}

	crs, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer crs.Close()
	if decided(crs, 920420) == nil {
		t.Error("CRS 920420 is not decided at the gate")
	}
	if c := decided(crs, 920450); c == nil || !slices.ContainsFunc(c.before, func(r *gateRule) bool { return r.id == 920420 }) {
		t.Errorf("CRS 920450 is not decided at the gate after 920420: %+v", c)
	}
}
