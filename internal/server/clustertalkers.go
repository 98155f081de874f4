package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"moat/internal/api"
	"moat/internal/flow"
)

// A cluster's top talkers are each server's talkers summed by pair, with
// every record that two servers hold counted once. A record is stored twice
// only when a batch reached two servers (a failover after the first stored
// it and its answer was lost), and an agent ships to one server at a time,
// so a node's records of an hour are normally on one server only: the
// servers answer with their (node, hour) cells, and only the cells held by
// two or more servers are read record by record (each record's weight,
// flowstore.Store.TalkerWeights) so that each record ID counts once. The cost
// is nothing in steady operation and, around a failover, reading the
// failed-over node's records of those hours on the servers involved.

// allPairs asks a member for every pair of its talkers.
const allPairs = 1 << 20

// maxWeighCells bounds the cells one weigh call may ask for.
const maxWeighCells = 4096

// mergeTalkers sums the parts' talkers by pair, takes out the records held
// twice, and keeps the top n in flow.RankTalkers' order.
func (s *Server) mergeTalkers(ctx context.Context, f flow.Filter, parts []api.PeerFlows, addrs map[string]string, n int, out *api.ClusterFlows) []flow.Talker {
	sum := map[[2]string]*flow.Talker{}
	for _, p := range parts {
		for _, t := range p.Talkers {
			addPair(sum, t, 1)
		}
	}
	for _, d := range s.duplicates(ctx, f, parts, addrs, out) {
		addPair(sum, d.rec.Talker(), -d.extra)
	}
	ts := make([]flow.Talker, 0, len(sum))
	for _, t := range sum {
		if t.Flows != 0 || t.Bytes != 0 {
			ts = append(ts, *t)
		}
	}
	return flow.RankTalkers(ts, n)
}

// mergeEdges sums the parts' edges, takes out the records held twice, and
// keeps the heaviest limit (0: all) in flow.RankEdges' order.
func (s *Server) mergeEdges(ctx context.Context, f flow.Filter, parts []api.PeerFlows, addrs map[string]string, limit int, out *api.ClusterFlows) []flow.Edge {
	type key struct{ src, dst, verdict string }
	sum := map[key]*flow.Edge{}
	add := func(e flow.Edge, times int64) {
		k := key{e.Src, e.Dst, e.Verdict}
		if sum[k] == nil {
			sum[k] = &flow.Edge{Src: e.Src, Dst: e.Dst, Verdict: e.Verdict}
		}
		sum[k].Flows = flow.AddCount(sum[k].Flows, times*e.Flows)
		sum[k].Bytes = flow.AddCount(sum[k].Bytes, times*e.Bytes)
	}
	for _, p := range parts {
		for _, e := range p.Edges {
			add(e, 1)
		}
	}
	for _, d := range s.duplicates(ctx, f, parts, addrs, out) {
		add(d.rec.Edge, -d.extra)
	}
	es := make([]flow.Edge, 0, len(sum))
	for _, e := range sum {
		if e.Flows != 0 || e.Bytes != 0 {
			es = append(es, *e)
		}
	}
	return flow.RankEdges(es, limit)
}

// duplicate is a record held by extra+1 servers.
type duplicate struct {
	rec   flow.TalkerRecord
	extra int64
}

// duplicates asks the servers holding a shared (node, hour) cell for the
// weights of those records and returns the records two or more hold. A
// server that cannot be asked is named in out.Missing (its duplicates, if
// any, stay counted).
func (s *Server) duplicates(ctx context.Context, f flow.Filter, parts []api.PeerFlows, addrs map[string]string, out *api.ClusterFlows) []duplicate {
	asks := sharedCells(parts)
	if len(asks) == 0 {
		return nil
	}
	f.Limit = 0
	weights := map[string][]flow.TalkerRecord{}
	var mu sync.Mutex // guards weights and out.Missing
	var wg sync.WaitGroup
	for server, cells := range asks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := api.PeerFlowQuery{Filter: f, Weigh: cells}
			var ans api.PeerFlows
			var err error
			if server == s.cfg.Name {
				ans, err = s.localFlows(ctx, q)
			} else {
				c := s.peerClient(addrs[server])
				err = c.Call(ctx, http.MethodPost, api.PathPeerFlows, q, &ans)
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Missing = append(out.Missing, fmt.Sprintf("%s (records held twice not counted once: %v)", server, err))
				return
			}
			weights[server] = ans.Weights
		}()
	}
	wg.Wait()
	sort.Strings(out.Missing)
	// Each record once per server, then once in all.
	held := map[string]int64{}
	first := map[string]flow.TalkerRecord{}
	for _, ws := range weights {
		mine := map[string]bool{}
		for _, w := range ws {
			if mine[w.UID] {
				continue
			}
			mine[w.UID] = true
			held[w.UID]++
			first[w.UID] = w
		}
	}
	var dups []duplicate
	for uid, k := range held {
		if k > 1 {
			dups = append(dups, duplicate{rec: first[uid], extra: k - 1})
		}
	}
	return dups
}

// addPair adds times × t to its pair's sum.
func addPair(sum map[[2]string]*flow.Talker, t flow.Talker, times int64) {
	k := [2]string{t.Src, t.Dst}
	a := sum[k]
	if a == nil {
		a = &flow.Talker{Src: t.Src, Dst: t.Dst}
		sum[k] = a
	}
	a.Flows = flow.AddCount(a.Flows, times*t.Flows)
	a.Bytes = flow.AddCount(a.Bytes, times*t.Bytes)
	a.Denied = flow.AddCount(a.Denied, times*t.Denied)
}

// sharedCells finds the (node, hour) cells two or more servers hold (a
// server's AnyNode cell shares its hour with every node) and returns, per
// server, the cells to weigh there.
func sharedCells(parts []api.PeerFlows) map[string][]flow.NodeHours {
	holders := map[int64]map[string]map[string]bool{} // hour → node → servers
	for _, p := range parts {
		for _, nh := range p.Cells {
			if nh.Node == "" {
				continue // the server's own records (detection findings): never sent twice
			}
			for _, run := range nh.Hours {
				for h := run[0]; h < run[1]; h++ {
					if holders[h] == nil {
						holders[h] = map[string]map[string]bool{}
					}
					if holders[h][nh.Node] == nil {
						holders[h][nh.Node] = map[string]bool{}
					}
					holders[h][nh.Node][p.Server] = true
				}
			}
		}
	}
	ask := map[string]map[string][]int64{} // server → node → hours
	want := func(server, node string, h int64) {
		if ask[server] == nil {
			ask[server] = map[string][]int64{}
		}
		hs := ask[server][node]
		if len(hs) == 0 || hs[len(hs)-1] != h {
			ask[server][node] = append(hs, h)
		}
	}
	hours := make([]int64, 0, len(holders))
	for h := range holders {
		hours = append(hours, h)
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i] < hours[j] })
	for _, h := range hours {
		any := holders[h][flow.AnyNode]
		for node, servers := range holders[h] {
			if node == flow.AnyNode {
				continue
			}
			all := len(servers)
			for srv := range any {
				if !servers[srv] {
					all++
				}
			}
			if all < 2 {
				continue
			}
			for srv := range servers {
				want(srv, node, h)
			}
			for srv := range any {
				want(srv, flow.AnyNode, h)
			}
		}
		if len(any) >= 2 {
			for srv := range any {
				want(srv, flow.AnyNode, h)
			}
		}
	}
	out := map[string][]flow.NodeHours{}
	for srv, nodes := range ask {
		for node, hs := range nodes {
			nh := flow.NodeHours{Node: node}
			for _, h := range hs {
				if k := len(nh.Hours); k > 0 && nh.Hours[k-1][1] == h {
					nh.Hours[k-1][1] = h + 1
					continue
				}
				nh.Hours = append(nh.Hours, [2]int64{h, h + 1})
			}
			out[srv] = append(out[srv], nh)
		}
	}
	return out
}
