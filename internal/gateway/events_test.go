package gateway

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"net/netip"
	"os"
	"testing"
	"time"

	"moat/internal/flow/ocsfcheck"
	"moat/internal/waf"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestEventGolden pins the OCSF shape of each kind of security event.
func TestEventGolden(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	r := httptest.NewRequest("POST", "https://shop.example/login?next=%2F&token=abc", nil)
	r.Header.Set("User-Agent", "curl/8.0")
	client := netip.MustParseAddr("198.51.100.7")
	v := &waf.Verdict{Block: true, Status: 403, Detected: true, RuleIDs: []int{942100, 949110},
		Variable: "ARGS:user", Matched: waf.Mask("ARGS:user", "' or 1=1--"), Message: "SQL Injection Attack Detected via libinjection"}
	evs := []event{
		{kind: KindWAF, reason: "request matched WAF rules", status: 403, route: "shop", reqID: "req-1", client: client, r: r, verdict: v, blocked: true},
		{kind: KindWAF, reason: "request matched WAF rules (detection only)", status: 200, route: "shop", reqID: "req-2", client: client, r: r, verdict: v},
		{kind: KindRateLimit, reason: "rate limit exceeded", status: 429, route: "shop", reqID: "req-3", client: client, r: r, blocked: true},
		{kind: KindIPDeny, reason: "client IP refused by the IP lists", status: 403, reqID: "req-4", client: client, r: r, blocked: true},
		{kind: KindCSRF, reason: `origin "https://evil.example" not allowed`, status: 403, route: "shop", reqID: "req-5", client: client, r: r, blocked: true},
		{kind: KindRateLimit, reason: "concurrent connection cap per IP reached", client: client, blocked: true},
	}
	var buf bytes.Buffer
	for i := range evs {
		evs[i].local = netip.MustParseAddrPort("203.0.113.10:443")
		rec := evs[i].record(now)
		rec.Metadata.UID = "fixed"
		if rec.FindingInfo != nil {
			rec.FindingInfo.UID = "fixed"
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		// Each is a valid OCSF 1.3.0 record of its class.
		if err := ocsfcheck.Check(b); err != nil {
			t.Errorf("event %d (%s): %v", i, evs[i].kind, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	const golden = "testdata/events.golden.jsonl"
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("events differ from %s (run with -update after checking):\n%s", golden, buf.String())
	}
}
