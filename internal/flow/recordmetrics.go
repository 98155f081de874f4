package flow

import (
	"strings"
	"sync"

	"moat/internal/metrics"
)

// maxRuleLabels bounds the distinct rule names a Metrics labels by; later
// ones are counted under "other", so a policy or rule set with many names
// cannot blow up the series count.
const maxRuleLabels = 256

// Metrics is a Writer that counts records into Prometheus: decisions by
// verdict and rule, bytes, refused handshakes by reason, and security events
// by kind (with WAF interruptions by rule ID). Components that emit records
// wrap their writer with it, so the counters and the records agree; a
// summary counts as the events it stands for, so the counters see a flood
// the Gate summarised whole.
type Metrics struct {
	decisions  *metrics.CounterVec
	bytes      *metrics.CounterVec
	handshakes *metrics.CounterVec
	events     *metrics.CounterVec
	waf        *metrics.CounterVec

	mu    sync.Mutex // guards rules
	rules map[string]bool
}

// NewMetrics registers the counters with reg.
func NewMetrics(reg *metrics.Registry) (*Metrics, error) {
	m := &Metrics{
		decisions: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_authz_decisions_total", Help: "Connection decisions by verdict (allow, deny, audit) and deciding rule.",
		}, "decision", "rule"),
		bytes: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_flow_bytes_total", Help: "Bytes carried by finished connections, by direction as seen by the recording side.",
		}, "direction"),
		handshakes: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_handshake_failures_total", Help: "Refused mutual-TLS handshakes by reason.",
		}, "reason"),
		events: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_security_events_total", Help: "Security events by kind (waf, rate_limit, ip_deny, csrf, ...).",
		}, "kind"),
		waf: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_waf_interruptions_total", Help: "Requests the WAF interrupted, by the first matching rule ID.",
		}, "rule"),
		rules: map[string]bool{},
	}
	for _, c := range []metrics.Collector{m.decisions, m.bytes, m.handshakes, m.events, m.waf} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ruleLabel keeps the label set bounded.
func (m *Metrics) ruleLabel(rule string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rules[rule] {
		return rule
	}
	if len(m.rules) >= maxRuleLabels {
		return "other"
	}
	m.rules[rule] = true
	return rule
}

// handshakeReason folds a refusal message into a few stable categories.
func handshakeReason(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "revoked"):
		return "revoked"
	case strings.Contains(m, "expired"), strings.Contains(m, "not yet valid"):
		return "expired"
	case strings.Contains(m, "unknown authority"):
		return "unknown_authority"
	case strings.Contains(m, "no certificate"), strings.Contains(m, "certificate required"):
		return "no_certificate"
	case strings.Contains(m, "certificate"):
		return "bad_certificate"
	}
	return "other"
}

// Write counts r, a summary as the events it stands for (Record.Events).
func (m *Metrics) Write(r Record) error {
	u, n := r.Unmapped, float64(r.Events())
	if u != nil && u.Kind == "handshake" {
		m.handshakes.WithLabelValues(handshakeReason(u.Reason)).Add(n)
		return nil
	}
	switch r.ClassUID {
	case ClassNetworkActivity:
		if u != nil && u.Verdict != "" {
			rule := "none"
			if r.FirewallRule != nil {
				rule = r.FirewallRule.Name
			}
			m.decisions.WithLabelValues(u.Verdict, m.ruleLabel(rule)).Add(n)
		}
		if r.Traffic != nil {
			m.bytes.WithLabelValues("in").Add(float64(r.Traffic.BytesIn))
			m.bytes.WithLabelValues("out").Add(float64(r.Traffic.BytesOut))
		}
	case ClassHTTPActivity, ClassDetectionFinding:
		if u == nil || u.Kind == "" {
			return nil
		}
		m.events.WithLabelValues(u.Kind).Add(n)
		if u.Kind == "waf" && len(u.Rules) > 0 {
			m.waf.WithLabelValues(m.ruleLabel("waf:" + u.Rules[0])).Add(n)
		}
	}
	return nil
}
