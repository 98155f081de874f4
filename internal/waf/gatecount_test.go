package waf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestGateExactCount checks the counts above zero the gate decides
// (gatecount.go) against Coraza alone. 1801 and 1805's second link are
// counts no exclusion reaches, so the gate decides them; 1802 counts
// after a SecRuleUpdateTargetById exception and 1804 after a
// ctl:ruleRemoveTargetById, so the gate's count (without them) is one
// more than Coraza's, and each request below where that count refuses
// is one that a gate deciding them would let through.
func TestGateExactCount(t *testing.T) {
	dir := t.TempDir()
	const rules = `
SecRule &REQUEST_HEADERS:X-Two "@eq 2" "id:1801,phase:1,deny,status:403,t:none,msg:'two'"
SecRule &REQUEST_HEADERS "@eq 4" "id:1802,phase:1,deny,status:403,t:none,msg:'four but one'"
SecRuleUpdateTargetById 1802 "!REQUEST_HEADERS:x-skip"
SecRule REQUEST_HEADERS:X-Off "@rx ." "id:1803,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=1804;REQUEST_HEADERS:x-off"
SecRule &REQUEST_HEADERS:/^x-o/ "@eq 1" "id:1804,phase:1,deny,status:403,t:none,msg:'one x-o but one'"
SecRule REQUEST_METHOD "@streq POST" "id:1805,phase:1,deny,status:403,t:none,msg:'post with a length',chain"
  SecRule &REQUEST_HEADERS:Content-Length "@eq 1" "t:none"
`
	path := filepath.Join(dir, "count.conf")
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	req := func(headers string) []byte {
		return []byte("GET /?q=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n" + headers + "\r\n")
	}
	cases := []struct {
		raw  []byte
		rule int // the rule that must refuse it, 0: none of these
	}{
		{req(""), 0},
		{req("X-Two: a\r\n"), 1802},
		{req("X-Two: a\r\nX-Two: b\r\n"), 1801},
		{req("X-Pad: 1\r\n"), 1802},
		{req("X-Pad: 1\r\nX-Skip: 1\r\n"), 1802},
		{req("X-Pad: 1\r\nX-Pad2: 1\r\n"), 0},
		{req("X-On: 1\r\nX-Pad: 1\r\nX-Pad2: 1\r\n"), 1804},
		{req("X-On: 1\r\nX-Off: 1\r\nX-Pad: 1\r\n"), 1804},
		{req("X-On: 1\r\nX-Oz: 1\r\nX-Pad: 1\r\n"), 0},
		{[]byte("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc"), 1805},
	}
	var inputs [][]byte
	for _, c := range cases {
		inputs = append(inputs, c.raw)
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{path}}
	differential(t, cfg, nil, inputs)

	// The same with the resolver off: the ctl is Coraza's own, not the
	// resolver's targetRemoval that stands for it.
	unresolved := cfg
	unresolved.noResolve = true
	for _, c := range []Config{cfg, unresolved} {
		w, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if st := w.GateStats(); st.Err != nil || st.Rules == 0 {
			t.Fatalf("gate not active: %+v", st)
		}
		for _, k := range cases {
			v, err, _ := verdictOf(w, nil, k.raw)
			if err != nil || k.rule != 0 && !slices.Contains(v.RuleIDs, k.rule) ||
				k.rule == 0 && slices.ContainsFunc(v.RuleIDs, func(id int) bool { return id > 1800 && id < 1810 }) {
				t.Errorf("resolver off %v: %q: rules %v, want %d (%v)", c.noResolve, k.raw, v.RuleIDs, k.rule, err)
			}
		}
		p, err := planGate(w.waf, []int{gate1ID, gate2ID}, 1, time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		exact := map[int]bool{}
		for _, r := range p.after[gate1ID] {
			exact[r.id] = r.exactCount
			if r.id == 1805 {
				exact[r.id] = len(r.links) == 1 && r.links[0].exactCount
			}
		}
		for id, want := range map[int]bool{1801: true, 1802: false, 1804: false, 1805: true} {
			if got, ok := exact[id]; !ok || got != want {
				t.Errorf("resolver off %v: rule %d decided on its count %v (gated %v), want %v", c.noResolve, id, got, ok, want)
			}
		}
	}
}
