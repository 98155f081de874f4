package flowstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"moat/internal/flow"
)

func TestEdges(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			cfg.Dir = t.TempDir()
			s := queryFixture(t, cfg)
			web, api := "spiffe://prod.example/svc/web", "spiffe://prod.example/svc/api"
			db, billing := "spiffe://prod.example/svc/db", "spiffe://prod.example/svc/billing"
			tests := []struct {
				name string
				f    flow.Filter
				want []flow.Edge
			}{
				{"all", flow.Filter{}, []flow.Edge{
					{Src: api, Dst: billing, Verdict: flow.VerdictAllow, Flows: 1, Bytes: 7000},
					{Src: web, Dst: db, Verdict: flow.VerdictAllow, Flows: 2, Bytes: 4000},
					{Src: api, Dst: db, Verdict: flow.VerdictAudit, Flows: 1, Bytes: 500},
					{Src: web, Dst: billing, Verdict: flow.VerdictDeny, Flows: 2},
					{Src: "198.51.100.9", Dst: "web", Verdict: flow.VerdictDeny, Flows: 1},
				}},
				{"limit", flow.Filter{Limit: 1}, []flow.Edge{
					{Src: api, Dst: billing, Verdict: flow.VerdictAllow, Flows: 1, Bytes: 7000},
				}},
				{"deny", flow.Filter{Verdict: flow.VerdictDeny, Class: flow.ClassNetworkActivity}, []flow.Edge{
					{Src: web, Dst: billing, Verdict: flow.VerdictDeny, Flows: 2},
				}},
				// Partial hours come from the records, whole ones from
				// the rollup: both carry the verdict.
				{"since mid-hour", flow.Filter{Since: t0.Add(time.Minute)}, []flow.Edge{
					{Src: api, Dst: billing, Verdict: flow.VerdictAllow, Flows: 1, Bytes: 7000},
					{Src: web, Dst: db, Verdict: flow.VerdictAllow, Flows: 1, Bytes: 3000},
					{Src: api, Dst: db, Verdict: flow.VerdictAudit, Flows: 1, Bytes: 500},
					{Src: web, Dst: billing, Verdict: flow.VerdictDeny, Flows: 2},
					{Src: "198.51.100.9", Dst: "web", Verdict: flow.VerdictDeny, Flows: 1},
				}},
				{"window within one hour", flow.Filter{Since: t0.Add(30 * time.Second), Until: t0.Add(150 * time.Second)}, []flow.Edge{
					{Src: web, Dst: db, Verdict: flow.VerdictAllow, Flows: 1, Bytes: 3000},
					{Src: web, Dst: billing, Verdict: flow.VerdictDeny, Flows: 1},
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := s.Edges(context.Background(), tt.f)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(got, tt.want) {
						t.Fatalf("Edges = %+v\nwant %+v", got, tt.want)
					}
				})
			}
		})
	}
}

// TestEdgeOfAgrees: records added one by one with EdgeOf sum to what
// Edges reads from the store.
func TestEdgeOfAgrees(t *testing.T) {
	for mode, cfg := range storeModes(t) {
		t.Run(mode, func(t *testing.T) {
			cfg.Dir = t.TempDir()
			s := queryFixture(t, cfg)
			recs, err := s.Query(context.Background(), flow.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			sum := map[[3]string]flow.Edge{}
			for i := range recs {
				e := flow.EdgeOf(&recs[i])
				k := [3]string{e.Src, e.Dst, e.Verdict}
				a := sum[k]
				a.Src, a.Dst, a.Verdict = e.Src, e.Dst, e.Verdict
				a.Flows += e.Flows
				a.Bytes += e.Bytes
				sum[k] = a
			}
			edges, err := s.Edges(context.Background(), flow.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(edges) != len(sum) {
				t.Fatalf("Edges = %d edges, EdgeOf sums %d: %+v", len(edges), len(sum), sum)
			}
			for _, e := range edges {
				if got := sum[[3]string{e.Src, e.Dst, e.Verdict}]; got != e {
					t.Errorf("EdgeOf sums %+v, Edges says %+v", got, e)
				}
			}
		})
	}
}
