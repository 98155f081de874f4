package server

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics counts what the control plane does. Label values come from fixed
// sets (actions, kinds, results), so series stay bounded.
type metrics struct {
	calls       *prometheus.CounterVec
	refused     *prometheus.CounterVec
	flowRefused *prometheus.CounterVec
	issued      *prometheus.CounterVec
	watches     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_server_calls_total", Help: "Audited control-plane calls (joins and admin calls) by action and result; \"unaudited\" counts calls refused because their intent could not be recorded.",
		}, []string{"action", "result"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_server_refused_total", Help: "Calls refused before they were authorized (summarised in the audit log once a window), by action and reason.",
		}, []string{"action", "reason"}),
		flowRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_server_flow_records_refused_total", Help: "Flow records left out of a batch, by reason (too_large, malformed, invalid, not_this_node).",
		}, []string{"reason"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_server_certificates_issued_total", Help: "Certificates signed, by identity kind.",
		}, []string{"kind"}),
		watches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "moat_server_watch_streams", Help: "Agents following the watch stream now.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.refused, m.flowRefused, m.issued, m.watches} {
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
