package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/policy"
)

// The reads a dashboard needs beyond flows and the audit log: the graph of
// a window summed here (so a page over a thousand services gets pairs, not
// records) and the live certificates for an expiry timeline.
func (s *Server) dashboardRoutes(t *routeTable) {
	admin := t.admin
	admin("GET", api.PathFlowGraph, api.RoleViewer, "flows.graph", s.handleFlowGraph)
	admin("GET", api.PathCerts, api.RoleViewer, "certs.list", s.handleCerts)
}

// handleFlowGraph answers the edges of the records matching the filter,
// heaviest first, at most limit of them (api.MaxGraphEdges when zero).
func (s *Server) handleFlowGraph(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	if _, err := s.flowStore(); err != nil {
		return nil, "", err
	}
	f, _, err := api.ParseFlowValues(r.URL.Query())
	if err != nil {
		return nil, "", errorf(http.StatusBadRequest, "%v", err)
	}
	// Until stays open when the caller left it so: the hour under way is
	// then summed from the rollup like the others, not record by record.
	until := s.now().UTC()
	if !f.Until.IsZero() && f.Until.Before(until) {
		until = f.Until
	}
	want := f.Limit
	if want == 0 || want > api.MaxGraphEdges {
		want = api.MaxGraphEdges
	}
	f.Limit = want + 1
	// The whole cluster's records: this server's and every member's.
	cl, err := s.ClusterFlows(ctx, api.PeerFlowQuery{Filter: f, Edges: true})
	if err != nil {
		return nil, "", err
	}
	edges := cl.Edges
	if edges == nil {
		edges = []flow.Edge{}
	}
	out := api.FlowGraph{Edges: edges, Until: f.Until, Servers: cl.Servers, Missing: cl.Missing}
	if len(edges) > want {
		out.Edges, out.Truncated = edges[:want], true
	}
	return out, "", nil
}

// handleCerts lists the live service SVIDs (as recorded when signed, so
// that revoking a node finds them) and administrators' certificates.
func (s *Server) handleCerts(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	now := s.now()
	out := api.CertInventory{Certs: []api.IssuedCert{}}
	kvs, _, err := s.st.List(ctx, prefixIssued)
	if err != nil {
		return nil, "", err
	}
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) != nil || rec.Service == "" || !now.Before(rec.Expires) {
			continue // expired, or a record of an older version
		}
		out.Certs = append(out.Certs, api.IssuedCert{Kind: "svid", Name: rec.Service, Node: rec.Node, Serial: rec.Serial, Expires: rec.Expires.UTC()})
	}
	kvs, _, err = s.st.List(ctx, prefixAdmin)
	if err != nil {
		return nil, "", err
	}
	for _, kv := range kvs {
		var rec adminRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, "", err
		}
		if rec.Cert == nil || !now.Before(rec.Cert.NotAfter) {
			continue
		}
		name := strings.TrimPrefix(kv.Key, prefixAdmin)
		out.Certs = append(out.Certs, api.IssuedCert{Kind: "admin", Name: name, Role: rec.Role, Serial: rec.Cert.Serial, Expires: rec.Cert.NotAfter.UTC()})
	}
	sort.Slice(out.Certs, func(i, j int) bool {
		a, b := out.Certs[i], out.Certs[j]
		if !a.Expires.Equal(b.Expires) {
			return a.Expires.Before(b.Expires)
		}
		return a.Serial < b.Serial
	})
	return out, "", nil
}

// policyChanges is d in the parts a client shows.
func policyChanges(d policy.Delta) *api.PolicyChanges {
	out := &api.PolicyChanges{OldVersion: d.OldVersion, NewVersion: d.NewVersion, ModeChange: d.ModeChange, PeerModes: d.PeerModes}
	for _, r := range d.Added {
		out.Added = append(out.Added, r.Name)
	}
	for _, r := range d.Removed {
		out.Removed = append(out.Removed, r.Name)
	}
	for _, c := range d.Changed {
		out.Changed = append(out.Changed, c.New.Name)
	}
	edges := func(cs []policy.EdgeChange) []api.EdgeChange {
		var out []api.EdgeChange
		for _, c := range cs {
			out = append(out, api.EdgeChange{Src: c.Edge.Src, Dst: c.Edge.Dst, Port: c.Edge.Port,
				OldVerdict: c.Old.Verdict(), OldRule: c.Old.Rule, NewVerdict: c.New.Verdict(), NewRule: c.New.Rule})
		}
		return out
	}
	out.NowDenied, out.NowAudited, out.NowAllowed = edges(d.NowDenied), edges(d.NowAudited), edges(d.NowAllowed)
	return out
}
