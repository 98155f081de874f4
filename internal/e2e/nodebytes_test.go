package e2e

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
)

// TestNodeCannotBreakSums: a compromised node writes records about its
// own service whose byte counts add up past what a 64-bit sum holds. The
// control plane's graph and talkers, which sum every record of the
// window for the dashboard and `moat flows --top talkers`, must still
// answer, for the other nodes' records too, with no sum wrapped round
// to a negative one.
func TestNodeCannotBreakSums(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	c.startAgent("n1")
	c.startAgent("n2")
	n1, n2 := c.nodeClient("n1"), c.nodeClient("n2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var ack api.FlowAck
	if err := n2.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{flowRecord("honest-1", "web", "db", 1234)}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
	t.Log("counts past a record's bound, or below zero, are refused")
	var bad []flow.Record
	for i, b := range []int64{math.MaxInt64, flow.MaxTrafficBytes + 1, -1} {
		bad = append(bad, flowRecord("bad-"+itoa(i), "api", "cache", b))
	}
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, bad, &ack); err != nil || ack.Refused != len(bad) {
		t.Fatalf("ack %+v, %v: want every record refused", ack, err)
	}
	t.Log("n1 sends records within the bound whose sum is past 2^63, in rows of the rollup of their own")
	const n = 8200 // × 2^50 > 2^63
	forged := make([]flow.Record, 0, n)
	for i := range n {
		r := flowRecord("huge-"+itoa(i), "api", "cache", flow.MaxTrafficBytes)
		r.FirewallRule.Name += itoa(i)
		forged = append(forged, r)
	}
	if err := n1.Call(ctx, http.MethodPost, api.PathFlows, forged, &ack); err != nil || ack.Stored != n {
		t.Fatalf("ack %+v, %v", ack, err)
	}

	q := api.FlowValues(flow.Filter{Class: flow.ClassNetworkActivity, Since: time.Now().Add(-time.Hour)}, 0)
	var g api.FlowGraph
	if err := c.call(http.MethodGet, api.PathFlowGraph+"?"+q.Encode(), nil, &g); err != nil {
		t.Fatalf("the graph: %v", err)
	}
	found := false
	for _, e := range g.Edges {
		if e.Bytes < 0 {
			t.Errorf("edge %+v: negative bytes", e)
		}
		if e.Dst == "spiffe://example.org/svc/db" && e.Bytes == 1234 {
			found = true
		}
		if e.Dst == "spiffe://example.org/svc/cache" && e.Bytes != math.MaxInt64 {
			t.Errorf("edge %+v: want its bytes held at 2^63-1", e)
		}
	}
	if !found {
		t.Errorf("n2's web → db edge is missing from the graph: %+v", g.Edges)
	}
	var talkers api.FlowTalkers
	if err := c.call(http.MethodGet, api.PathFlowTalkers+"?"+q.Encode(), nil, &talkers); err != nil {
		t.Fatalf("talkers: %v", err)
	}
	for _, tk := range talkers.Talkers {
		if tk.Bytes < 0 {
			t.Errorf("talker %+v: negative bytes", tk)
		}
	}
}
