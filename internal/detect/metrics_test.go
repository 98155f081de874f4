package detect

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
)

func TestMetricsPassPromlintOverHTTP(t *testing.T) {
	reg := metrics.NewRegistry()
	m, err := NewMetrics(reg, []string{"ops", "pager"})
	if err != nil {
		t.Fatal(err)
	}
	// Exercise every series once.
	clk := newClock()
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Metrics: m, Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, clk, every(12, 0, time.Second, func(i int) ev { return r2ev(denyFlow("198.51.100.1", "10.0.0.2", i+1)) }))
	_ = e.Write(*denyFlow("198.51.100.1", "10.0.0.2", 1))
	_ = e.Write(*denyFlow("198.51.100.1", "10.0.0.2", 1)) // dropped
	m.delivery("ops", ResultDelivered)
	m.success("ops", float64(t0.Unix()))
	m.retry("pager")
	m.depth("pager", 3)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown(context.Background())

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	metricstest.Lint(t, string(body))
	fams := metricstest.Parse(t, string(body))
	for _, want := range []string{
		"moat_detect_records_dropped_total", "moat_detect_alerts_total", "moat_alert_deliveries_total",
		"moat_alert_delivery_retries_total", "moat_alert_queue_depth", "moat_alert_last_delivery_timestamp_seconds", "moat_alert_delivery_failures_total",
	} {
		if fams[want] == nil {
			t.Errorf("metric %s not exposed:\n%s", want, body)
		}
	}
	if _, err := NewMetrics(reg, nil); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}
