//go:build linux

package firewall

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"moat/internal/flow/ocsfcheck"
)

// TestRecordsConformToOCSF holds the would-drop log's records, dropped and
// audited, inbound and outbound, to OCSF 1.3.0.
func TestRecordsConformToOCSF(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	owner := func(int) string { return "api" }
	for _, ev := range []logEvent{
		{in: true, action: "drop", proto: "tcp", protoNum: 6, src: netip.MustParseAddrPort("203.0.113.9:40000"), dst: netip.MustParseAddrPort("10.0.0.5:5432"), uid: -1},
		{in: false, action: "audit", proto: "udp", protoNum: 17, src: netip.MustParseAddrPort("10.0.0.5:40000"), dst: netip.MustParseAddrPort("198.51.100.1:53"), uid: 1001},
		{in: true, action: "drop", protoNum: 47, src: netip.MustParseAddrPort("[2001:db8::1]:0"), dst: netip.MustParseAddrPort("[2001:db8::2]:0"), uid: -1},
	} {
		b, err := json.Marshal(ev.toRecord(now, "db", owner))
		if err != nil {
			t.Fatal(err)
		}
		if err := ocsfcheck.Check(b); err != nil {
			t.Errorf("%+v: %s\n%s", ev, err, b)
		}
	}
}
