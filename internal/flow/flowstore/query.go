package flowstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"moat/internal/flow"
)

// where renders the non-time conditions of f over a table with the flows
// columns, with values as partition p keeps them.
func (s *Store) where(p *partition, f *flow.Filter, conds []string, args []any) ([]string, []any) {
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
func (s *Store) Query(ctx context.Context, f flow.Filter) ([]flow.Record, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	lo, hi := f.Span()
	var out []flow.Record
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

// Key is a record's place in the (time, UID) order Query answers in.
type Key struct {
	Time int64 // milliseconds
	UID  string
}

// KeyOf returns r's place in the (time, UID) order.
func KeyOf(r *flow.Record) Key { return Key{r.Time, r.Metadata.UID} }

// CountBefore counts the records matching f (Limit aside) that come
// before key in Query's (time, UID) order: how many a Query with a Limit
// left out before the oldest record it answered.
func (s *Store) CountBefore(ctx context.Context, f flow.Filter, before Key) (uint64, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if err := s.refresh(); err != nil {
		return 0, err
	}
	lo, hi := f.Span()
	hi = min(hi, before.Time+1)
	var total uint64
	err := s.eachPartition(lo, hi, false, func(p *partition) (bool, error) {
		ranges, err := s.ranges(ctx, p, &f, lo, hi)
		if err != nil {
			return true, err
		}
		for _, r := range ranges {
			conds, args := s.where(p, &f, []string{"time >= ?", "time < ?", "(time < ? OR (time = ? AND uid < ?))"},
				[]any{r[0], r[1], before.Time, before.Time, before.UID})
			var n int64
			if err := p.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM flows WHERE "+strings.Join(conds, " AND "), args...).Scan(&n); err != nil {
				return true, fmt.Errorf("flow: count %q: %w", p.path, err)
			}
			total += uint64(n)
		}
		return false, nil
	})
	return total, err
}

// ranges returns the time ranges of partition p, within [lo, hi) and in
// order, that can hold records matching f: all of it when f selects by time
// alone, else the hours the rollup lists for f.
func (s *Store) ranges(ctx context.Context, p *partition, f *flow.Filter, lo, hi int64) ([][2]int64, error) {
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

func (s *Store) collect(ctx context.Context, p *partition, q string, args []any, out []flow.Record) ([]flow.Record, error) {
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

// Cursor is a position in the store's storage order, from Mark.
type Cursor struct {
	last map[int64]int64  // per partition day, the last row seen
	seen map[int64]string // per partition day, its files' stamp at the last look
	file map[int64]int32  // per partition day, the file last read (partition.file)
}

// Mark returns the position after every record stored so far. The
// writer knows the days it stored records in since it opened, and those it
// marked before, without opening them; a reader (another process writes)
// reads every day.
func (s *Store) Mark(ctx context.Context) (*Cursor, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	c := &Cursor{last: map[int64]int64{}, seen: map[int64]string{}, file: map[int64]int32{}}
	for _, day := range s.days(1, 1<<62) {
		s.mu.Lock()
		e, ok := s.ends[day]
		s.mu.Unlock()
		if ok && !s.cfg.ReadOnly {
			c.last[day], c.file[day] = e.Row, e.File
			continue
		}
		p, err := s.acquire(day, false)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var max sql.NullInt64
		err = p.db.QueryRowContext(ctx, "SELECT MAX(id) FROM flows").Scan(&max)
		if err == nil && !s.cfg.ReadOnly {
			s.mu.Lock()
			if _, ok := s.ends[day]; !ok && !p.gone {
				// Unless Ingest, which sets it after its commit, did.
				s.ends[day] = Position{Day: day, File: p.file, Row: max.Int64}
			}
			s.mu.Unlock()
		}
		s.release(p)
		if err != nil {
			return nil, fmt.Errorf("flow: mark %q: %w", p.path, err)
		}
		c.last[day], c.file[day] = max.Int64, p.file
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
func (s *Store) Tail(ctx context.Context, c *Cursor, f flow.Filter, every time.Duration, fn func(flow.Record) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if every <= 0 {
		return fmt.Errorf("flow: tail: interval must be positive, got %v", every)
	}
	lo, hi := f.Span()
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
		for _, day := range s.days(lo, hi) {
			p, st, err := s.acquireChanged(day, c)
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return err
			}
			c.enter(p)
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

func (s *Store) tailPart(ctx context.Context, p *partition, q string, args []any, last map[int64]int64, fn func(flow.Record) error) error {
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
		// The position moves past a record only once fn took it: a
		// cursor saved from within fn covers the records before.
		if err := fn(r); err != nil {
			return err
		}
		last[p.day] = id
	}
	return rows.Err()
}
