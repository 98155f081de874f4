package waf

import (
	"strings"
	"testing"
)

// A pick test never refuses a value that holds one of its literals, in
// any ASCII case when folded, and refuses a value without any of its
// picked bytes.
func TestPickTest(t *testing.T) {
	lits := []string{"select", "<script", "eval(", "\xac\xed"}
	exact := newPickTest(lits, false, false)
	folded := newPickTest(lits[:3], true, true)
	for _, v := range []string{"1 select 2", "x<script>", "eval(1)", "..\xac\xed.."} {
		if !exact.passes(bytesOf(v)) {
			t.Errorf("exact: %q refused", v)
		}
	}
	for _, v := range []string{"1 SeLeCt 2", "x<SCRIPT>", "EVAL(1)", "\u212a"} {
		if !folded.passes(bytesOf(v)) {
			t.Errorf("folded: %q refused", v)
		}
	}
	for _, v := range []string{"", strings.Repeat("a", 700), "leave at the door, please"} {
		if exact.passes(bytesOf(v)) || folded.passes(bytesOf(v)) {
			t.Errorf("%q passed", v)
		}
	}
	if newPickTest(nil, false, false) != nil || newPickTest([]string{"a", ""}, false, false) != nil {
		t.Error("no literal, or an empty one, must give no test")
	}
}
