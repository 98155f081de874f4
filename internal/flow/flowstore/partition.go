package flowstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Partitions are opened when a query or an ingest needs them and closed
// again, least recently used first, once more than StoreConfig.MaxOpen
// are open: memory is bounded by MaxOpen × connsPerPartition × CacheKiB of
// SQLite page cache, whatever the retention. Connections idle for
// connIdle are closed, so an idle server gives that memory back too.
//
// The first time a process opens a partition it runs SQLite's quick_check
// on it. A damaged one is set aside (renamed "<name>.damaged-<time>" by a
// writer; skipped by a reader), reported (log, DamagedPartitions, the
// moat_flow_store_damaged_partitions metric), and the other days are served
// as before; records for a damaged day go to a fresh file.

// Defaults of the partition bounds.
const (
	defaultCacheKiB   = 2048 // SQLite page cache per connection
	defaultMaxOpen    = 8    // partitions open at once
	connsPerPartition = 2    // connections per open partition
	connIdle          = time.Minute
)

// partition is one day's database.
type partition struct {
	day     int64
	path    string
	db      *sql.DB
	keyed   bool // query columns hold keyed hashes (see index.go)
	minutes bool // keeps the minute rollup, over every record (see rollup.go)
	nodes   bool // keeps the node cells, over every record (see cells.go)
	// file tells this day's file from another of the same day (one made
	// after a damaged one was set aside), whose rows are numbered afresh:
	// a random number a writer puts in a new file's header (SQLite's
	// application_id); 0 for files from before.
	file int32

	// Guarded by Store.mu:
	refs int    // acquirers that have not released it
	used uint64 // Store.tick at the last acquire, for LRU
	gone bool   // no longer in Store.open: close when refs drops to 0
}

// DamagedPartition is a day's database that failed its check at open.
type DamagedPartition struct {
	Day    time.Time `json:"day"`
	Path   string    `json:"path"`   // where it was
	Moved  string    `json:"moved"`  // where it was set aside ("" for a reader)
	Reason string    `json:"reason"` // what quick_check or the open said
	Found  time.Time `json:"found"`  // when
}

// DamagedPartitions lists the partitions set aside since Open.
func (s *Store) DamagedPartitions() []DamagedPartition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DamagedPartition(nil), s.damaged...)
}

// OpenPartitions is how many day partitions are open now.
func (s *Store) OpenPartitions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// scan learns which partition files exist, without opening them.
func (s *Store) scan() error {
	ents, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("flow: store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range ents {
		day, ok := parsePartName(e.Name())
		if !ok || e.IsDir() || s.bad[day] {
			continue
		}
		if _, ok := s.known[day]; !ok {
			s.known[day] = filepath.Join(s.cfg.Dir, e.Name())
		}
	}
	return nil
}

// days returns the known days overlapping [lo, hi), oldest first.
func (s *Store) days(lo, hi int64) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for day := range s.known {
		if (day+1)*dayMillis > lo && day*dayMillis < hi {
			out = append(out, day)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// acquire returns day's partition, open, opening (and on first open
// checking) it when needed; with create it makes a missing one. Every
// acquire is paired with release. A partition that is not ready (a
// reader's view of a file a writer has just made) or that was set aside
// as damaged returns errSkip.
func (s *Store) acquire(day int64, create bool) (*partition, error) {
	if p, err := s.acquireOpen(day); p != nil || err != nil {
		return p, err
	}
	s.omu.Lock()
	defer s.omu.Unlock()
	if p, err := s.acquireOpen(day); p != nil || err != nil {
		return p, err
	}
	s.mu.Lock()
	path, known := s.known[day]
	s.mu.Unlock()
	if !known {
		if !create {
			return nil, errSkip
		}
		path = filepath.Join(s.cfg.Dir, partName(day))
	}
	p, err := s.openPartition(day, path, create)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.db.Close()
		return nil, errors.New("flow: store closed")
	}
	s.known[day] = path
	if e, ok := s.ends[day]; ok && e.File != p.file {
		delete(s.ends, day) // not the file it was learned in
	}
	s.tick++
	p.refs, p.used = 1, s.tick
	s.open[day] = p
	evict := s.evictLocked()
	s.mu.Unlock()
	for _, e := range evict {
		e.db.Close()
	}
	return p, nil
}

// acquireOpen takes a reference on day's partition if it is open.
func (s *Store) acquireOpen(day int64) (*partition, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("flow: store closed")
	}
	p, ok := s.open[day]
	if !ok {
		return nil, nil
	}
	s.tick++
	p.refs++
	p.used = s.tick
	return p, nil
}

// release drops a reference taken by acquire; a partition evicted or
// dropped meanwhile is closed by its last holder.
func (s *Store) release(p *partition) {
	s.mu.Lock()
	p.refs--
	closeIt := p.gone && p.refs == 0
	s.mu.Unlock()
	if closeIt {
		p.db.Close()
	}
}

// evictLocked takes the least recently used partitions out of s.open until
// at most MaxOpen remain, and returns those no one holds, to close.
func (s *Store) evictLocked() []*partition {
	var out []*partition
	for len(s.open) > s.cfg.MaxOpen {
		var lru *partition
		for _, p := range s.open {
			if lru == nil || p.used < lru.used {
				lru = p
			}
		}
		delete(s.open, lru.day)
		lru.gone = true
		if lru.refs == 0 {
			out = append(out, lru)
		}
	}
	return out
}

// errSkip marks a partition a query passes over: not there, not ready, or
// set aside as damaged.
var errSkip = errors.New("flow: store: partition skipped")

// openPartition opens (or creates) one day's database, checks it the first
// time this process opens it, and sets it aside when damaged.
func (s *Store) openPartition(day int64, path string, create bool) (*partition, error) {
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, errSkip
		}
	}
	pragmas := fmt.Sprintf("_pragma=busy_timeout(10000)&_pragma=cache_size(-%d)&_pragma=temp_store(MEMORY)", s.cfg.CacheKiB)
	dsn := "file:" + path + "?" + pragmas + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(16384)"
	if s.cfg.ReadOnly {
		dsn = "file:" + path + "?mode=ro&" + pragmas
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("flow: store: open %q: %w", path, err)
	}
	db.SetMaxOpenConns(connsPerPartition)
	db.SetMaxIdleConns(connsPerPartition)
	db.SetConnMaxIdleTime(connIdle)
	p := &partition{day: day, path: path, db: db}
	s.mu.Lock()
	checked := s.checked[day]
	s.mu.Unlock()
	if !checked {
		if why := quickCheck(db); why != "" {
			db.Close()
			s.setAside(day, path, why)
			if create {
				return s.openPartition(day, path, true)
			}
			return nil, errSkip
		}
		s.mu.Lock()
		s.checked[day] = true
		s.mu.Unlock()
	}
	if err := s.prepare(p); err != nil {
		db.Close()
		return nil, err
	}
	return p, nil
}

// quickCheck runs SQLite's quick_check and returns what is wrong, or "".
func quickCheck(db *sql.DB) string {
	rows, err := db.QueryContext(context.Background(), "PRAGMA quick_check")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err.Error()
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	if len(problems) > 3 {
		problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
	}
	return strings.Join(problems, "; ")
}

// setAside records a damaged partition and, for a writer, renames its
// files out of the way so that the day starts again in a fresh one.
func (s *Store) setAside(day int64, path, why string) {
	d := DamagedPartition{Day: time.UnixMilli(day * dayMillis).UTC(), Path: path, Reason: why, Found: s.cfg.Now().UTC()}
	if !s.cfg.ReadOnly {
		d.Moved = fmt.Sprintf("%s.damaged-%d", path, s.cfg.Now().Unix())
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(path+suffix, d.Moved+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Error("flow: set aside a damaged partition", "path", path+suffix, "err", err)
			}
		}
	}
	s.log.Error("flow: partition failed its check at open; set aside, the other days are served", "path", path, "moved", d.Moved, "reason", why)
	s.mu.Lock()
	delete(s.known, day)
	delete(s.ends, day)
	if s.cfg.ReadOnly {
		s.bad[day] = true // a reader skips the day; a writer starts it afresh
	}
	s.damaged = append(s.damaged, d)
	s.mu.Unlock()
}

// prepareFileID reads the partition's file identity, giving a new, empty
// file one.
func (s *Store) prepareFileID(p *partition) error {
	if err := p.db.QueryRow("PRAGMA application_id").Scan(&p.file); err != nil {
		return fmt.Errorf("flow: store: %q: %w", p.path, err)
	}
	if p.file != 0 || s.cfg.ReadOnly {
		return nil
	}
	var any int
	if err := p.db.QueryRow("SELECT EXISTS (SELECT 1 FROM flows)").Scan(&any); err != nil {
		return fmt.Errorf("flow: store: %q: %w", p.path, err)
	}
	if any != 0 {
		return nil // a file from before identities: it keeps 0
	}
	var b [4]byte
	for p.file == 0 {
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		p.file = int32(binary.BigEndian.Uint32(b[:]))
	}
	if _, err := p.db.Exec(fmt.Sprintf("PRAGMA application_id = %d", p.file)); err != nil {
		return fmt.Errorf("flow: store: %q: %w", p.path, err)
	}
	return nil
}
