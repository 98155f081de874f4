package flowstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"moat/internal/flow"
)

// Top talkers are read from rollups kept at ingestion, in the same
// transaction as the records: per hour (talkers) and per minute
// (talkers_minute), each row one (class, source, destination, verdict,
// rule) with its connections and bytes as talkerWeight counts them, so
// every answer counts a connection once, from the destination's records,
// whichever part of a window it comes from. A window is read as whole
// hours from the hourly rollup, the whole minutes at its edges from the
// minute rollup, and only the partial minutes at its very edges from the
// records. A keyed (sealed) row's counts are sealed in its agg column and
// added to in Go; a plain row's in SQL.
//
// A partition written before the minute rollup existed has no such table
// (it is made only with an empty partition, so that it always covers every
// record of its day); its partial hours are read from the records.

const minuteMillis = int64(60 * 1000)

// rollTable is one rollup: its table, the column of its time bucket, the
// bucket's length and the prefix binding a sealed row to the table.
type rollTable struct {
	name, col string
	bucket    int64
	ad        string
}

var (
	hourly   = rollTable{name: "talkers", col: "hour", bucket: hourMillis, ad: "moat/flow/talkers:"}
	minutely = rollTable{name: "talkers_minute", col: "minute", bucket: minuteMillis} // one row per minute: minutes.go
)

// prepareComplete reads which of the tables that must cover every record
// of their day partition p keeps (the minute rollup, the node cells), and
// makes those missing (a writer, in a partition without records yet).
func (s *Store) prepareComplete(p *partition) error {
	for _, t := range []struct {
		name, schema string
		has          *bool
	}{{"talkers_minute", minuteSchema, &p.minutes}, {"nodes", nodesSchema, &p.nodes}} {
		var has int
		if err := p.db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", t.name).Scan(&has); err != nil {
			return fmt.Errorf("flow: store: %q: %w", p.path, err)
		}
		if has == 0 && !s.cfg.ReadOnly {
			var any int
			if err := p.db.QueryRow("SELECT EXISTS (SELECT 1 FROM flows)").Scan(&any); err != nil {
				return fmt.Errorf("flow: store: %q: %w", p.path, err)
			}
			if any == 0 {
				if _, err := p.db.Exec(t.schema); err != nil {
					return fmt.Errorf("flow: store: schema of %q: %w", p.path, err)
				}
				has = 1
			}
		}
		*t.has = has == 1
	}
	return nil
}

type rollupKey struct {
	bucket int64
	class  int
	flow.Columns
}

// aggAD binds a sealed aggregate to its table and row.
func aggAD(t rollTable, bucket int64, class int, keys []any) []byte {
	ad := []byte(t.ad + strconv.FormatInt(bucket, 10) + ":" + strconv.Itoa(class))
	for _, k := range keys {
		ad = append(ad, ':')
		ad = append(ad, k.([]byte)...)
	}
	return ad
}

// aggADSQL is aggAD as an SQL expression over a row of t (its first
// parameter t.ad), so that SQLite builds each row's associated data and a
// row crosses the driver as three values rather than nine. SQLite
// concatenates blobs byte for byte and writes integers in decimal, as
// strconv does (TestAggADSQL).
func aggADSQL(t rollTable) string {
	return "CAST(? || " + t.col + " || ':' || class || ':' || src || ':' || src_name || ':' || dst || ':' || dst_name || ':' || verdict || ':' || rule AS BLOB)"
}

// rollup adds a batch's counts to the rows of t: with one upsert per row
// in a plain partition, and in a keyed one by opening the row's sealed
// aggregate, adding, and sealing it again.
func (s *Store) rollup(ctx context.Context, tx *sql.Tx, p *partition, t rollTable, roll map[rollupKey][2]int64) error {
	cols := t.col + ", class, src, src_name, dst, dst_name, verdict, rule"
	if !p.keyed {
		up, err := tx.PrepareContext(ctx, `INSERT INTO `+t.name+`(`+cols+`, flows, bytes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT DO UPDATE SET flows = `+sqlAddCount("flows")+`, bytes = `+sqlAddCount("bytes")+``)
		if err != nil {
			return fmt.Errorf("flow: ingest: %w", err)
		}
		defer up.Close()
		for k, v := range roll {
			if _, err := up.ExecContext(ctx, k.bucket, k.class, k.Src, k.SrcName, k.Dst, k.DstName, k.Verdict, k.Rule, v[0], v[1]); err != nil {
				return fmt.Errorf("flow: ingest: rollup: %w", err)
			}
		}
		return nil
	}
	get, err := tx.PrepareContext(ctx, `SELECT agg FROM `+t.name+` WHERE `+t.col+` = ? AND class = ? AND src = ? AND src_name = ? AND dst = ? AND dst_name = ? AND verdict = ? AND rule = ?`)
	if err != nil {
		return fmt.Errorf("flow: ingest: %w", err)
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, `INSERT INTO `+t.name+`(`+cols+`, flows, bytes, agg)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?) ON CONFLICT DO UPDATE SET agg = excluded.agg`)
	if err != nil {
		return fmt.Errorf("flow: ingest: %w", err)
	}
	defer put.Close()
	for k, v := range roll {
		keys := s.cols(p, k.Columns)
		ad := aggAD(t, k.bucket, k.class, keys)
		args := append([]any{k.bucket, k.class}, keys...)
		a := talkerAgg{src: k.Src, dst: k.Dst}
		var sealed []byte
		switch err := get.QueryRowContext(ctx, args...).Scan(&sealed); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("flow: ingest: rollup: %w", err)
		default:
			pt, err := s.cfg.Sealer.Decrypt(sealed, ad)
			if err != nil {
				return fmt.Errorf("flow: ingest: rollup row of %q: %w", p.path, err)
			}
			if a, err = decodeAgg(pt); err != nil {
				return fmt.Errorf("flow: ingest: rollup row of %q: %w", p.path, err)
			}
		}
		a.flows = flow.AddCount(a.flows, v[0])
		a.bytes = flow.AddCount(a.bytes, v[1])
		ct, err := s.cfg.Sealer.Encrypt(a.encode(), ad)
		if err != nil {
			return fmt.Errorf("flow: ingest: rollup: %w", err)
		}
		if _, err := put.ExecContext(ctx, append(args, ct)...); err != nil {
			return fmt.Errorf("flow: ingest: rollup: %w", err)
		}
	}
	return nil
}

// TopTalkers returns the n source-destination pairs with the most bytes
// among the records matching f (Limit ignored), most first; ties go to the
// pair with more flows, then by name. Flows counts connections and Bytes
// their bytes, as talkerWeight counts them, whatever the window. It reads
// what Edges reads.
func (s *Store) TopTalkers(ctx context.Context, f flow.Filter, n int) ([]flow.Talker, error) {
	if n <= 0 {
		return nil, fmt.Errorf("flow: top talkers: n must be positive, got %d", n)
	}
	acc, err := s.aggregate(ctx, f)
	if err != nil {
		return nil, err
	}
	pairs := map[[2]string]*flow.Talker{}
	for k, c := range acc {
		t := pairs[[2]string{k.src, k.dst}]
		if t == nil {
			t = &flow.Talker{Src: k.src, Dst: k.dst}
			pairs[[2]string{k.src, k.dst}] = t
		}
		t.Flows = flow.AddCount(t.Flows, c.flows)
		t.Bytes = flow.AddCount(t.Bytes, c.bytes)
		if k.verdict == flow.VerdictDeny {
			t.Denied = flow.AddCount(t.Denied, c.flows)
		}
	}
	out := make([]flow.Talker, 0, len(pairs))
	for _, t := range pairs {
		out = append(out, *t)
	}
	return flow.RankTalkers(out, n), nil
}

// sqlAddCount is SQL for column col plus the upsert's value, as
// flow.AddCount adds: SQLite makes an integer sum that overflows a REAL,
// which MIN and MAX bring back to the bounds of int64.
func sqlAddCount(col string) string {
	return "MAX(MIN(" + col + " + excluded." + col + ", 9223372036854775807), -9223372036854775808)"
}

// sqlSumCount is SQL for the sum of column col over a group, as
// flow.AddCount adds: SUM fails the query on an overflow; TOTAL sums in
// floating point, brought back to the bounds of int64 (exact below 2^53).
func sqlSumCount(col string) string {
	return "CAST(MAX(MIN(TOTAL(" + col + "), 9223372036854775807), -9223372036854775808) AS INTEGER)"
}

// edgeKey is what the rollups are summed by for talkers and edges.
type edgeKey struct{ src, dst, verdict string }

// edgeCount is the sum of one edgeKey.
type edgeCount struct{ flows, bytes int64 }

// addEdge adds counts to k's sum.
func addEdge(acc map[edgeKey]*edgeCount, k edgeKey, flows, bytes int64) {
	if a := acc[k]; a != nil {
		a.flows = flow.AddCount(a.flows, flows)
		a.bytes = flow.AddCount(a.bytes, bytes)
		return
	}
	acc[k] = &edgeCount{flows: flows, bytes: bytes}
}

// aggregate sums the records matching f (Limit ignored) by source,
// destination and verdict, partition by partition (talkersOf).
func (s *Store) aggregate(ctx context.Context, f flow.Filter) (map[edgeKey]*edgeCount, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	acc := map[edgeKey]*edgeCount{}
	lo, hi := f.Span()
	err := s.eachPartition(lo, hi, false, func(p *partition) (bool, error) {
		return false, s.talkersOf(ctx, p, &f, lo, hi, acc)
	})
	if err != nil {
		return nil, err
	}
	return acc, nil
}

// talkersOf adds partition p's part of [lo, hi): whole hours from the
// hourly rollup, whole minutes at the edges from the minute rollup, and the
// rest from the records.
func (s *Store) talkersOf(ctx context.Context, p *partition, f *flow.Filter, lo, hi int64, acc map[edgeKey]*edgeCount) error {
	lo, hi = max(lo, p.day*dayMillis), min(hi, (p.day+1)*dayMillis)
	if lo >= hi {
		return nil
	}
	tables := []rollTable{hourly}
	if p.minutes {
		tables = append(tables, minutely)
	}
	ranges := [][2]int64{{lo, hi}}
	for _, t := range tables {
		var rest [][2]int64
		for _, r := range ranges {
			blo := (r[0] + t.bucket - 1) / t.bucket
			bhi := r[1] / t.bucket
			if blo >= bhi {
				rest = append(rest, r)
				continue
			}
			tally := s.talkerRows
			if t == minutely {
				tally = func(ctx context.Context, p *partition, _ rollTable, f *flow.Filter, blo, bhi int64, acc map[edgeKey]*edgeCount) error {
					return s.minuteRows(ctx, p, f, blo, bhi, acc)
				}
			}
			if err := tally(ctx, p, t, f, blo, bhi, acc); err != nil {
				return err
			}
			for _, e := range [][2]int64{{r[0], blo * t.bucket}, {bhi * t.bucket, r[1]}} {
				if e[0] < e[1] {
					rest = append(rest, e)
				}
			}
		}
		ranges = rest
	}
	for _, r := range ranges {
		if err := s.talkerRecords(ctx, p, f, r, acc); err != nil {
			return err
		}
	}
	return nil
}

// verdicts are the values a verdict column holds.
var verdicts = []string{flow.VerdictAllow, flow.VerdictDeny, flow.VerdictAudit, ""}

// talkerRows adds the rows of rollup t in buckets [blo, bhi) of partition
// p: summed in SQL in a plain partition; in a keyed one, each row's sealed
// aggregate is opened and added.
func (s *Store) talkerRows(ctx context.Context, p *partition, t rollTable, f *flow.Filter, blo, bhi int64, acc map[edgeKey]*edgeCount) error {
	conds, args := s.where(p, f, []string{t.col + " >= ?", t.col + " < ?"}, []any{blo, bhi})
	q := "SELECT src, dst, verdict, " + sqlSumCount("flows") + ", " + sqlSumCount("bytes") + " FROM " + t.name + " WHERE " +
		strings.Join(conds, " AND ") + " GROUP BY src, dst, verdict"
	if p.keyed {
		q = "SELECT verdict, agg, " + aggADSQL(t) + " FROM " + t.name + " WHERE " + strings.Join(conds, " AND ")
		args = append([]any{t.ad}, args...)
	}
	rows, err := p.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
	}
	defer rows.Close()
	byHash := map[string]string{}
	if p.keyed {
		for _, v := range verdicts {
			byHash[string(s.val(p, nsVerdict, v).([]byte))] = v
		}
	}
	for rows.Next() {
		if !p.keyed {
			var k edgeKey
			var flows, bytes int64
			if err := rows.Scan(&k.src, &k.dst, &k.verdict, &flows, &bytes); err != nil {
				return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
			}
			addEdge(acc, k, flows, bytes)
			continue
		}
		var verdict, sealed, ad sql.RawBytes
		if err := rows.Scan(&verdict, &sealed, &ad); err != nil {
			return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
		}
		pt, err := s.cfg.Sealer.Decrypt(sealed, ad)
		if err != nil {
			return fmt.Errorf("flow: top talkers %q: open a rollup row: %w", p.path, err)
		}
		a, err := decodeAgg(pt)
		if err != nil {
			return fmt.Errorf("flow: top talkers %q: rollup row: %w", p.path, err)
		}
		v, ok := byHash[string(verdict)]
		if !ok {
			return fmt.Errorf("flow: top talkers %q: a rollup row holds an unknown verdict", p.path)
		}
		addEdge(acc, edgeKey{src: a.src, dst: a.dst, verdict: v}, a.flows, a.bytes)
	}
	return rows.Err()
}

// talkerRecords adds the records of partition p in the time range e,
// each weighed by talkerWeight as the rollups weigh it (plain or keyed
// alike: the record decides, not a column count).
func (s *Store) talkerRecords(ctx context.Context, p *partition, f *flow.Filter, e [2]int64, acc map[edgeKey]*edgeCount) error {
	conds, args := s.where(p, f, []string{"time >= ?", "time < ?"}, []any{e[0], e[1]})
	recs, err := s.collect(ctx, p, "SELECT uid, data FROM flows WHERE "+strings.Join(conds, " AND "), args, nil)
	if err != nil {
		return err
	}
	s.tallied.Add(uint64(len(recs)))
	for i := range recs {
		e := flow.EdgeOf(&recs[i])
		addEdge(acc, edgeKey{src: e.Src, dst: e.Dst, verdict: e.Verdict}, e.Flows, e.Bytes)
	}
	return nil
}
