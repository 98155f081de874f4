package flow

import "github.com/prometheus/client_golang/prometheus"

// funcCollector exposes values read at scrape time. The label sets are
// fixed, so the metrics stay bounded.
type funcCollector []funcMetric

type funcMetric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func() float64
}

func (c funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c {
		ch <- m.desc
	}
}

func (c funcCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		if pm, err := prometheus.NewConstMetric(m.desc, m.typ, m.val()); err == nil {
			ch <- pm
		}
	}
}

func counter(name, help string, f func() uint64) funcMetric {
	return funcMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.CounterValue, func() float64 { return float64(f()) }}
}

func gauge(name, help string, f func() float64) funcMetric {
	return funcMetric{prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, f}
}

// Collector exposes the spool's depth and losses to Prometheus.
func (s *Spool) Collector() prometheus.Collector {
	return funcCollector{
		gauge("moat_flow_spool_records", "Flow records waiting in the on-disk spool.", func() float64 { return float64(s.Stats().Records) }),
		gauge("moat_flow_spool_bytes", "Bytes the flow spool occupies on disk.", func() float64 { return float64(s.Stats().Bytes) }),
		counter("moat_flow_spool_dropped_records_total", "Flow records lost because the spool was full or a write failed.", s.dropped.Load),
		counter("moat_flow_spool_corrupt_frames_total", "Torn or unreadable spool frames discarded.", s.corrupt.Load),
	}
}

// Collector exposes the shipper's delivery counters to Prometheus.
func (s *Shipper) Collector() prometheus.Collector {
	return funcCollector{
		counter("moat_flow_shipper_sent_records_total", "Flow records the server accepted.", s.sent.Load),
		counter("moat_flow_shipper_spooled_records_total", "Flow records written to the spool.", s.spooled.Load),
		counter("moat_flow_shipper_dropped_records_total", "Flow records lost for want of a spool or room in it.", s.dropped.Load),
		counter("moat_flow_shipper_rejected_records_total", "Invalid flow records refused.", s.rejected.Load),
		counter("moat_flow_shipper_send_errors_total", "Failed sends of flow batches.", s.sendErrs.Load),
	}
}

// Collector exposes the store's ingestion counters to Prometheus.
func (s *Store) Collector() prometheus.Collector {
	return funcCollector{
		counter("moat_flow_store_stored_records_total", "Flow records stored.", s.stored.Load),
		counter("moat_flow_store_duplicate_records_total", "Flow records ignored because they were already stored.", s.dups.Load),
		counter("moat_flow_store_expired_records_total", "Flow records ignored because they were older than the retention.", s.expired.Load),
		counter("moat_flow_store_future_records_total", "Flow records ignored because their time was too far ahead of the clock.", s.future.Load),
		counter("moat_flow_store_follow_dropped_records_total", "Flow records slow followers missed.", s.dropped.Load),
		gauge("moat_flow_store_open_partitions", "Day partitions open now (at most the store's MaxOpen).", func() float64 { return float64(s.OpenPartitions()) }),
		gauge("moat_flow_store_damaged_partitions", "Day partitions that failed their check at open and were set aside.", func() float64 { return float64(len(s.DamagedPartitions())) }),
	}
}
