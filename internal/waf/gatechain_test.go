package waf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestGateChains checks what the gate decides by a chain's links and by
// operators reading constant TX (gatechain.go) against Coraza alone, on
// rules built so that each unsound decision changes a verdict: a chain
// whose first link sets a variable, captures, or sets a MATCHED_VAR a
// later rule reads must not be removed for its failing second link, and
// an operator reading a TX variable that a rule may write must not be
// asked at the gate. It also requires the sound decisions to be made.
func TestGateChains(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	req := func(line, headers string) []byte {
		return []byte(line + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n" + headers + "\r\n")
	}
	// Every rule's later effect is a deny of its own, so a wrong removal
	// shows as a verdict.
	rules := write("chains.conf", `
SecRule REQUEST_METHOD "@rx ^GET$" "id:1601,phase:1,deny,status:403,t:none,msg:'quiet chain',chain"
  SecRule ARGS_GET:a "@streq x" "t:none"
SecRule REQUEST_HEADERS:X-Seen "@rx ." "id:1602,phase:1,pass,nolog,t:none,setvar:tx.test_seen=1,chain"
  SecRule ARGS_GET:b "@streq x" "t:none"
SecRule TX:test_seen "@eq 1" "id:1603,phase:1,deny,status:403,msg:'first link set a variable'"
SecRule REQUEST_HEADERS:X-Cap "@rx (c\w+)" "id:1604,phase:1,pass,nolog,capture,t:none,chain"
  SecRule ARGS_GET:c "@streq x" "t:none"
SecRule TX:1 "@streq cap" "id:1605,phase:1,deny,status:403,msg:'first link captured'"
SecAction "id:1611,phase:1,pass,nolog,setvar:tx.test_methods=GET HEAD"
SecRule REQUEST_METHOD "!@within %{tx.test_methods}" "id:1612,phase:1,deny,status:403,msg:'constant TX'"
SecAction "id:1608,phase:1,pass,nolog,setvar:tx.test_allowed=GET"
SecRule ARGS_GET:e "@streq x" "id:1609,phase:1,pass,nolog,setvar:tx.test_allowed=POST"
SecRule REQUEST_METHOD "!@within %{tx.test_allowed}" "id:1610,phase:1,deny,status:403,msg:'written TX'"
`)
	// After the inspection pass and the phase-2 gate.
	after := write("after.conf", `
SecRule REQUEST_METHOD "@rx ^GET$" "id:1613,phase:2,deny,status:403,t:none,msg:'arguments too long',chain"
  SecRule ARGS_COMBINED_SIZE "@gt 40" "t:none"
`)
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{rules}, RuleFiles: []string{after}}
	cases := []struct {
		raw  []byte
		rule int // the rule that must refuse it, 0 for none of these
	}{
		{req("GET /?a=y", ""), 0},
		{req("GET /?a=x", ""), 1601},
		{req("GET /?b=y", "X-Seen: 1\r\n"), 1603},
		{req("GET /?b=y", ""), 0},
		{req("GET /?c=y", "X-Cap: cap\r\n"), 1605},
		{req("GET /?e=x", ""), 1610},
		{req("GET /?e=y", ""), 0},
		{req("PUT /", ""), 1612},
		{req("GET /?f=abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", ""), 1613},
		{req("GET /?f=abcdefghijklmnopqrstuvwxyz", ""), 0},
	}
	var inputs [][]byte
	for _, c := range cases {
		inputs = append(inputs, c.raw)
	}
	differential(t, cfg, nil, inputs)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, c := range cases {
		v, err, _ := verdictOf(w, nil, c.raw)
		for _, id := range []int{1601, 1603, 1605, 1610, 1612, 1613} {
			if want := id == c.rule; slices.Contains(v.RuleIDs, id) != want || err != nil {
				t.Errorf("%q: rule %d matched %v, want %v (%+v, %v)", c.raw, id, !want, want, v, err)
			}
		}
	}
	p, err := planGate(w.waf, []int{gate1ID, gate2ID}, 1, time.Hour, w.res.consts)
	if err != nil {
		t.Fatal(err)
	}
	decided := map[int]*gateRule{}
	for _, g := range []int{gate1ID, gate2ID} {
		for i, r := range p.after[g] {
			decided[r.id] = &p.after[g][i]
		}
	}
	if r := decided[1601]; r == nil || len(r.links) != 1 {
		t.Errorf("chain 1601 (quiet first link) is not decided by its second link: %+v", r)
	}
	for _, id := range []int{1602, 1604} {
		if r := decided[id]; r != nil && len(r.links) != 0 {
			t.Errorf("chain %d is decided by its second link though its first link acts", id)
		}
	}
	if r := decided[1613]; r == nil || len(r.links) != 1 {
		t.Errorf("chain 1613 is not decided by ARGS_COMBINED_SIZE: %+v", r)
	}
	if decided[1612] == nil {
		t.Error("rule 1612 (operator on constant TX) is left to Coraza")
	}
	if decided[1610] != nil {
		t.Error("rule 1610 is decided by the gate though rule 1609 writes the TX variable it reads")
	}

	// A rule that reads MATCHED_VAR before its own match sees what the
	// chain's first link matched: no chain is decided by its links.
	rules = write("matched.conf", `
SecRule REQUEST_HEADERS:X-Mv "@rx ^mv$" "id:1606,phase:1,pass,nolog,t:none,chain"
  SecRule ARGS_GET:d "@streq x" "t:none"
SecRule MATCHED_VAR "@streq mv" "id:1607,phase:1,deny,status:403,msg:'matched var'"
`)
	cfg = Config{Budget: time.Hour, RuleFilesBefore: []string{rules}}
	hit := req("GET /?d=y", "X-Mv: mv\r\n")
	differential(t, cfg, nil, [][]byte{hit, req("GET /?d=y", "")})
	w2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if v, err, _ := verdictOf(w2, nil, hit); !slices.Contains(v.RuleIDs, 1607) || err != nil {
		t.Errorf("%q: rule 1607 did not match (%+v, %v)", hit, v, err)
	}
	if p, err := planGate(w2.waf, []int{gate1ID}, 1, time.Hour, w2.res.consts); err != nil || p.chains {
		t.Errorf("chains decided by their links though rule 1607 reads MATCHED_VAR (%v)", err)
	}
}
