package server

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
)

// followBuffer is how many records a follower may lag before it misses
// some (counted in its frames' Dropped).
const followBuffer = 4096

func (s *Server) flowRoutes(admin func(method, path, role, action string, h func(context.Context, *caller, *http.Request) (any, string, error))) {
	admin("GET", api.PathFlowQuery, api.RoleViewer, "flows.query", s.handleFlowQuery)
	admin("GET", api.PathFlowTalkers, api.RoleViewer, "flows.talkers", s.handleFlowTalkers)
	admin("GET", api.PathFlowFollow, api.RoleViewer, "flows.follow", s.handleFlowFollow)
}

func (s *Server) flowStore() (*flow.Store, error) {
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

// handleFlowFollow streams the newest matching records (Limit of them),
// then every matching record as it is stored, as newline-delimited
// api.FlowFrames with a heartbeat while nothing happens. It subscribes
// before it reads the newest records, so that nothing stored in between is
// missed; a record in both is sent once.
func (s *Server) handleFlowFollow(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	st, err := s.flowStore()
	if err != nil {
		return nil, "", err
	}
	f, _, err := flowFilter(r)
	if err != nil {
		return nil, "", err
	}
	sub, err := st.Follow(f, followBuffer)
	if err != nil {
		return nil, "", err
	}
	recent, err := st.Query(ctx, f)
	if err != nil {
		sub.Close()
		return nil, "", err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer sub.Close()
		s.streamFlows(r.Context(), w, sub, recent)
	}), "", nil
}

func (s *Server) streamFlows(ctx context.Context, w http.ResponseWriter, sub *flow.Subscription, recent []flow.Record) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	send := func(fr api.FlowFrame) bool {
		fr.Dropped = sub.Dropped()
		return enc.Encode(fr) == nil && rc.Flush() == nil
	}
	sent := make(map[string]bool, len(recent))
	for i := range recent {
		sent[recent[i].Metadata.UID] = true
		if !send(api.FlowFrame{Record: &recent[i]}) {
			return
		}
	}
	if !send(api.FlowFrame{Heartbeat: true}) { // the backlog is out
		return
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case rec, ok := <-sub.C:
			if !ok {
				return
			}
			if sent[rec.Metadata.UID] {
				delete(sent, rec.Metadata.UID)
				continue
			}
			if !send(api.FlowFrame{Record: &rec}) {
				return
			}
		case <-tick.C:
			if !send(api.FlowFrame{Heartbeat: true}) {
				return
			}
		}
	}
}
