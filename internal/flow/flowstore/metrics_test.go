package flowstore

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
)

func TestMetricsLintAndCountLoss(t *testing.T) {
	sp := flowtest.OpenSpool(t, flow.SpoolConfig{MaxBytes: 4096, SegmentBytes: 2048})
	recs := flowtest.Records("m", 20)
	kept, err := sp.Append(recs)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := flow.NewShipper(flow.ShipperConfig{Send: func(context.Context, []flow.Record) error { return nil }, Spool: sp})
	if err != nil {
		t.Fatal(err)
	}
	st := openTestStore(t, StoreConfig{})
	if _, err := st.Ingest(context.Background(), append(recs[:2], recs[0])); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	for _, c := range []metrics.Collector{sp.Collector(), sh.Collector(), st.Collector()} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	text := metricstest.Text(t, reg)
	metricstest.Lint(t, text)
	want := []string{`# HELP moat_flow_spool_dropped_records_total Flow records lost because the spool was full or a write failed.
# TYPE moat_flow_spool_dropped_records_total counter
moat_flow_spool_dropped_records_total ` + strconv.Itoa(len(recs)-kept) + "\n",
		`# HELP moat_flow_store_duplicate_records_total Flow records ignored because they were already stored.
# TYPE moat_flow_store_duplicate_records_total counter
moat_flow_store_duplicate_records_total 1
`}
	if kept == len(recs) || kept == 0 {
		t.Fatalf("kept %d of %d: the bound was not exercised", kept, len(recs))
	}
	for _, fam := range want {
		if !strings.Contains(text, fam) {
			t.Errorf("exposition lacks\n%s\nin\n%s", fam, text)
		}
	}
}
