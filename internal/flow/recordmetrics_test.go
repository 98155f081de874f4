package flow

import (
	"strings"
	"testing"
	"time"

	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
)

func TestMetricsCountRecords(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	allow := Header(ClassNetworkActivity, ActivityClose, "test", now)
	allow.Unmapped = &Moat{Verdict: VerdictAllow}
	allow.FirewallRule = &Rule{Name: "web-to-api"}
	allow.Traffic = &Traffic{BytesIn: 10, BytesOut: 32}
	deny := Header(ClassNetworkActivity, ActivityRefuse, "test", now)
	deny.Unmapped = &Moat{Verdict: VerdictDeny}
	deny.FirewallRule = &Rule{Name: "default-deny"}
	hs := Header(ClassNetworkActivity, ActivityFail, "test", now)
	hs.Unmapped = &Moat{Kind: "handshake", Reason: "identity: identity revoked: x"}
	waf := Header(ClassHTTPActivity, 1, "test", now)
	waf.Unmapped = &Moat{Kind: "waf", Rules: []string{"942100"}}
	// A summary of a flood (Gate) counts as the refusals it stands for.
	denySum := deny
	denySum.Unmapped = &Moat{Verdict: VerdictDeny, Suppressed: 40}
	hsSum := hs
	hsSum.Unmapped = &Moat{Kind: "handshake", Reason: hs.Unmapped.Reason, Suppressed: 7}
	for _, r := range []Record{allow, allow, deny, denySum, hs, hsSum, waf} {
		m.Write(r)
	}
	if got := m.decisions.WithLabelValues("allow", "web-to-api").Value(); got != 2 {
		t.Errorf("allow decisions = %v, want 2", got)
	}
	if got := m.decisions.WithLabelValues("deny", "default-deny").Value(); got != 41 {
		t.Errorf("deny decisions = %v, want 41 (one, and a summary of 40)", got)
	}
	if got := m.bytes.WithLabelValues("out").Value(); got != 64 {
		t.Errorf("bytes out = %v, want 64", got)
	}
	if got := m.handshakes.WithLabelValues("revoked").Value(); got != 8 {
		t.Errorf("revoked handshakes = %v, want 8 (one, and a summary of 7)", got)
	}
	if got := m.waf.WithLabelValues("waf:942100").Value(); got != 1 {
		t.Errorf("waf interruptions = %v, want 1", got)
	}
	metricstest.Lint(t, metricstest.Text(t, reg))
}

func TestMetricsRuleLabelsBounded(t *testing.T) {
	m, err := NewMetrics(metrics.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < maxRuleLabels+50; i++ {
		m.ruleLabel(strings.Repeat("r", 1) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if got := m.ruleLabel("one-more"); got != "other" {
		t.Fatalf("label %q past the cap, want other", got)
	}
}
