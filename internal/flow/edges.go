package flow

import (
	"context"
	"sort"
)

// Edge is the traffic from one source to one destination with one
// verdict: what a service graph draws as one line.
type Edge struct {
	Src     string `json:"src"`
	Dst     string `json:"dst"`
	Verdict string `json:"verdict"`
	Flows   int64  `json:"flows"`
	Bytes   int64  `json:"bytes"`
}

// Edges sums the records matching f (Limit ignored) by source,
// destination and verdict, from the hourly rollup wherever whole hours
// allow, as TopTalkers does; so its cost follows the number of pairs more
// than the number of records. The edges come most bytes first, then most
// flows, then by name; with f.Limit set, only that many.
func (s *Store) Edges(ctx context.Context, f Filter) ([]Edge, error) {
	acc, err := s.aggregate(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]Edge, 0, len(acc))
	for k, c := range acc {
		out = append(out, Edge{Src: k.src, Dst: k.dst, Verdict: k.verdict, Flows: c.flows, Bytes: c.bytes})
	}
	return RankEdges(out, f.Limit), nil
}

// RankEdges orders edges most bytes first (ties: more flows, then by
// source, destination and verdict) and keeps the first n (all when n is
// zero): the order of every edges answer, one server's or a cluster's.
func RankEdges(out []Edge, n int) []Edge {
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Bytes != b.Bytes:
			return a.Bytes > b.Bytes
		case a.Flows != b.Flows:
			return a.Flows > b.Flows
		case a.Src != b.Src:
			return a.Src < b.Src
		case a.Dst != b.Dst:
			return a.Dst < b.Dst
		}
		return a.Verdict < b.Verdict
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// EdgeOf is what r adds to its edge, weighed as the store's rollup weighs
// it: a mesh connection counts once, at its destination's first record,
// and each of the destination's records adds the bytes since the one
// before. A live view that adds records as they come (a follow stream)
// then agrees with Edges over the same records.
func EdgeOf(r *Record) Edge {
	c := columns(r)
	flows, b := talkerWeight(r, c.bytes)
	return Edge{Src: c.src, Dst: c.dst, Verdict: c.verdict, Flows: flows, Bytes: b}
}
