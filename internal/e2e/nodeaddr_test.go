package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
)

// TestNodeCannotNameServicesByAddress: a record's endpoint with no
// SPIFFE ID, service name or name is queried, summed and drawn under its
// address, and the dashboard draws an address that is no address as the
// service of that name. A node that runs neither api nor db writes a
// record whose addresses are "api" and "db": it must be refused, and no
// api → db edge appear in the graph the control plane sums for the
// dashboard.
func TestNodeCannotNameServicesByAddress(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	c.startAgent("n3")
	n3 := c.nodeClient("n3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	forged := flowRecord("by-address-1", "api", "db", 999999999)
	forged.SrcEndpoint = &flow.Endpoint{IP: "api"}
	forged.DstEndpoint = &flow.Endpoint{IP: "db", Port: 5432}
	if cols := flow.ColumnsOf(&forged); cols.Src != "api" || cols.Dst != "db" {
		t.Fatalf("the record's columns %+v do not name api and db; the test tests nothing", cols)
	}
	var ack api.FlowAck
	if err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{forged}, &ack); err != nil {
		t.Fatal(err)
	}
	if ack.Stored != 0 || ack.Refused != 1 {
		t.Errorf("ack %+v: a record whose addresses are service names was stored", ack)
	}
	q := api.FlowValues(flow.Filter{Class: flow.ClassNetworkActivity, Since: time.Now().Add(-time.Hour)}, 0)
	var g api.FlowGraph
	if err := c.call(http.MethodGet, api.PathFlowGraph+"?"+q.Encode(), nil, &g); err != nil {
		t.Fatal(err)
	}
	for _, e := range g.Edges {
		if e.Src == "api" || e.Dst == "db" {
			t.Errorf("the graph holds the forged edge %+v", e)
		}
	}

	t.Log("a record naming real addresses is stored")
	real := flowRecord("by-address-2", "api", "db", 1)
	real.SrcEndpoint = &flow.Endpoint{IP: "198.51.100.7"}
	real.DstEndpoint = &flow.Endpoint{IP: "2001:db8::1", Port: 5432}
	if err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{real}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
}
