package flowstore

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
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
	reg := prometheus.NewPedanticRegistry()
	for _, c := range []prometheus.Collector{sp.Collector(), sh.Collector(), st.Collector()} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
	want := `# HELP moat_flow_spool_dropped_records_total Flow records lost because the spool was full or a write failed.
# TYPE moat_flow_spool_dropped_records_total counter
moat_flow_spool_dropped_records_total ` + strconv.Itoa(len(recs)-kept) + `
# HELP moat_flow_store_duplicate_records_total Flow records ignored because they were already stored.
# TYPE moat_flow_store_duplicate_records_total counter
moat_flow_store_duplicate_records_total 1
`
	if kept == len(recs) || kept == 0 {
		t.Fatalf("kept %d of %d: the bound was not exercised", kept, len(recs))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "moat_flow_spool_dropped_records_total", "moat_flow_store_duplicate_records_total"); err != nil {
		t.Fatal(err)
	}
}
