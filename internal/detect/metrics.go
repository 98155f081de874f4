package detect

import (
	"fmt"

	"moat/internal/metrics"
)

// Delivery results, the values of the "result" label.
const (
	ResultDelivered = "delivered" // the sink accepted the alert
	ResultFailed    = "failed"    // every attempt failed, or the sink refused it for good
	ResultDropped   = "dropped"   // the sink's queue was full
)

// Metrics counts what detection and alert delivery do. Label sets are
// bounded: rules and statuses are fixed lists, sinks come from the config.
// A nil *Metrics counts nothing.
type Metrics struct {
	recordsDropped *metrics.CounterVec
	alerts         *metrics.CounterVec
	deliveries     *metrics.CounterVec
	retries        *metrics.CounterVec
	queueDepth     *metrics.GaugeVec
	lastSuccess    *metrics.GaugeVec
	failures       *metrics.CounterVec
}

// Sink kinds the failures metric names, beside the sink types: a Sink
// that is not an HTTPSink.
const kindOther = "other"

// NewMetrics registers the detection and delivery metrics with reg and
// starts every series of the given sinks at zero, so dashboards see them
// before the first alert.
func NewMetrics(reg *metrics.Registry, sinks []string) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("detect: metrics need a registerer")
	}
	m := &Metrics{
		recordsDropped: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_detect_records_dropped_total",
			Help: fmt.Sprintf("Flow records and audit entries the detection engine dropped because its queue was full, by the node that wrote them (empty for audit entries, %s past the first %d nodes).", OtherNodes, MaxDropNodes),
		}, "node"),
		alerts: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_detect_alerts_total",
			Help: "Alerts raised by detection rules, by rule and status (firing or resolved).",
		}, "rule", "status"),
		deliveries: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_alert_deliveries_total",
			Help: "Alert deliveries by sink and result (delivered, failed, dropped).",
		}, "sink", "result"),
		retries: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_alert_delivery_retries_total",
			Help: "Delivery attempts after the first, by sink.",
		}, "sink"),
		queueDepth: metrics.NewGaugeVec(metrics.Opts{
			Name: "moat_alert_queue_depth",
			Help: "Alerts waiting for delivery, by sink.",
		}, "sink"),
		lastSuccess: metrics.NewGaugeVec(metrics.Opts{
			Name: "moat_alert_last_delivery_timestamp_seconds",
			Help: "Unix time of the last successful delivery, by sink.",
		}, "sink"),
		failures: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_alert_delivery_failures_total",
			Help: "Failed deliveries by receiver kind (slack, pagerduty, alertmanager, webhook): an alert given up after its attempts, or a re-send of the firing alerts to Alertmanager that did not go through (the next re-send tries again).",
		}, "kind"),
	}
	for _, c := range []metrics.Collector{m.recordsDropped, m.alerts, m.deliveries, m.retries, m.queueDepth, m.lastSuccess, m.failures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("detect: register metrics: %w", err)
		}
	}
	for _, r := range []string{RuleScan, RuleDenyBurst, RuleHandshake, RuleRevoked, RuleNewEdge, RuleWAFSpike, RulePolicyWidened, RuleAuditWouldDeny, RuleEgressDenied} {
		for _, st := range []Status{StatusFiring, StatusResolved} {
			m.alerts.WithLabelValues(r, string(st))
		}
	}
	for _, k := range []string{SinkSlack, SinkPagerDuty, SinkAlertmanager, SinkWebhook} {
		m.failures.WithLabelValues(k)
	}
	for _, s := range sinks {
		for _, r := range []string{ResultDelivered, ResultFailed, ResultDropped} {
			m.deliveries.WithLabelValues(s, r)
		}
		m.retries.WithLabelValues(s)
		m.queueDepth.WithLabelValues(s)
	}
	return m, nil
}

// engineDropped counts a record of node dropped unevaluated. Node names
// are those of the cluster's nodes, which only administrators add, the
// first MaxDropNodes to lose records (OtherNodes for the rest).
func (m *Metrics) engineDropped(node string) {
	if m != nil {
		m.recordsDropped.WithLabelValues(node).Inc()
	}
}

func (m *Metrics) alertRaised(a Alert) {
	if m != nil && a.Rule != RuleTest {
		m.alerts.WithLabelValues(a.Rule, string(a.Status)).Inc()
	}
}

func (m *Metrics) delivery(sink, result string) {
	if m != nil {
		m.deliveries.WithLabelValues(sink, result).Inc()
	}
}

func (m *Metrics) retry(sink string) {
	if m != nil {
		m.retries.WithLabelValues(sink).Inc()
	}
}

func (m *Metrics) depth(sink string, n int) {
	if m != nil {
		m.queueDepth.WithLabelValues(sink).Set(float64(n))
	}
}

func (m *Metrics) success(sink string, unix float64) {
	if m != nil {
		m.lastSuccess.WithLabelValues(sink).Set(unix)
	}
}

// failed counts a failed delivery to a sink of kind.
func (m *Metrics) failed(kind string) {
	if m != nil {
		m.failures.WithLabelValues(kind).Inc()
	}
}
