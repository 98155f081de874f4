package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/flow"
	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
)

// TestNodeCannotStarveDetection: a compromised node sends, within its
// flow rates, more records than the detection engine holds waiting. Its
// excess is dropped and counted as its own, and another node's record
// that raises an alert is still evaluated and raises it.
func TestNodeCannotStarveDetection(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	// The engine holds 10,000 by default, as many as one batch carries;
	// a tenth keeps the test light, the mechanism is the same.
	const queue = 1000
	got := &alerts{}
	reg := metrics.NewRegistry()
	dm, err := detect.NewMetrics(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := detect.New(detect.Config{Rules: detect.Rules{detect.RuleRevoked: detect.DefaultRules()[detect.RuleRevoked]}, Now: c.clk.Now, Notifier: got, Metrics: dm, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	c.restartWith(eng)
	c.startAgent("n1")
	c.startAgent("n2")
	n1, n2 := c.nodeClient("n1"), c.nodeClient("n2")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Log("the engine is busy: it evaluates nothing until both nodes have sent")
	t.Log("n1 sends a full queue of records about its own api, then a hundred more")
	const extra = 100
	for i, n := range []int{queue, extra} {
		batch := make([]flow.Record, 0, n)
		for j := range n {
			batch = append(batch, flowRecord(fmt.Sprintf("flood-%d-%d", i, j), "api", "db", 1))
		}
		var ack api.FlowAck
		if err := n1.Call(ctx, http.MethodPost, api.PathFlows, batch, &ack); err != nil || ack.Stored != n {
			t.Fatalf("ack %+v, %v: want n1's records about its own api stored", ack, err)
		}
	}
	t.Log("then n2 reports a revoked identity used against db")
	var ack api.FlowAck
	if err := n2.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{revokedFrom("real-1", "192.0.2.77", "db")}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}

	go eng.Run(ctx)
	eventually(t, "the engine to evaluate a full queue", func() bool { return eng.Stats().Processed >= queue })
	if st := eng.Stats(); st.Processed != queue {
		t.Fatalf("the engine evaluated %d records; want its queue's %d", st.Processed, queue)
	}
	if !got.fired(detect.RuleRevoked) || got.subject(detect.RuleRevoked) != "192.0.2.77" {
		t.Fatal("n2's revoked identity raised no alert: its record was dropped behind n1's")
	}

	t.Log("what was dropped is n1's: its hundred (and what its agent sent), and one more to make room for n2's")
	st := eng.Stats()
	if st.Dropped < extra+1 || st.DroppedByNode["n1"] != st.Dropped || len(st.DroppedByNode) != 1 {
		t.Fatalf("dropped %d, by node %v; want at least %d, all n1's", st.Dropped, st.DroppedByNode, extra+1)
	}
	var text strings.Builder
	if err := reg.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	fam := metricstest.Parse(t, text.String())["moat_detect_records_dropped_total"]
	if fam == nil {
		t.Fatalf("no moat_detect_records_dropped_total:\n%s", text.String())
	}
	for _, m := range fam.GetMetric() {
		want := 0.0
		for _, l := range m.GetLabel() {
			if l.GetName() == "node" && l.GetValue() == "n1" {
				want = float64(st.Dropped)
			}
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("%v: %v dropped, want %v", m.GetLabel(), got, want)
		}
	}
	if len(fam.GetMetric()) != 1 {
		t.Errorf("records dropped for %d nodes, want n1 alone:\n%s", len(fam.GetMetric()), text.String())
	}
}
