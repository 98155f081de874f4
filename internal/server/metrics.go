package server

import (
	"strings"

	"moat/internal/metrics"
)

// metrics counts what the control plane does. Label values come from fixed
// sets (actions, kinds, results), so series stay bounded.
type serverMetrics struct {
	calls       *metrics.CounterVec
	refused     *metrics.CounterVec
	flowRefused *metrics.CounterVec
	issued      *metrics.CounterVec
	watches     *metrics.Gauge
	shed        *metrics.Counter
}

func newMetrics(reg *metrics.Registry) (*serverMetrics, error) {
	m := &serverMetrics{
		calls: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_server_calls_total", Help: "Audited control-plane calls (joins and admin calls) by action and result; \"unaudited\" counts calls refused because their intent could not be recorded.",
		}, "action", "result"),
		refused: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_server_refused_total", Help: "Calls refused before they were authorized (summarised in the audit log once a window), by action and reason.",
		}, "action", "reason"),
		flowRefused: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_server_flow_records_refused_total", Help: "Flow records left out of a batch, by reason (too_large, malformed, invalid, not_this_node).",
		}, "reason"),
		issued: metrics.NewCounterVec(metrics.Opts{
			Name: "moat_server_certificates_issued_total", Help: "Certificates signed, by identity kind.",
		}, "kind"),
		watches: metrics.NewGauge(metrics.Opts{
			Name: "moat_server_watch_streams", Help: "Agents following the watch stream now.",
		}),
		shed: metrics.NewCounter(metrics.Opts{
			Name: "moat_server_connections_shed_total", Help: "API connections closed because too many were in their handshake or before their first request, or held without a client certificate (256 of each from one address or IPv6 /64, 8192 of each in all), or by one identity (256).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []metrics.Collector{m.calls, m.refused, m.flowRefused, m.issued, m.watches, m.shed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// resultClass folds an audit result into ok, denied or error.
func resultClass(result string) string {
	switch {
	case result == "ok":
		return "ok"
	case strings.HasPrefix(result, "denied"):
		return "denied"
	}
	return "error"
}
