package egress

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/flow/ocsfcheck"
)

// TestRecordsConformToOCSF holds the egress path's records, refusals and
// admissions, local and through the egress gateway, to OCSF 1.3.0.
func TestRecordsConformToOCSF(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	now := start.Add(time.Second)
	for _, c := range []struct {
		name     string
		t        Target
		activity int
		verdict  string
	}{
		{"refused by name", Target{Src: "api", SrcIP: "127.0.0.1", Host: "evil.example", Port: 443, ConnID: "c1"}, flow.ActivityRefuse, flow.VerdictDeny},
		{"refused, no identity", Target{Host: "203.0.113.9", Port: 443, ConnID: "c2"}, flow.ActivityRefuse, flow.VerdictDeny},
		{"opened via the gateway", Target{Src: "api", Host: "api.example.test", Port: 443, ConnID: "c3", Via: "egress"}, flow.ActivityOpen, flow.VerdictAllow},
		{"closed", Target{Src: "api", Host: "api.example.test", Port: 443, ConnID: "c4"}, flow.ActivityClose, flow.VerdictAllow},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRecord(td, "edge", start, now, c.t, c.activity, c.verdict)
			r.FirewallRule = &flow.Rule{Name: "payments"}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := ocsfcheck.Check(b); err != nil {
				t.Errorf("%s\n%s", err, b)
			}
		})
	}
}
