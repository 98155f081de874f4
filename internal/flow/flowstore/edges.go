package flowstore

import (
	"context"

	"moat/internal/flow"
)

// Edges sums the records matching f (Limit ignored) by source,
// destination and verdict, from the hourly rollup wherever whole hours
// allow, as TopTalkers does; so its cost follows the number of pairs more
// than the number of records. The edges come most bytes first, then most
// flows, then by name; with f.Limit set, only that many.
func (s *Store) Edges(ctx context.Context, f flow.Filter) ([]flow.Edge, error) {
	acc, err := s.aggregate(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]flow.Edge, 0, len(acc))
	for k, c := range acc {
		out = append(out, flow.Edge{Src: k.src, Dst: k.dst, Verdict: k.verdict, Flows: c.flows, Bytes: c.bytes})
	}
	return flow.RankEdges(out, f.Limit), nil
}
