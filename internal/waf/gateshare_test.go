package waf

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestGateTwins: a step whose twin (the same function after a chain with
// a step more) was computed on the same input takes the twin's value
// (gateState.twin); where the step between changed the value, it runs
// its own. Rule 1600 base64-decodes the lower-cased value, 1601 the value
// as sent, so "SGk=" is "Hi" to 1601 and "sgk=" decoded to 1600; "aGk="
// ("hi"), which lower-casing leaves as it was, is decoded once.
func TestGateTwins(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.conf")
	const rule = `SecRule ARGS_GET "@rx NOPE" "id:1600,phase:1,pass,t:none,t:lowercase,t:base64Decode,msg:'the twin, a step more'"` + "\n" +
		`SecRule ARGS_GET "@streq Hi" "id:1601,phase:1,deny,status:403,t:none,t:base64Decode,msg:'the step, a step less'"` + "\n" +
		`SecRule ARGS_GET "@streq hi" "id:1602,phase:1,deny,status:403,t:none,t:base64Decode,msg:'the step, a step less'"` + "\n"
	if err := os.WriteFile(rules, []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Budget: time.Hour, RuleFilesBefore: []string{rules}}
	req := func(q string) []byte {
		return []byte("GET /?" + q + " HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n")
	}
	cases := []struct {
		q    string
		want int // the rule that matches, 0 for none
	}{{"q=SGk%3D", 1601}, {"q=aGk%3D", 1602}, {"q=SGI%3D", 0}}
	var raws [][]byte
	for _, c := range cases {
		raws = append(raws, req(c.q))
	}
	differential(t, cfg, nil, raws)
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, c := range cases {
		v, err, _ := verdictOf(w, nil, raws[i])
		for _, id := range []int{1601, 1602} {
			if got := slices.Contains(v.RuleIDs, id); got != (id == c.want) || err != nil {
				t.Errorf("%s: rule %d matched %v (%+v, %v), want %v", c.q, id, got, v, err, id == c.want)
			}
		}
	}
	p, err := planGate(w.waf, []int{gate1ID}, 1, time.Hour, w.res.consts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(p.twins, func(tw []int) bool { return len(tw) > 0 }) {
		t.Error("no step has a twin")
	}
}
