package flowstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"moat/internal/flow"
)

// A Cursor is a position in the store's storage order: per day partition,
// the last row read, and which file of the day it was read in. Rows are
// numbered in the order they were committed and never reused within a
// file (records are only ever removed a whole day at a time), so "every
// row after the cursor" is exactly what was stored since, late records for
// an earlier day included. A day's file can be replaced (set aside as
// damaged, a fresh one made for the day's new records): its rows are then
// numbered afresh, and a cursor that read the old file reads the new one
// from its first row. A cursor is a small value that can be saved
// (MarshalJSON) and taken up again by another process.

// cursorDay names a day in a saved cursor.
const cursorDay = "20060102"

// cursorPos is one day's position in a saved cursor.
type cursorPos struct {
	Row  int64  `json:"row"`
	File *int32 `json:"file,omitempty"` // the file's identity (partition.file); nil: not known
}

// MarshalJSON saves the cursor's positions as
// {"YYYYMMDD": {"row": N, "file": ID}}.
func (c *Cursor) MarshalJSON() ([]byte, error) {
	m := make(map[string]cursorPos, len(c.last))
	for day, id := range c.last {
		pos := cursorPos{Row: id}
		if f, ok := c.file[day]; ok {
			pos.File = &f
		}
		m[time.UnixMilli(day*dayMillis).UTC().Format(cursorDay)] = pos
	}
	return json.Marshal(m)
}

// UnmarshalJSON takes up a cursor MarshalJSON saved, or one saved before
// files had identities ({"YYYYMMDD": row}): such a position is taken to
// be in the day's current file.
func (c *Cursor) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("flow: cursor: %w", err)
	}
	c.last, c.seen, c.file = map[int64]int64{}, map[int64]string{}, map[int64]int32{}
	for k, raw := range m {
		var pos cursorPos
		if err := json.Unmarshal(raw, &pos.Row); err != nil {
			if err := json.Unmarshal(raw, &pos); err != nil {
				return fmt.Errorf("flow: cursor: bad position %q: %s", k, raw)
			}
		}
		t, err := time.Parse(cursorDay, k)
		if err != nil || pos.Row < 0 {
			return fmt.Errorf("flow: cursor: bad position %q: %s", k, raw)
		}
		day := t.UnixMilli() / dayMillis
		c.last[day] = pos.Row
		if pos.File != nil {
			c.file[day] = *pos.File
		}
	}
	return nil
}

// Clone returns an independent copy of c.
func (c *Cursor) Clone() *Cursor {
	n := &Cursor{last: maps.Clone(c.last), seen: maps.Clone(c.seen), file: maps.Clone(c.file)}
	if n.last == nil {
		n.last = map[int64]int64{}
	}
	if n.seen == nil {
		n.seen = map[int64]string{}
	}
	if n.file == nil {
		n.file = map[int64]int32{}
	}
	return n
}

// enter positions c in p's file: a position read in another file of the
// same day starts again at the first row.
func (c *Cursor) enter(p *partition) {
	if f, ok := c.file[p.day]; ok && f != p.file {
		c.last[p.day] = 0
	}
	c.file[p.day] = p.file
}

// Next calls fn with up to limit records stored after c, in storage order
// (the oldest day first, each day's rows in commit order), and advances c
// past each record fn accepts. It returns how many fn accepted; fewer than
// limit means c has caught up with the store. A day the store no longer
// holds (dropped by retention) leaves the cursor; a day the cursor has not
// seen is read from its first row.
func (s *Store) Next(ctx context.Context, c *Cursor, limit int, fn func(flow.Record) error) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("flow: next: limit must be positive, got %d", limit)
	}
	if err := s.refresh(); err != nil {
		return 0, err
	}
	days := s.days(1, 1<<62)
	have := make(map[int64]bool, len(days))
	for _, d := range days {
		have[d] = true
	}
	for d := range c.last {
		if !have[d] {
			delete(c.last, d)
			delete(c.seen, d)
			delete(c.file, d)
		}
	}
	n := 0
	for _, day := range days {
		p, st, err := s.acquireChanged(day, c)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return n, err
		}
		c.enter(p)
		got, err := s.nextPart(ctx, p, c, limit-n, fn)
		s.release(p)
		n += got
		if err != nil {
			return n, err
		}
		if n >= limit {
			return n, nil
		}
		c.seen[day] = st
	}
	return n, nil
}

func (s *Store) nextPart(ctx context.Context, p *partition, c *Cursor, limit int, fn func(flow.Record) error) (int, error) {
	n := 0
	err := s.tailPart(ctx, p, "SELECT id, uid, data FROM flows WHERE id > ? ORDER BY id LIMIT ?", []any{c.last[p.day], limit}, c.last, func(r flow.Record) error {
		n++
		return fn(r)
	})
	return n, err
}

// acquireChanged acquires day's partition unless its files did not change
// since c read it to its end (errSkip then), so that following a store
// does not cycle every day of the retention through the open partitions.
// It returns the files' stamp, for c.seen once the day is read to its end.
func (s *Store) acquireChanged(day int64, c *Cursor) (*partition, string, error) {
	s.mu.Lock()
	path := s.known[day]
	s.mu.Unlock()
	st := stamp(path)
	if st == c.seen[day] {
		return nil, "", errSkip
	}
	p, err := s.acquire(day, false)
	return p, st, err
}

// Changed returns a channel closed the next time Ingest stores a record:
// a reader that caught up (Next) waits on it instead of polling.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// A Position is where a record is stored: its day partition, the day's
// file and its row there.
type Position struct {
	Day  int64 // days since the Unix epoch, UTC
	File int32 // the file's identity (partition.file)
	Row  int64
}

// Take moves c past a record stored at pos, as a reader that took it, and
// says whether the record was after c. A record of a day's file other than
// the one c read is taken to be in a file made since (its rows numbered
// afresh).
func (c *Cursor) Take(pos Position) bool {
	if c.last == nil {
		c.last, c.seen, c.file = map[int64]int64{}, map[int64]string{}, map[int64]int32{}
	}
	last, read := c.last[pos.Day]
	if f, ok := c.file[pos.Day]; ok && f != pos.File {
		read = false
	}
	c.file[pos.Day] = pos.File
	delete(c.seen, pos.Day)
	if read && pos.Row <= last {
		return false
	}
	c.last[pos.Day] = pos.Row
	return true
}

// Between returns the records matching f (Limit aside) stored after from
// and up to to (both positions from Mark, Take or a saved cursor), the
// newest limit of them in time order, and how many more there were. A day
// to has not read is left out (its records were all stored after to); a
// day from has not read, or read in another file, is read from its first
// row.
func (s *Store) Between(ctx context.Context, f flow.Filter, from, to *Cursor, limit int) ([]flow.Record, uint64, error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	if limit <= 0 {
		return nil, 0, fmt.Errorf("flow: between: limit must be positive, got %d", limit)
	}
	if err := s.refresh(); err != nil {
		return nil, 0, err
	}
	lo, hi := f.Span()
	var out []flow.Record
	var total uint64
	err := s.eachPartition(lo, hi, true, func(p *partition) (bool, error) {
		upto, ok := to.last[p.day]
		if f, known := to.file[p.day]; !ok || known && f != p.file {
			return false, nil
		}
		after := from.last[p.day]
		if f, known := from.file[p.day]; known && f != p.file {
			after = 0
		}
		if after >= upto {
			return false, nil
		}
		conds, args := s.where(p, &f, []string{"id > ?", "id <= ?", "time >= ?", "time < ?"}, []any{after, upto, lo, hi})
		cond := strings.Join(conds, " AND ")
		var n int64
		if err := p.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM flows WHERE "+cond, args...).Scan(&n); err != nil {
			return true, fmt.Errorf("flow: between %q: %w", p.path, err)
		}
		total += uint64(n)
		if n > 0 && len(out) < limit {
			var err error
			out, err = s.collect(ctx, p, fmt.Sprintf("SELECT uid, data FROM flows WHERE %s ORDER BY time DESC, uid DESC LIMIT %d", cond, limit-len(out)), args, out)
			if err != nil {
				return true, err
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, 0, err
	}
	slices.Reverse(out)
	return out, total - uint64(len(out)), nil
}
