package flow

import (
	"context"
	"database/sql"
	"fmt"
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
// columns.
func (f *Filter) where(conds []string, args []any) ([]string, []any) {
	if f.From != "" {
		conds = append(conds, "(src = ? OR src_name = ?)")
		args = append(args, f.From, f.From)
	}
	if f.To != "" {
		conds = append(conds, "(dst = ? OR dst_name = ?)")
		args = append(args, f.To, f.To)
	}
	if f.Verdict != "" {
		conds = append(conds, "verdict = ?")
		args = append(args, f.Verdict)
	}
	if f.Rule != "" {
		conds = append(conds, "rule = ?")
		args = append(args, f.Rule)
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

// partitions returns the open partitions overlapping [lo, hi), oldest first.
func (s *Store) partitions(lo, hi int64) []*partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*partition
	for day, p := range s.parts {
		if (day+1)*dayMillis > lo && day*dayMillis < hi {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].day < ps[j].day })
	return ps
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
	conds, _ := f.where([]string{"time >= ?", "time < ?"}, []any{lo, hi})
	_, fargs := f.where(nil, nil)
	q := "SELECT uid, data FROM flows WHERE " + strings.Join(conds, " AND ")
	parts := s.partitions(lo, hi)
	var out []Record
	run := func(p *partition, r [2]int64, order string) error {
		var err error
		out, err = s.collect(ctx, p, q+order, append([]any{r[0], r[1]}, fargs...), out)
		return err
	}
	if f.Limit == 0 {
		for _, p := range parts {
			ranges, err := s.ranges(ctx, p, &f, lo, hi)
			if err != nil {
				return nil, err
			}
			for _, r := range ranges {
				if err := run(p, r, " ORDER BY time, uid"); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	for i := len(parts) - 1; i >= 0 && len(out) < f.Limit; i-- {
		ranges, err := s.ranges(ctx, parts[i], &f, lo, hi)
		if err != nil {
			return nil, err
		}
		for j := len(ranges) - 1; j >= 0 && len(out) < f.Limit; j-- {
			if err := run(parts[i], ranges[j], fmt.Sprintf(" ORDER BY time DESC, uid DESC LIMIT %d", f.Limit-len(out))); err != nil {
				return nil, err
			}
		}
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
	conds, args := f.where([]string{"hour >= ?", "hour <= ?"}, []any{lo / hourMillis, (hi - 1) / hourMillis})
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
// pair with more flows, then by name. Whole hours are read from an hourly
// rollup kept at ingestion; only the partial hours at the edges of f's
// time range are aggregated from the records themselves.
func (s *Store) TopTalkers(ctx context.Context, f Filter, n int) ([]Talker, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("flow: top talkers: n must be positive, got %d", n)
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	lo, hi := f.span()
	// Whole hours [hlo, hhi) come from the rollup.
	hlo := (lo + hourMillis - 1) / hourMillis
	hhi := hi / hourMillis
	acc := map[[2]string]*Talker{}
	add := func(p *partition, q string, args []any) error {
		rows, err := p.db.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
		}
		defer rows.Close()
		for rows.Next() {
			var t Talker
			if err := rows.Scan(&t.Src, &t.Dst, &t.Flows, &t.Bytes, &t.Denied); err != nil {
				return fmt.Errorf("flow: top talkers %q: %w", p.path, err)
			}
			k := [2]string{t.Src, t.Dst}
			if a := acc[k]; a != nil {
				a.Flows += t.Flows
				a.Bytes += t.Bytes
				a.Denied += t.Denied
			} else {
				acc[k] = &t
			}
		}
		return rows.Err()
	}
	for _, p := range s.partitions(lo, hi) {
		if hlo < hhi {
			conds, args := f.where([]string{"hour >= ?", "hour < ?"}, []any{hlo, hhi})
			q := "SELECT src, dst, SUM(flows), SUM(bytes), SUM(CASE verdict WHEN 'deny' THEN flows ELSE 0 END) FROM talkers WHERE " +
				strings.Join(conds, " AND ") + " GROUP BY src, dst"
			if err := add(p, q, args); err != nil {
				return nil, err
			}
		}
		var edges [][2]int64
		if hlo < hhi {
			edges = [][2]int64{{lo, hlo * hourMillis}, {hhi * hourMillis, hi}}
		} else {
			edges = [][2]int64{{lo, hi}}
		}
		for _, e := range edges {
			if e[0] >= e[1] || e[1] <= p.day*dayMillis || e[0] >= (p.day+1)*dayMillis {
				continue
			}
			conds, args := f.where([]string{"time >= ?", "time < ?"}, []any{e[0], e[1]})
			q := "SELECT src, dst, COUNT(*), SUM(bytes), SUM(verdict = 'deny') FROM flows WHERE " +
				strings.Join(conds, " AND ") + " GROUP BY src, dst"
			if err := add(p, q, args); err != nil {
				return nil, err
			}
		}
	}
	out := make([]Talker, 0, len(acc))
	for _, t := range acc {
		out = append(out, *t)
	}
	return RankTalkers(out, n), nil
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

// Cursor is a position in the store's storage order, from Mark.
type Cursor struct {
	last map[int64]int64 // per partition day, the last row seen
}

// Mark returns the position after every record stored so far.
func (s *Store) Mark(ctx context.Context) (*Cursor, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	c := &Cursor{last: map[int64]int64{}}
	for _, p := range s.partitions(1, 1<<62) {
		var max sql.NullInt64
		if err := p.db.QueryRowContext(ctx, "SELECT MAX(id) FROM flows").Scan(&max); err != nil {
			return nil, fmt.Errorf("flow: mark %q: %w", p.path, err)
		}
		c.last[p.day] = max.Int64
	}
	return c, nil
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
		for _, p := range s.partitions(lo, hi) {
			conds, args := f.where([]string{"id > ?", "time >= ?", "time < ?"}, []any{c.last[p.day], lo, hi})
			q := "SELECT id, uid, data FROM flows WHERE " + strings.Join(conds, " AND ") + " ORDER BY id"
			if err := s.tailPart(ctx, p, q, args, c.last, fn); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
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
