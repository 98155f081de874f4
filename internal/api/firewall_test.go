package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// FuzzFirewallHealth: whatever a node sends as its firewall's bypasses,
// what Check passes is within the bounds the server stores and shows,
// and reads back as it was.
func FuzzFirewallHealth(f *testing.F) {
	for _, s := range []string{
		`{"bypasses":[{"family":"inet","table":"sneak","chain":"out","handle":4,"kind":"mark"}],"bypass_count":1}`,
		`{"bypasses":[{"family":"ip","table":"\u001b[2J\u202e<!channel>","chain":"pre","handle":1,"kind":"notrack"}],"bypass_count":7}`,
		`{"bypass_count":-1}`, `{"bypasses":[{"family":"ipx"}]}`, `{}`, `null`, `{"bypasses":[{"table":"` + strings.Repeat("t", 300) + `"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h FirewallHealth
		if json.Unmarshal(b, &h) != nil || h.Check() != nil {
			return
		}
		if len(h.Bypasses) > MaxFirewallBypasses || h.BypassCount < len(h.Bypasses) || h.BypassCount > MaxFirewallBypassCount {
			t.Fatalf("passed past its bounds: %d listed, count %d", len(h.Bypasses), h.BypassCount)
		}
		for _, x := range h.Bypasses {
			if len(x.Table) > MaxNFTName || len(x.Chain) > MaxNFTName || x.Table == "" || x.Chain == "" || (x.Kind != BypassMark && x.Kind != BypassNotrack) {
				t.Fatalf("passed: %+v", x)
			}
		}
		out, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var back FirewallHealth
		if err := json.Unmarshal(out, &back); err != nil || back.BypassCount != h.BypassCount || !slices.Equal(back.Bypasses, h.Bypasses) {
			t.Fatalf("%s read back as %+v (%v), not %+v", out, back, err, h)
		}
	})
}
