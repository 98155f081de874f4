package cmdline

import (
	"encoding/json"
	"testing"
)

func TestTerminalJSON(t *testing.T) {
	for _, s := range []string{"plain é 日本 \u00e9", "\u009b31m", "\u202egnp.exe", "\u2066x\u2069 \u200f", "\U000e0041 tag", "\x1b\n\u2028"} {
		b, err := json.Marshal(map[string]string{"k": s})
		if err != nil {
			t.Fatal(err)
		}
		out := TerminalJSON(b)
		for _, r := range string(out) {
			if r < 0x20 || hidden(r) {
				t.Errorf("TerminalJSON(%s) = %s: holds %U", b, out, r)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil || back["k"] != s {
			t.Errorf("TerminalJSON(%s) = %s: reads back as %q (%v)", b, out, back["k"], err)
		}
	}
}
