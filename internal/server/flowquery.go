package server

import (
	"context"
	"net/http"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
)

func (s *Server) flowRoutes(t *routeTable) {
	admin := t.admin
	admin("GET", api.PathFlowQuery, api.RoleViewer, "flows.query", s.handleFlowQuery)
	admin("GET", api.PathFlowTalkers, api.RoleViewer, "flows.talkers", s.handleFlowTalkers)
	admin("GET", api.PathFlowFollow, api.RoleViewer, "flows.follow", s.handleFlowFollow)
}

func (s *Server) flowStore() (*flowstore.Store, error) {
	if s.cfg.Flows == nil {
		return nil, errorf(http.StatusNotFound, "this server keeps no flow records")
	}
	return s.cfg.Flows, nil
}

// flowFilter reads the filter of a flow read; Limit is capped at
// api.MaxFlowRecords (zero asks for that many).
func flowFilter(r *http.Request) (flow.Filter, int, error) {
	f, n, err := api.ParseFlowValues(r.URL.Query())
	if err != nil {
		return f, 0, errorf(http.StatusBadRequest, "%v", err)
	}
	if f.Limit == 0 || f.Limit > api.MaxFlowRecords {
		f.Limit = api.MaxFlowRecords
	}
	return f, n, nil
}

// handleFlowQuery answers the newest records matching the filter. One more
// than asked is read, to say whether the answer is whole.
func (s *Server) handleFlowQuery(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	if _, err := s.flowStore(); err != nil {
		return nil, "", err
	}
	f, _, err := flowFilter(r)
	if err != nil {
		return nil, "", err
	}
	want := f.Limit
	f.Limit++
	// The whole cluster's records: this server's and every member's.
	cl, err := s.ClusterFlows(ctx, api.PeerFlowQuery{Filter: f})
	if err != nil {
		return nil, "", err
	}
	recs := cl.Records
	out := api.FlowRecords{Records: recs, Servers: cl.Servers, Missing: cl.Missing}
	if len(recs) > want {
		out.Records, out.Truncated = recs[len(recs)-want:], true
	}
	if out.Records == nil {
		out.Records = []flow.Record{}
	}
	return out, "", nil
}

func (s *Server) handleFlowTalkers(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	if _, err := s.flowStore(); err != nil {
		return nil, "", err
	}
	f, n, err := flowFilter(r)
	if err != nil {
		return nil, "", err
	}
	if n == 0 {
		n = 10
	}
	n = min(n, api.MaxFlowRecords)
	cl, err := s.ClusterFlows(ctx, api.PeerFlowQuery{Filter: f, Talkers: n})
	if err != nil {
		return nil, "", err
	}
	ts := cl.Talkers
	if ts == nil {
		ts = []flow.Talker{}
	}
	return api.FlowTalkers{Talkers: ts, Servers: cl.Servers, Missing: cl.Missing}, "", nil
}
