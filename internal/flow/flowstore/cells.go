package flowstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"moat/internal/flow"
)

// Cells: which nodes' records a store holds, per hour. In a cluster each
// agent ships to one server at a time, so a node's records of an hour are
// normally on one server alone; only around a failover (a batch stored by
// one server whose answer was lost, then sent again to another) can the
// same record be stored twice. Summing the servers' talkers is exact
// wherever no (node, hour) cell is held by two servers; where one is, the
// merger asks those servers for the records of that cell, weighed
// (TalkerWeights), and counts each record ID once. Ingestion keeps the
// cells in the nodes table (a node's name in plaintext, or as a keyed hash
// with the name sealed beside it), made with an empty partition so that it
// covers every record; a partition from before it reports its hours under
// the node AnyNode, which a merger treats as every node.

const nsNode = 'n'

const nodesSchema = `
CREATE TABLE IF NOT EXISTS nodes (
	hour INTEGER NOT NULL,
	node TEXT    NOT NULL,
	name BLOB,
	PRIMARY KEY (hour, node)
) WITHOUT ROWID;
`

func nodeAD(hour int64, key []byte) []byte {
	return append([]byte("moat/flow/node:"+strconv.FormatInt(hour, 10)+":"), key...)
}

func recordNode(r *flow.Record) string {
	if r.Unmapped == nil {
		return ""
	}
	return r.Unmapped.Node
}

// noteNodes records the (hour, node) cells of the records recs[i], i in
// idx, in partition p.
func (s *Store) noteNodes(ctx context.Context, tx *sql.Tx, p *partition, recs []flow.Record, idx []int) error {
	type cell struct {
		hour int64
		node string
	}
	cells := map[cell]bool{}
	for _, i := range idx {
		cells[cell{recs[i].Time / hourMillis, recordNode(&recs[i])}] = true
	}
	for c := range cells {
		var err error
		if p.keyed {
			key := s.index.sum(nsNode, c.node)
			var name []byte
			if name, err = s.cfg.Sealer.Encrypt([]byte(c.node), nodeAD(c.hour, key)); err != nil {
				return fmt.Errorf("flow: ingest: %w", err)
			}
			_, err = tx.ExecContext(ctx, "INSERT INTO nodes(hour, node, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", c.hour, key, name)
		} else {
			_, err = tx.ExecContext(ctx, "INSERT INTO nodes(hour, node) VALUES (?, ?) ON CONFLICT DO NOTHING", c.hour, c.node)
		}
		if err != nil {
			return fmt.Errorf("flow: ingest: nodes of %q: %w", p.path, err)
		}
	}
	return nil
}

// NodeCells lists, per node, the hours overlapping f's time range in which
// the store holds records of that node (filters other than time aside).
func (s *Store) NodeCells(ctx context.Context, f flow.Filter) ([]flow.NodeHours, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	lo, hi := f.Span()
	hlo, hhi := lo/hourMillis, (hi-1)/hourMillis
	hours := map[string][]int64{}
	err := s.eachPartition(lo, hi, false, func(p *partition) (bool, error) {
		q := "SELECT hour, node, name FROM nodes WHERE hour >= ? AND hour <= ?"
		if !p.nodes {
			q = "SELECT DISTINCT hour, '" + flow.AnyNode + "', NULL FROM talkers WHERE hour >= ? AND hour <= ?"
		}
		rows, err := p.db.QueryContext(ctx, q, hlo, hhi)
		if err != nil {
			return true, fmt.Errorf("flow: node cells %q: %w", p.path, err)
		}
		defer rows.Close()
		names := map[string]string{} // keyed hash → name
		for rows.Next() {
			var hour int64
			var node, name []byte
			if err := rows.Scan(&hour, &node, &name); err != nil {
				return true, fmt.Errorf("flow: node cells %q: %w", p.path, err)
			}
			n := string(node)
			if p.keyed && p.nodes {
				if known, ok := names[n]; ok {
					n = known
				} else {
					pt, err := s.cfg.Sealer.Decrypt(name, nodeAD(hour, node))
					if err != nil {
						return true, fmt.Errorf("flow: node cells %q: %w", p.path, err)
					}
					names[n] = string(pt)
					n = string(pt)
				}
			}
			hours[n] = append(hours[n], hour)
		}
		return false, rows.Err()
	})
	if err != nil {
		return nil, err
	}
	out := make([]flow.NodeHours, 0, len(hours))
	for node, hs := range hours {
		sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
		nh := flow.NodeHours{Node: node}
		for _, h := range hs {
			if n := len(nh.Hours); n > 0 && nh.Hours[n-1][1] >= h {
				nh.Hours[n-1][1] = max(nh.Hours[n-1][1], h+1)
				continue
			}
			nh.Hours = append(nh.Hours, [2]int64{h, h + 1})
		}
		out = append(out, nh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// TalkerWeights returns the weight of each record matching f, within f's
// time range and the given node's hours (AnyNode: every node's), that
// counts in the talkers: what a merger needs to count a record that two
// servers hold once.
func (s *Store) TalkerWeights(ctx context.Context, f flow.Filter, cells flow.NodeHours) ([]flow.TalkerRecord, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	lo, hi := f.Span()
	var out []flow.TalkerRecord
	for _, h := range cells.Hours {
		clo, chi := max(lo, h[0]*hourMillis), min(hi, h[1]*hourMillis)
		if clo >= chi {
			continue
		}
		err := s.eachPartition(clo, chi, false, func(p *partition) (bool, error) {
			conds, args := s.where(p, &f, []string{"time >= ?", "time < ?"}, []any{clo, chi})
			recs, err := s.collect(ctx, p, "SELECT uid, data FROM flows WHERE "+strings.Join(conds, " AND "), args, nil)
			if err != nil {
				return true, err
			}
			for i := range recs {
				r := &recs[i]
				if cells.Node != flow.AnyNode && recordNode(r) != cells.Node {
					continue
				}
				e := flow.EdgeOf(r)
				if e.Flows == 0 && e.Bytes == 0 {
					continue
				}
				out = append(out, flow.TalkerRecord{UID: r.Metadata.UID, Edge: e})
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
