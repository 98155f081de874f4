package detect

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestMetricsPassPromlintOverHTTP(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
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
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Shutdown(context.Background())

	// Ask for the text format: promlint reads that or protobuf, and the
	// text is what a person would see.
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	problems, err := promlint.New(resp.Body).Lint()
	if err != nil {
		t.Fatalf("lint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	n, err := testutilGather(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"moat_detect_records_dropped_total", "moat_detect_alerts_total", "moat_alert_deliveries_total",
		"moat_alert_delivery_retries_total", "moat_alert_queue_depth", "moat_alert_last_delivery_timestamp_seconds",
	} {
		if !strings.Contains(n, want+"\n") {
			t.Errorf("metric %s not exposed (have %s)", want, n)
		}
	}
	if _, err := NewMetrics(reg, nil); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

func testutilGather(reg *prometheus.Registry) (string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(mf.GetName() + "\n")
	}
	return b.String(), nil
}
