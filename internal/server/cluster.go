package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/identity"
)

// A cluster's flow records are spread over its servers: each agent ships
// to the server it follows, and each server keeps what it took in its own
// SQLite partitions. A flow query is answered for the whole cluster by
// fanning out, as Hubble Relay does over Hubble nodes: the server that
// takes the query asks every live member for its part (PathPeerFlows,
// callable only by a server's SVID), merges records by UID (a batch that
// reached two servers around a failover counts once), keeps the newest
// Limit, and says which members did not answer.

// peerClient calls another server of the cluster with this server's SVID.
func (s *Server) peerClient(addr string) *api.Client {
	return api.NewClient(addr, api.ClientTLS(func() (*tls.Certificate, error) { return s.ownCert(), nil }, s.trust))
}

// peer wraps a handler only another server of the cluster may call.
func (s *Server) peer(h func(http.ResponseWriter, *http.Request, *caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.identify(r.Context(), r)
		if err != nil {
			writeError(w, err)
			return
		}
		if c.Kind != identity.KindServer {
			writeError(w, errorf(http.StatusUnauthorized, "this call needs a server certificate"))
			return
		}
		h(w, r, c)
	}
}

// handlePeerFlows answers a member's fan-out with this server's records.
func (s *Server) handlePeerFlows(w http.ResponseWriter, r *http.Request, c *caller) {
	var q api.PeerFlowQuery
	if err := decode(r, &q); err != nil {
		writeError(w, err)
		return
	}
	ans, err := s.localFlows(r.Context(), q)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (s *Server) localFlows(ctx context.Context, q api.PeerFlowQuery) (api.PeerFlows, error) {
	if s.cfg.Flows == nil {
		return api.PeerFlows{}, errorf(http.StatusServiceUnavailable, "this server keeps no flow records")
	}
	if err := q.Filter.Validate(); err != nil {
		return api.PeerFlows{}, errorf(http.StatusBadRequest, "%v", err)
	}
	ans := api.PeerFlows{Server: s.cfg.Name}
	var err error
	switch {
	case q.Edges:
		ans.Edges, err = s.cfg.Flows.Edges(ctx, q.Filter)
	case q.Talkers > 0:
		ans.Talkers, err = s.cfg.Flows.TopTalkers(ctx, q.Filter, q.Talkers)
	default:
		ans.Records, err = s.cfg.Flows.Query(ctx, q.Filter)
	}
	return ans, err
}

// ClusterFlows answers q for the whole cluster: this server's records and
// every live member's, merged. Members that did not answer are named in
// the result's Missing; the answer is then partial and says so.
func (s *Server) ClusterFlows(ctx context.Context, q api.PeerFlowQuery) (api.ClusterFlows, error) {
	own, err := s.localFlows(ctx, q)
	if err != nil {
		return api.ClusterFlows{}, err
	}
	parts := []api.PeerFlows{own}
	out := api.ClusterFlows{Servers: []string{s.cfg.Name}}
	members, err := s.Members(ctx)
	if err != nil {
		// The store is away: answer for this server and say the rest is missing.
		out.Missing = append(out.Missing, "the other servers (membership unreadable: "+err.Error()+")")
		members = nil
	}
	var mu sync.Mutex // guards parts and out
	var wg sync.WaitGroup
	for _, m := range members {
		if m.Self {
			continue
		}
		if !m.Alive {
			out.Missing = append(out.Missing, m.Name+" (gone)")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.peerClient(m.Addr)
			defer c.Close()
			var ans api.PeerFlows
			err := c.Call(ctx, http.MethodPost, api.PathPeerFlows, q, &ans)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Missing = append(out.Missing, fmt.Sprintf("%s (%v)", m.Name, errors.Unwrap(err)))
				return
			}
			parts = append(parts, ans)
			out.Servers = append(out.Servers, m.Name)
		}()
	}
	wg.Wait()
	sort.Strings(out.Servers)
	sort.Strings(out.Missing)
	switch {
	case q.Edges:
		out.Edges = mergeEdges(parts, q.Filter.Limit)
	case q.Talkers > 0:
		out.Talkers = mergeTalkers(parts, q.Talkers)
	default:
		out.Records, out.Truncated = mergeRecords(parts, q.Filter.Limit)
	}
	return out, nil
}

// mergeRecords merges the members' records by UID, oldest first, keeping
// the newest limit (0: all).
func mergeRecords(parts []api.PeerFlows, limit int) ([]flow.Record, bool) {
	seen := map[string]bool{}
	var all []flow.Record
	for _, p := range parts {
		for _, r := range p.Records {
			if r.Metadata.UID != "" {
				if seen[r.Metadata.UID] {
					continue
				}
				seen[r.Metadata.UID] = true
			}
			all = append(all, r)
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].Time != all[j].Time {
			return all[i].Time < all[j].Time
		}
		return all[i].Metadata.UID < all[j].Metadata.UID
	})
	if limit > 0 && len(all) > limit {
		return all[len(all)-limit:], true
	}
	return all, false
}

// mergeTalkers sums the members' talkers by pair and keeps the top n, in
// the order flow.Store.TopTalkers uses.
func mergeTalkers(parts []api.PeerFlows, n int) []flow.Talker {
	type pair struct{ src, dst string }
	sum := map[pair]*flow.Talker{}
	for _, p := range parts {
		for _, t := range p.Talkers {
			k := pair{t.Src, t.Dst}
			if sum[k] == nil {
				sum[k] = &flow.Talker{Src: t.Src, Dst: t.Dst}
			}
			sum[k].Flows += t.Flows
			sum[k].Bytes += t.Bytes
			sum[k].Denied += t.Denied
		}
	}
	out := make([]flow.Talker, 0, len(sum))
	for _, t := range sum {
		out = append(out, *t)
	}
	return flow.RankTalkers(out, n)
}

// mergeEdges sums the members' edges and keeps the heaviest n, in the
// order flow.Store.Edges uses.
func mergeEdges(parts []api.PeerFlows, n int) []flow.Edge {
	type key struct{ src, dst, verdict string }
	sum := map[key]*flow.Edge{}
	for _, p := range parts {
		for _, e := range p.Edges {
			k := key{e.Src, e.Dst, e.Verdict}
			if sum[k] == nil {
				sum[k] = &flow.Edge{Src: e.Src, Dst: e.Dst, Verdict: e.Verdict}
			}
			sum[k].Flows += e.Flows
			sum[k].Bytes += e.Bytes
		}
	}
	out := make([]flow.Edge, 0, len(sum))
	for _, e := range sum {
		out = append(out, *e)
	}
	return flow.RankEdges(out, n)
}
