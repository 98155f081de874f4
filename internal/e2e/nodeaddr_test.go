package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/flow"
)

// TestNodeCannotNameServicesByAddress: a record's side is queried, summed
// and drawn under its SPIFFE ID, else its service name, else its name,
// else its address, and the dashboard draws a key that is a service's
// SPIFFE ID, or neither a SPIFFE ID nor an address, as that service. A
// node that runs neither api nor db writes records whose keys name them
// so, by address, by an ID that is no SPIFFE ID and by a name that is
// one: each must be refused, and no api → db edge appear in the graph
// the control plane sums for the dashboard. A refused handshake's record
// written as older agents wrote it, its peer named by the SPIFFE ID it
// claimed, is stored with the claim kept apart, where no key reads it.
func TestNodeCannotNameServicesByAddress(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	c.startAgent("n3")
	n3 := c.nodeClient("n3")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var ack api.FlowAck
	for _, c := range []struct {
		what     string
		src, dst flow.Endpoint
	}{
		{"addresses that are names", flow.Endpoint{IP: "api"}, flow.Endpoint{IP: "db", Port: 5432}},
		{"IDs that are names", flow.Endpoint{UID: "api"}, flow.Endpoint{UID: "db", Port: 5432}},
		{"a zone that is a line", flow.Endpoint{IP: "fe80::1%x 10.0.0.2\n2 123456789012 n1"}, flow.Endpoint{IP: "10.0.0.2", Port: 5432}},
		{"names", flow.Endpoint{Name: "api"}, flow.Endpoint{Name: "db", Port: 5432}},
		{"names that are SPIFFE IDs", flow.Endpoint{Name: "spiffe://example.org/svc/api"}, flow.Endpoint{Name: "spiffe://example.org/svc/db", Port: 5432}},
	} {
		forged := flowRecord("forged-"+c.what, "api", "db", 999999999)
		forged.SrcEndpoint, forged.DstEndpoint = &c.src, &c.dst
		ack = api.FlowAck{}
		if err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{forged}, &ack); err != nil {
			t.Fatal(err)
		}
		if ack.Stored != 0 || ack.Refused != 1 {
			t.Errorf("%s: ack %+v: n3's record about api and db was stored", c.what, ack)
		}
	}
	t.Log("a refused handshake as older agents recorded it: its peer named by the ID it claimed")
	older := revokedFrom("older-claim", "198.51.100.9", "db")
	older.DstEndpoint = &flow.Endpoint{IP: "10.0.0.3", Port: 5432}
	older.SrcEndpoint.Name = "spiffe://example.org/svc/api"
	if err := n3.Call(ctx, http.MethodPost, api.PathFlows, []flow.Record{older}, &ack); err != nil || ack.Stored != 1 {
		t.Fatalf("ack %+v, %v: the older agent's record was not stored", ack, err)
	}
	var stored api.FlowRecords
	q := api.FlowValues(flow.Filter{Class: flow.ClassNetworkActivity, Since: time.Now().Add(-time.Hour)}, 0)
	if err := c.call(http.MethodGet, api.PathFlowQuery+"?"+q.Encode(), nil, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Records) != 1 || stored.Records[0].Unmapped.Claimed != "spiffe://example.org/svc/api" || stored.Records[0].SrcEndpoint.Name != "" {
		t.Fatalf("stored %+v: want the older record with its claim apart from its source", stored.Records)
	}

	var g api.FlowGraph
	td := spiffeid.RequireTrustDomainFromString("example.org")
	if err := c.call(http.MethodGet, api.PathFlowGraph+"?"+q.Encode(), nil, &g); err != nil {
		t.Fatal(err)
	}
	for _, e := range g.Edges {
		if flow.KeyService(e.Src, td) == "api" || flow.KeyService(e.Dst, td) == "db" {
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
