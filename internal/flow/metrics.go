package flow

import "moat/internal/metrics"

// Collector exposes the spool's depth and losses.
func (s *Spool) Collector() metrics.Collector {
	return metrics.Group{
		metrics.GaugeFunc("moat_flow_spool_records", "Flow records waiting in the on-disk spool.", func() float64 { return float64(s.Stats().Records) }),
		metrics.GaugeFunc("moat_flow_spool_bytes", "Bytes the flow spool occupies on disk.", func() float64 { return float64(s.Stats().Bytes) }),
		metrics.CounterFunc("moat_flow_spool_dropped_records_total", "Flow records lost because the spool was full or a write failed.", s.dropped.Load),
		metrics.CounterFunc("moat_flow_spool_corrupt_frames_total", "Torn or unreadable spool frames discarded.", s.corrupt.Load),
	}
}

// Collector exposes the shipper's delivery counters.
func (s *Shipper) Collector() metrics.Collector {
	return metrics.Group{
		metrics.CounterFunc("moat_flow_shipper_sent_records_total", "Flow records the server accepted.", s.sent.Load),
		metrics.CounterFunc("moat_flow_shipper_spooled_records_total", "Flow records written to the spool.", s.spooled.Load),
		metrics.CounterFunc("moat_flow_shipper_dropped_records_total", "Flow records lost for want of a spool or room in it.", s.dropped.Load),
		metrics.CounterFunc("moat_flow_shipper_rejected_records_total", "Invalid flow records refused.", s.rejected.Load),
		metrics.CounterFunc("moat_flow_shipper_send_errors_total", "Failed sends of flow batches.", s.sendErrs.Load),
	}
}
