package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
)

// TestSmoke runs the harness as CI can afford: the first requests of the
// committed subset, once through the real gateway and once through the
// WAF alone. Both must answer every request and agree on every block.
func TestSmoke(t *testing.T) {
	counts := regexp.MustCompile(`attacks blocked (\d+)/(\d+) .* benign blocked (\d+)/(\d+) .*, (\d+) without an answer`)
	var got [][]string
	for _, mode := range [][]string{nil, {"-fast"}} {
		var out bytes.Buffer
		args := append([]string{"-corpus", "../../internal/waf/testdata/corpus.jsonl", "-n", "80", "-workers", "2"}, mode...)
		if err := run(args, &out); err != nil {
			t.Fatalf("run %v: %v\n%s", args, err, out.String())
		}
		t.Logf("%v:\n%s", args, out.String())
		m := counts.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("run %v: no totals line in\n%s", args, out.String())
		}
		if m[5] != "0" {
			t.Errorf("run %v: %s requests without an answer", args, m[5])
		}
		if n, _ := strconv.Atoi(m[2]); n == 0 {
			t.Errorf("run %v: no attacks in the sample", args)
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 {
			t.Errorf("run %v: no attack blocked", args)
		}
		got = append(got, m[1:5])
	}
	for i := range got[0] {
		if got[0][i] != got[1][i] {
			t.Errorf("gateway and in-process replay disagree: %v vs %v", got[0], got[1])
			break
		}
	}
}
