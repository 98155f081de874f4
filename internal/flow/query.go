package flow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// Filter selects records. Zero fields select everything.
type Filter struct {
	// From and To match the source and destination: a SPIFFE ID, a service
	// name, an endpoint name or an IP address.
	From, To string
	// Verdict is VerdictAllow, VerdictDeny or VerdictAudit.
	Verdict string
	// Rule is the deciding rule's name (or WAF rule ID, or analytic name).
	Rule string
	// Class is an OCSF class UID.
	Class int
	// Since is inclusive, Until exclusive.
	Since, Until time.Time
	// Limit caps how many records Query returns, keeping the newest; zero
	// means no cap.
	Limit int
}

// Match reports whether r passes f (Limit aside).
func (f *Filter) Match(r *Record) bool {
	c := columns(r)
	switch {
	case f.From != "" && f.From != c.src && f.From != c.srcName:
		return false
	case f.To != "" && f.To != c.dst && f.To != c.dstName:
		return false
	case f.Verdict != "" && f.Verdict != c.verdict:
		return false
	case f.Rule != "" && f.Rule != c.rule:
		return false
	case f.Class != 0 && f.Class != r.ClassUID:
		return false
	case !f.Since.IsZero() && r.Time < Millis(f.Since):
		return false
	case !f.Until.IsZero() && r.Time >= Millis(f.Until):
		return false
	}
	return true
}

// Validate checks f's fields.
func (f *Filter) Validate() error {
	switch f.Verdict {
	case "", VerdictAllow, VerdictDeny, VerdictAudit:
	default:
		return fmt.Errorf("flow: filter: unknown verdict %q (want %q, %q or %q)", f.Verdict, VerdictAllow, VerdictDeny, VerdictAudit)
	}
	if f.Limit < 0 {
		return fmt.Errorf("flow: filter: negative limit %d", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("flow: filter: since %s is not before until %s", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	return nil
}

// where renders the non-time conditions of f over a table with the flows
// columns, with values as partition p keeps them.
func (s *Store) where(p *partition, f *Filter, conds []string, args []any) ([]string, []any) {
	if f.From != "" {
		v := s.val(p, nsEndpoint, f.From)
		conds = append(conds, "(src = ? OR src_name = ?)")
		args = append(args, v, v)
	}
	if f.To != "" {
		v := s.val(p, nsEndpoint, f.To)
		conds = append(conds, "(dst = ? OR dst_name = ?)")
		args = append(args, v, v)
	}
	if f.Verdict != "" {
		conds = append(conds, "verdict = ?")
		args = append(args, s.val(p, nsVerdict, f.Verdict))
	}
	if f.Rule != "" {
		conds = append(conds, "rule = ?")
		args = append(args, s.val(p, nsRule, f.Rule))
	}
	if f.Class != 0 {
		conds = append(conds, "class = ?")
		args = append(args, f.Class)
	}
	return conds, args
}

// span is f's time range in milliseconds, [lo, hi).
func (f *Filter) span() (lo, hi int64) {
	lo, hi = 1, 1<<62
	if !f.Since.IsZero() {
		lo = Millis(f.Since)
	}
	if !f.Until.IsZero() {
		hi = Millis(f.Until)
	}
	return lo, hi
}

// eachPartition calls fn with every partition overlapping [lo, hi), open,
// oldest first (newest first with reverse), one at a time, until fn says
// stop or fails. Partitions not ready or set aside are passed over.
func (s *Store) eachPartition(lo, hi int64, reverse bool, fn func(p *partition) (stop bool, err error)) error {
	days := s.days(lo, hi)
	if reverse {
		for i, j := 0, len(days)-1; i < j; i, j = i+1, j-1 {
			days[i], days[j] = days[j], days[i]
		}
	}
	for _, d := range days {
		p, err := s.acquire(d, false)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return err
		}
		stop, err := fn(p)
		s.release(p)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

func (s *Store) refresh() error {
	if s.cfg.ReadOnly {
		return s.scan()
	}
	return nil
}

// Query returns the records matching f in time order. With a Limit it
// returns the newest Limit of them.
//
// The records are indexed by time only; when f selects by endpoint,
// verdict, rule or class, the hourly rollup says which hours hold matching
// records, and only those hours are read.
func (s *Store) Query(ctx context.Context, f Filter) ([]Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	lo, hi := f.span()
	var out []Record
	run := func(p *partition, r [2]int64, order string) error {
		conds, args := s.where(p, &f, []string{"time >= ?", "time < ?"}, []any{r[0], r[1]})
		var err error
		out, err = s.collect(ctx, p, "SELECT uid, data FROM flows WHERE "+strings.Join(conds, " AND ")+order, args, out)
		return err
	}
	if f.Limit == 0 {
		err := s.eachPartition(lo, hi, false, func(p *partition) (bool, error) {
			ranges, err := s.ranges(ctx, p, &f, lo, hi)
			if err != nil {
				return true, err
			}
			for _, r := range ranges {
				if err := run(p, r, " ORDER BY time, uid"); err != nil {
					return true, err
				}
			}
			return false, nil
		})
		return out, err
	}
	err := s.eachPartition(lo, hi, true, func(p *partition) (bool, error) {
		ranges, err := s.ranges(ctx, p, &f, lo, hi)
		if err != nil {
			return true, err
		}
		for j := len(ranges) - 1; j >= 0 && len(out) < f.Limit; j-- {
			if err := run(p, ranges[j], fmt.Sprintf(" ORDER BY time DESC, uid DESC LIMIT %d", f.Limit-len(out))); err != nil {
				return true, err
			}
		}
		return len(out) >= f.Limit, nil
	})
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// ranges returns the time ranges of partition p, within [lo, hi) and in
// order, that can hold records matching f: all of it when f selects by time
// alone, else the hours the rollup lists for f.
func (s *Store) ranges(ctx context.Context, p *partition, f *Filter, lo, hi int64) ([][2]int64, error) {
	lo, hi = max(lo, p.day*dayMillis), min(hi, (p.day+1)*dayMillis)
	if lo >= hi {
		return nil, nil
	}
	if f.From == "" && f.To == "" && f.Verdict == "" && f.Rule == "" && f.Class == 0 {
		return [][2]int64{{lo, hi}}, nil
	}
	conds, args := s.where(p, f, []string{"hour >= ?", "hour <= ?"}, []any{lo / hourMillis, (hi - 1) / hourMillis})
	rows, err := p.db.QueryContext(ctx, "SELECT DISTINCT hour FROM talkers WHERE "+strings.Join(conds, " AND ")+" ORDER BY hour", args...)
	if err != nil {
		return nil, fmt.Errorf("flow: query %q: %w", p.path, err)
	}
	defer rows.Close()
	var out [][2]int64
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("flow: query %q: %w", p.path, err)
		}
		r := [2]int64{max(lo, h*hourMillis), min(hi, (h+1)*hourMillis)}
		if n := len(out); n > 0 && out[n-1][1] == r[0] {
			out[n-1][1] = r[1]
			continue
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("flow: query %q: %w", p.path, err)
	}
	return out, nil
}

func (s *Store) collect(ctx context.Context, p *partition, q string, args []any, out []Record) ([]Record, error) {
	rows, err := p.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("flow: query %q: %w", p.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid string
		var data []byte
		if err := rows.Scan(&uid, &data); err != nil {
			return nil, fmt.Errorf("flow: query %q: %w", p.path, err)
		}
		r, err := s.decode(uid, data)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("flow: query %q: %w", p.path, err)
	}
	return out, nil
}

// Talker is the traffic between one source and one destination.
type Talker struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	Flows  int64  `json:"flows"`
	Bytes  int64  `json:"bytes"`
	Denied int64  `json:"denied"` // flows with verdict deny
}

// TopTalkers returns the n source-destination pairs with the most bytes
// among the records matching f (Limit ignored), most first; ties go to the
// pair with more flows, then by name. It reads what Edges reads.
func (s *Store) TopTalkers(ctx context.Context, f Filter, n int) ([]Talker, error) {
	if n <= 0 {
		return nil, fmt.Errorf("flow: top talkers: n must be positive, got %d", n)
	}
	acc, err := s.aggregate(ctx, f)
	if err != nil {
		return nil, err
	}
	pairs := map[[2]string]*Talker{}
	for k, c := range acc {
		t := pairs[[2]string{k.src, k.dst}]
		if t == nil {
			t = &Talker{Src: k.src, Dst: k.dst}
			pairs[[2]string{k.src, k.dst}] = t
		}
		t.Flows += c.flows
		t.Bytes += c.bytes
		if k.verdict == VerdictDeny {
			t.Denied += c.flows
		}
	}
	out := make([]Talker, 0, len(pairs))
	for _, t := range pairs {
		out = append(out, *t)
	}
	return RankTalkers(out, n), nil
}

// edgeKey is what the rollup is summed by for talkers and edges.
type edgeKey struct{ src, dst, verdict string }

// edgeCount is the sum of one edgeKey.
type edgeCount struct{ flows, bytes int64 }

// aggregate sums the records matching f (Limit ignored) by source,
// destination and verdict. Whole hours are read from the hourly rollup
// kept at ingestion; only the partial hours at the edges of f's time range
// are aggregated from the records themselves.
func (s *Store) aggregate(ctx context.Context, f Filter) (map[edgeKey]*edgeCount, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	lo, hi := f.span()
	// Whole hours [hlo, hhi) come from the rollup.
	hlo := (lo + hourMillis - 1) / hourMillis
	hhi := hi / hourMillis
	acc := map[edgeKey]*edgeCount{}
	err := s.eachPartition(lo, hi, false, func(p *partition) (bool, error) {
		if hlo < hhi {
			if err := s.talkerRows(ctx, p, &f, hlo, hhi, acc); err != nil {
				return true, err
			}
		}
		edges := [][2]int64{{lo, hi}}
		if hlo < hhi {
			edges = [][2]int64{{lo, hlo * hourMillis}, {hhi * hourMillis, hi}}
		}
		for _, e := range edges {
			if e[0] >= e[1] || e[1] <= p.day*dayMillis || e[0] >= (p.day+1)*dayMillis {
				continue
			}
			if err := s.talkerRecords(ctx, p, &f, e, acc); err != nil {
				return true, err
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return acc, nil
}

// RankTalkers orders talkers most bytes first (ties: more flows, then by
// name) and keeps the first n: the order of every top-talkers answer,
// one server's or a cluster's.
func RankTalkers(ts []Talker, n int) []Talker {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.Bytes != b.Bytes {
			return a.Bytes > b.Bytes
		}
		if a.Flows != b.Flows {
			return a.Flows > b.Flows
		}
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		return a.Dst < b.Dst
	})
	if len(ts) > n {
		ts = ts[:n]
	}
	return ts
}

// addEdge adds counts to k's sum.
func addEdge(acc map[edgeKey]*edgeCount, k edgeKey, flows, bytes int64) {
	if a := acc[k]; a != nil {
		a.flows += flows
		a.bytes += bytes
		return
	}
	acc[k] = &edgeCount{flows: flows, bytes: bytes}
}

// verdicts are the values a verdict column holds.
var verdicts = []string{VerdictAllow, VerdictDeny, VerdictAudit, ""}

// talkerRows adds the rollup's whole hours [hlo, hhi) of partition p: summed
// in SQL in a plain partition; in a keyed one, each row's sealed aggregate
// is opened and added, its verdict known by its keyed hash.
func (s *Store) talkerRows(ctx context.Context, p *partition, f *Filter, hlo, hhi int64, acc map[edgeKey]*edgeCount) error {
	conds, args := s.where(p, f, []string{"hour >= ?", "hour < ?"}, []any{hlo, hhi})
	q := "SELECT src, dst, verdict, SUM(flows), SUM(bytes) FROM talkers WHERE " +
		strings.Join(conds, " AND ") + " GROUP BY src, dst, verdict"
	if p.keyed {
		q = "SELECT hour, class, src, src_name, dst, dst_name, verdict, rule, agg FROM talkers WHERE " + strings.Join(conds, " AND ")
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
		var hour int64
		var class int
		var src, srcName, dst, dstName, verdict, rule, sealed []byte
		if err := rows.Scan(&hour, &class, &src, &srcName, &dst, &dstName, &verdict, &rule, &sealed); err != nil {
			return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
		}
		pt, err := s.cfg.Sealer.Decrypt(sealed, aggAD(hour, class, []any{src, srcName, dst, dstName, verdict, rule}))
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

// talkerRecords adds the records of partition p in the time range e: summed
// in SQL in a plain partition; read and weighed as the rollup weighs them
// in a keyed one, whose byte counts are sealed in the records.
func (s *Store) talkerRecords(ctx context.Context, p *partition, f *Filter, e [2]int64, acc map[edgeKey]*edgeCount) error {
	conds, args := s.where(p, f, []string{"time >= ?", "time < ?"}, []any{e[0], e[1]})
	if !p.keyed {
		q := "SELECT src, dst, verdict, COUNT(*), SUM(bytes) FROM flows WHERE " + strings.Join(conds, " AND ") + " GROUP BY src, dst, verdict"
		rows, err := p.db.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
		}
		defer rows.Close()
		for rows.Next() {
			var k edgeKey
			var flows, bytes int64
			if err := rows.Scan(&k.src, &k.dst, &k.verdict, &flows, &bytes); err != nil {
				return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
			}
			addEdge(acc, k, flows, bytes)
		}
		return rows.Err()
	}
	recs, err := s.collect(ctx, p, "SELECT uid, data FROM flows WHERE "+strings.Join(conds, " AND "), args, nil)
	if err != nil {
		return err
	}
	for i := range recs {
		c := columns(&recs[i])
		flows, b := talkerWeight(&recs[i], c.bytes)
		addEdge(acc, edgeKey{src: c.src, dst: c.dst, verdict: c.verdict}, flows, b)
	}
	return nil
}

// Cursor is a position in the store's storage order, from Mark.
type Cursor struct {
	last map[int64]int64  // per partition day, the last row seen
	seen map[int64]string // per partition day, its files' stamp at the last look
}

// Mark returns the position after every record stored so far.
func (s *Store) Mark(ctx context.Context) (*Cursor, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	c := &Cursor{last: map[int64]int64{}, seen: map[int64]string{}}
	err := s.eachPartition(1, 1<<62, false, func(p *partition) (bool, error) {
		var max sql.NullInt64
		if err := p.db.QueryRowContext(ctx, "SELECT MAX(id) FROM flows").Scan(&max); err != nil {
			return true, fmt.Errorf("flow: mark %q: %w", p.path, err)
		}
		c.last[p.day] = max.Int64
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// stamp says whether a partition's files changed: their sizes and times.
func stamp(path string) string {
	var b strings.Builder
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(path + suffix); err == nil {
			fmt.Fprintf(&b, "%d/%d;", st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String()
}

// Tail calls fn, in storage order, with each record matching f stored
// after the cursor, polling every interval until ctx ends (it then returns
// nil) or fn fails. It works across processes (a CLI beside a server);
// within the server's process Follow avoids the polling. Tail advances
// c.
func (s *Store) Tail(ctx context.Context, c *Cursor, f Filter, every time.Duration, fn func(Record) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if every <= 0 {
		return fmt.Errorf("flow: tail: interval must be positive, got %v", every)
	}
	lo, hi := f.span()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.refresh(); err != nil {
			return err
		}
		// Only partitions whose files changed since the last look are
		// opened, so that following a store does not cycle every day of
		// the retention through the open partitions each interval.
		for _, day := range s.days(lo, hi) {
			s.mu.Lock()
			path := s.known[day]
			s.mu.Unlock()
			st := stamp(path)
			if st == c.seen[day] {
				continue
			}
			p, err := s.acquire(day, false)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return err
			}
			conds, args := s.where(p, &f, []string{"id > ?", "time >= ?", "time < ?"}, []any{c.last[p.day], lo, hi})
			q := "SELECT id, uid, data FROM flows WHERE " + strings.Join(conds, " AND ") + " ORDER BY id"
			err = s.tailPart(ctx, p, q, args, c.last, fn)
			s.release(p)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			c.seen[day] = st
		}
	}
}

func (s *Store) tailPart(ctx context.Context, p *partition, q string, args []any, last map[int64]int64, fn func(Record) error) error {
	rows, err := p.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("flow: tail %q: %w", p.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var uid string
		var data []byte
		if err := rows.Scan(&id, &uid, &data); err != nil {
			return fmt.Errorf("flow: tail %q: %w", p.path, err)
		}
		r, err := s.decode(uid, data)
		if err != nil {
			return err
		}
		last[p.day] = id
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
