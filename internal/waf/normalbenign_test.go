package waf

import "testing"

func TestNormalOfBenign(t *testing.T) {
	chain := func(v string) []string {
		out := []string{v}
		for range 2 {
			n, ok := normalize(out[len(out)-1])
			if !ok {
				break
			}
			out = append(out, dropControls(n))
		}
		return out
	}
	for _, c := range []struct {
		in   string
		want bool // every normal form of in inherits in's verdict
	}{
		{"He said 'and' -- twice", true},
		{"O'Reilly's 'best of' list -- 2nd ed.", true},
		// Not prose: the normal form keeps its own verdict.
		{"1/**/or/**/1 --", false},
		{"x' or 1=1 -- twice", false},
	} {
		vals := chain(c.in)
		if len(vals) < 2 {
			t.Fatalf("%q has no normal form", c.in)
		}
		got := true
		for _, v := range vals[1:] {
			if !familySQL.benign(v) && !normalOfBenign(&familySQL, v, vals, map[memoKey]bool{}, newTxMemo(), 3) {
				got = false
			}
		}
		if got != c.want {
			t.Errorf("normal forms %q of %q: inherit %v, want %v", vals[1:], c.in, got, c.want)
		}
	}
	// Many values of one name are not followed.
	many := make([]string, maxNormalLinks+1)
	for i := range many {
		many[i] = "He said 'and' -- twice"
	}
	many[0] = "He said 'and'     --"
	if normalOfBenign(&familySQL, many[0], many, map[memoKey]bool{}, newTxMemo(), 3) {
		t.Error("normalOfBenign followed more than maxNormalLinks values")
	}
}
