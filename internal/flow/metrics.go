package flow

import "github.com/prometheus/client_golang/prometheus"

// FuncCollector exposes values read at scrape time. The label sets are
// fixed, so the metrics stay bounded.
type FuncCollector []FuncMetric

// FuncMetric is one metric of a FuncCollector: make it with CounterFunc or
// GaugeFunc.
type FuncMetric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func() float64
}

func (c FuncCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c {
		ch <- m.desc
	}
}

func (c FuncCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		if pm, err := prometheus.NewConstMetric(m.desc, m.typ, m.val()); err == nil {
			ch <- pm
		}
	}
}

// CounterFunc is a counter without labels whose value f reads.
func CounterFunc(name, help string, f func() uint64) FuncMetric {
	return FuncMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, func() float64 { return float64(f()) }}
}

// GaugeFunc is a gauge without labels whose value f reads.
func GaugeFunc(name, help string, f func() float64) FuncMetric {
	return FuncMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, f}
}

// Collector exposes the spool's depth and losses to Prometheus.
func (s *Spool) Collector() prometheus.Collector {
	return FuncCollector{
		GaugeFunc("moat_flow_spool_records", "Flow records waiting in the on-disk spool.", func() float64 { return float64(s.Stats().Records) }),
		GaugeFunc("moat_flow_spool_bytes", "Bytes the flow spool occupies on disk.", func() float64 { return float64(s.Stats().Bytes) }),
		CounterFunc("moat_flow_spool_dropped_records_total", "Flow records lost because the spool was full or a write failed.", s.dropped.Load),
		CounterFunc("moat_flow_spool_corrupt_frames_total", "Torn or unreadable spool frames discarded.", s.corrupt.Load),
	}
}

// Collector exposes the shipper's delivery counters to Prometheus.
func (s *Shipper) Collector() prometheus.Collector {
	return FuncCollector{
		CounterFunc("moat_flow_shipper_sent_records_total", "Flow records the server accepted.", s.sent.Load),
		CounterFunc("moat_flow_shipper_spooled_records_total", "Flow records written to the spool.", s.spooled.Load),
		CounterFunc("moat_flow_shipper_dropped_records_total", "Flow records lost for want of a spool or room in it.", s.dropped.Load),
		CounterFunc("moat_flow_shipper_rejected_records_total", "Invalid flow records refused.", s.rejected.Load),
		CounterFunc("moat_flow_shipper_send_errors_total", "Failed sends of flow batches.", s.sendErrs.Load),
	}
}
