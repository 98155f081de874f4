package flowstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"moat/internal/metrics"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"moat/internal/flow"
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// Dir holds one SQLite database per UTC day (flows-YYYYMMDD.db). It is
	// created when missing unless ReadOnly is set. Required.
	Dir string
	// Retention is how long records are kept. Whole days whose last
	// millisecond is older than now-Retention are deleted, and records older
	// than that are not stored (they are counted as expired). Zero keeps
	// everything.
	Retention time.Duration
	// Sealer, when set, encrypts each stored record's JSON with the record
	// UID as associated data, and the query columns are kept as keyed
	// hashes with the byte counts sealed (see index.go): someone holding
	// the files without the key learns when records were stored and how
	// many, not who talked to whom, how much, or with what verdict.
	// Partitions written before a store had a Sealer keep their plaintext
	// columns until retention drops them.
	Sealer flow.Sealer
	// ReadOnly opens existing partitions for queries only: nothing is
	// created, written or pruned. This is what a second process (the CLI)
	// uses beside a running server.
	ReadOnly bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives partition lifecycle messages; nil discards them.
	Logger *slog.Logger
	// PruneEvery is how often Run applies retention; zero means hourly.
	PruneEvery time.Duration
	// MaxSkew is how far ahead of the clock a record's time may be; later
	// records are ignored and counted, so that a producer with a wild clock
	// cannot make a partition per day of the far future. Zero means 24h.
	MaxSkew time.Duration
	// CacheKiB is SQLite's page cache per connection, in KiB; zero means
	// 2048. MaxOpen is how many day partitions stay open at once; zero
	// means 8. With two connections per partition, the page caches take at
	// most MaxOpen × 2 × CacheKiB (32 MiB by default) whatever the
	// retention; see partition.go.
	CacheKiB int
	MaxOpen  int
}

// StoreStats counts what Ingest did since Open.
type StoreStats struct {
	Stored     uint64 // records written
	Duplicates uint64 // records whose UID was already stored, ignored
	Expired    uint64 // records older than the retention, ignored
	Future     uint64 // records more than MaxSkew ahead of the clock, ignored
	Dropped    uint64 // records Follow subscribers were too slow to take
}

// Store keeps flow records in SQLite, one database per UTC day, and stores
// each record at most once, so at-least-once senders get exactly-once
// storage. A record is identified by its UID together with its time: a
// record sent again is the same value, so it has both, and keying the
// unique index by time first keeps inserts at the end of the index (records
// arrive roughly in time order) instead of scattered over it, which is what
// keeps ingestion fast in a partition of millions of records. The price: a
// producer that reused a UID for a record at another time would get both
// stored.
type Store struct {
	cfg StoreConfig
	log *slog.Logger

	wmu   sync.Mutex // serializes Ingest and Prune
	omu   sync.Mutex // serializes partition opens
	index *index     // keyed hashes of the query columns; nil without a Sealer

	mu      sync.Mutex           // guards the fields below
	known   map[int64]string     // partition files by day number (days since the Unix epoch, UTC)
	open    map[int64]*partition // the open ones
	checked map[int64]bool       // days checked at open by this process
	bad     map[int64]bool       // days a reader skips as damaged
	damaged []DamagedPartition
	tick    uint64
	subs    map[*Subscription]struct{}
	ends    map[int64]Position // a writer's days: the position of the last record stored (Mark)
	changed chan struct{}      // closed at the next stored record (Changed)
	closed  bool

	stored, dups, expired, future, dropped atomic.Uint64
	tallied                                atomic.Uint64 // records read one by one for top talkers
}

const (
	dayMillis  = int64(24 * time.Hour / time.Millisecond)
	hourMillis = int64(time.Hour / time.Millisecond)
	partPrefix = "flows-"
	partSuffix = ".db"
)

// errNotReady marks a partition file whose tables do not exist yet.
var errNotReady = errors.New("flow: store: partition not initialized yet")

const schema = `
CREATE TABLE IF NOT EXISTS flows (
	id       INTEGER PRIMARY KEY,
	uid      TEXT    NOT NULL,
	time     INTEGER NOT NULL,
	class    INTEGER NOT NULL,
	src      TEXT    NOT NULL,
	src_name TEXT    NOT NULL,
	dst      TEXT    NOT NULL,
	dst_name TEXT    NOT NULL,
	verdict  TEXT    NOT NULL,
	rule     TEXT    NOT NULL,
	bytes    INTEGER NOT NULL,
	data     BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS flows_time_uid ON flows(time, uid);
CREATE TABLE IF NOT EXISTS talkers (
	hour     INTEGER NOT NULL,
	class    INTEGER NOT NULL,
	src      TEXT    NOT NULL,
	src_name TEXT    NOT NULL,
	dst      TEXT    NOT NULL,
	dst_name TEXT    NOT NULL,
	verdict  TEXT    NOT NULL,
	rule     TEXT    NOT NULL,
	flows    INTEGER NOT NULL,
	bytes    INTEGER NOT NULL,
	agg      BLOB,
	PRIMARY KEY (hour, class, src, src_name, dst, dst_name, verdict, rule)
) WITHOUT ROWID;
`

// OpenStore opens (or creates) the store in cfg.Dir and applies retention.
func OpenStore(cfg StoreConfig) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("flow: store: empty data directory")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("flow: store: negative retention %v", cfg.Retention)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = time.Hour
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 24 * time.Hour
	}
	if cfg.CacheKiB <= 0 {
		cfg.CacheKiB = defaultCacheKiB
	}
	if cfg.MaxOpen <= 0 {
		cfg.MaxOpen = defaultMaxOpen
	}
	s := &Store{
		cfg:     cfg,
		log:     cfg.Logger,
		known:   map[int64]string{},
		open:    map[int64]*partition{},
		checked: map[int64]bool{},
		bad:     map[int64]bool{},
		subs:    map[*Subscription]struct{}{},
		ends:    map[int64]Position{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadOnly {
		if _, err := os.Stat(cfg.Dir); err != nil {
			return nil, fmt.Errorf("flow: store: %w", err)
		}
	} else if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("flow: store: %w", err)
	}
	if cfg.Sealer != nil {
		key, err := loadIndexKey(cfg.Dir, cfg.Sealer, cfg.ReadOnly)
		if err != nil {
			return nil, err
		}
		if key != nil {
			s.index = &index{key: key, cache: map[string][]byte{}}
		}
	}
	if err := s.scan(); err != nil {
		s.Close()
		return nil, err
	}
	if !cfg.ReadOnly {
		if _, err := s.Prune(); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func partName(day int64) string {
	return partPrefix + time.UnixMilli(day*dayMillis).UTC().Format("20060102") + partSuffix
}

func parsePartName(name string) (int64, bool) {
	d, ok := strings.CutPrefix(name, partPrefix)
	if !ok {
		return 0, false
	}
	d, ok = strings.CutSuffix(d, partSuffix)
	if !ok {
		return 0, false
	}
	t, err := time.Parse("20060102", d)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli() / dayMillis, true
}

// dayOf returns the UTC day number of a time in milliseconds.
func dayOf(ms int64) int64 {
	d := ms / dayMillis
	if ms < 0 && ms%dayMillis != 0 {
		d--
	}
	return d
}

// prepare makes a partition's tables (a writer) or checks they are there
// (a reader), and reads whether its query columns are keyed.
func (s *Store) prepare(p *partition) error {
	if !s.cfg.ReadOnly {
		if _, err := p.db.Exec(schema); err != nil {
			return fmt.Errorf("flow: store: schema of %q: %w", p.path, err)
		}
	} else {
		// A writer may have created the file and not yet its tables; such
		// a partition is left for a later scan.
		var n int
		if err := p.db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('flows', 'talkers')").Scan(&n); err != nil || n != 2 {
			return errSkip
		}
	}
	var format int
	if err := p.db.QueryRow("PRAGMA user_version").Scan(&format); err != nil {
		return fmt.Errorf("flow: store: %q: %w", p.path, err)
	}
	if format == formatPlain && s.index != nil && !s.cfg.ReadOnly {
		// A new partition of a sealed store is keyed; one with records
		// from before keeps its plaintext columns.
		var rows int
		if err := p.db.QueryRow("SELECT (SELECT COUNT(*) FROM flows) + (SELECT COUNT(*) FROM talkers)").Scan(&rows); err != nil {
			return fmt.Errorf("flow: store: %q: %w", p.path, err)
		}
		if rows == 0 {
			if _, err := p.db.Exec(fmt.Sprintf("PRAGMA user_version = %d", formatKeyed)); err != nil {
				return fmt.Errorf("flow: store: %q: %w", p.path, err)
			}
			format = formatKeyed
		}
	}
	if err := s.prepareFileID(p); err != nil {
		return err
	}
	switch format {
	case formatPlain:
	case formatKeyed:
		if s.index == nil {
			return fmt.Errorf("flow: store: %q keeps sealed query columns; open the store with its key", p.path)
		}
		p.keyed = true
	default:
		return fmt.Errorf("flow: store: %q: unknown partition format %d", p.path, format)
	}
	return s.prepareComplete(p)
}

// cutoff is the oldest record time kept, in milliseconds, or math.MinInt64
// when retention is off.
func (s *Store) cutoff() (int64, bool) {
	if s.cfg.Retention <= 0 {
		return 0, false
	}
	return flow.Millis(s.cfg.Now().Add(-s.cfg.Retention)), true
}

// Prune deletes the partitions whose whole day is older than the retention
// and reports how many it deleted.
func (s *Store) Prune() (int, error) {
	if s.cfg.ReadOnly {
		return 0, errors.New("flow: store is read-only")
	}
	cut, ok := s.cutoff()
	if !ok {
		return 0, nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.Lock()
	var old []string
	var closeNow []*partition
	for day, path := range s.known {
		if (day+1)*dayMillis > cut {
			continue
		}
		old = append(old, path)
		delete(s.known, day)
		delete(s.ends, day)
		if p, ok := s.open[day]; ok {
			delete(s.open, day)
			p.gone = true
			if p.refs == 0 {
				closeNow = append(closeNow, p)
			}
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range closeNow {
		if err := p.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("flow: store: close %q: %w", p.path, err))
		}
	}
	for _, path := range old {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("flow: store: %w", err))
			}
		}
		s.log.Info("flow partition dropped by retention", "path", path)
	}
	return len(old), errors.Join(errs...)
}

// Run applies retention every PruneEvery until ctx ends.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Prune(); err != nil {
				s.log.Error("flow retention", "err", err)
			}
		}
	}
}

// Stats returns the ingestion counters.
func (s *Store) Stats() StoreStats {
	return StoreStats{
		Stored:     s.stored.Load(),
		Duplicates: s.dups.Load(),
		Expired:    s.expired.Load(),
		Future:     s.future.Load(),
		Dropped:    s.dropped.Load(),
	}
}

// Close closes every partition and ends Follow subscriptions. It is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	parts := s.open
	s.open = map[int64]*partition{}
	subs := s.subs
	s.subs = map[*Subscription]struct{}{}
	s.mu.Unlock()
	for sub := range subs {
		sub.end()
	}
	var errs []error
	for _, p := range parts {
		p.gone = true // a holder still using it gets an error from a closed database
		if err := p.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("flow: store: close %q: %w", p.path, err))
		}
	}
	return errors.Join(errs...)
}

// Ingest stores recs, ignoring (and counting) those already stored, those
// older than the retention and those too far ahead, and returns how many it
// stored. A batch with an invalid record is refused whole, naming the
// record. Records are committed per day in one transaction each; should a
// later day fail, the earlier days stay committed, and sending the same
// batch again is safe because ingestion is idempotent by UID.
func (s *Store) Ingest(ctx context.Context, recs []flow.Record) (int, error) {
	if s.cfg.ReadOnly {
		return 0, errors.New("flow: store is read-only")
	}
	for i := range recs {
		if err := flow.Validate(&recs[i]); err != nil {
			return 0, fmt.Errorf("flow: ingest: record %d (uid %q): %w", i, recs[i].Metadata.UID, err)
		}
	}
	cut, retain := s.cutoff()
	late := flow.Millis(s.cfg.Now().Add(s.cfg.MaxSkew))
	byDay := map[int64][]int{}
	var days []int64
	for i := range recs {
		if retain && recs[i].Time < cut {
			s.expired.Add(1)
			continue
		}
		if recs[i].Time > late {
			s.future.Add(1)
			continue
		}
		d := dayOf(recs[i].Time)
		if _, ok := byDay[d]; !ok {
			days = append(days, d)
		}
		byDay[d] = append(byDay[d], i)
	}
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })

	s.wmu.Lock()
	defer s.wmu.Unlock()
	total := 0
	var stored []fresh
	for _, d := range days {
		p, err := s.acquire(d, true)
		if err != nil {
			s.notify(recs, stored)
			return total, err
		}
		n, err := s.ingestDay(ctx, p, recs, byDay[d], &stored)
		s.release(p)
		total += n
		if err != nil {
			s.notify(recs, stored)
			return total, err
		}
	}
	s.notify(recs, stored)
	return total, nil
}

func (s *Store) ingestDay(ctx context.Context, p *partition, recs []flow.Record, idx []int, stored *[]fresh) (int, error) {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("flow: ingest: begin %q: %w", p.path, err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO flows(uid, time, class, src, src_name, dst, dst_name, verdict, rule, bytes, data)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(time, uid) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("flow: ingest: %w", err)
	}
	defer ins.Close()
	roll := map[rollupKey][2]int64{}
	var rollMin map[int64]map[minuteKey][2]int64
	if p.minutes {
		rollMin = map[int64]map[minuteKey][2]int64{}
	}
	var added []int
	var at []fresh
	var buf []byte
	for _, i := range idx {
		r := &recs[i]
		c := flow.ColumnsOf(r)
		buf, err = s.encode(buf[:0], r)
		if err != nil {
			return 0, err
		}
		bytes := c.Bytes
		if p.keyed {
			bytes = 0 // kept in the sealed body only
		}
		res, err := ins.ExecContext(ctx, append(append([]any{r.Metadata.UID, r.Time, r.ClassUID}, s.cols(p, c)...), bytes, buf)...)
		if err != nil {
			return 0, fmt.Errorf("flow: ingest: record uid %q: %w", r.Metadata.UID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		row, err := res.LastInsertId()
		if err != nil {
			return 0, fmt.Errorf("flow: ingest: record uid %q: %w", r.Metadata.UID, err)
		}
		added = append(added, i)
		at = append(at, fresh{i, Position{Day: p.day, File: p.file, Row: row}})
		k := rollupKey{bucket: r.Time / hourMillis, class: r.ClassUID, Columns: c}
		k.Bytes = 0
		flows, bytes := flow.TalkerWeight(r, c.Bytes)
		v := roll[k]
		roll[k] = [2]int64{flow.AddCount(v[0], flows), flow.AddCount(v[1], bytes)}
		if rollMin != nil {
			m := rollMin[r.Time/minuteMillis]
			if m == nil {
				m = map[minuteKey][2]int64{}
				rollMin[r.Time/minuteMillis] = m
			}
			mk := minuteKey{class: k.class, Columns: k.Columns}
			v := m[mk]
			m[mk] = [2]int64{flow.AddCount(v[0], flows), flow.AddCount(v[1], bytes)}
		}
	}
	if err := s.rollup(ctx, tx, p, hourly, roll); err != nil {
		return 0, err
	}
	if rollMin != nil {
		if err := s.rollupMinutes(ctx, tx, p, rollMin); err != nil {
			return 0, err
		}
	}
	if p.nodes {
		if err := s.noteNodes(ctx, tx, p, recs, added); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("flow: ingest: commit %q: %w", p.path, err)
	}
	if len(at) > 0 {
		// Rows are numbered past the largest: the last one added ends the day.
		s.mu.Lock()
		s.ends[p.day] = at[len(at)-1].pos
		s.mu.Unlock()
	}
	s.stored.Add(uint64(len(added)))
	s.dups.Add(uint64(len(idx) - len(added)))
	*stored = append(*stored, at...)
	return len(added), nil
}

// sealAD is the associated data binding a sealed body to its record.
func sealAD(uid string) []byte { return []byte("moat/flow/record:" + uid) }

func (s *Store) encode(buf []byte, r *flow.Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("flow: ingest: encode record uid %q: %w", r.Metadata.UID, err)
	}
	if s.cfg.Sealer == nil {
		return append(buf, b...), nil
	}
	ct, err := s.cfg.Sealer.Encrypt(b, sealAD(r.Metadata.UID))
	if err != nil {
		return nil, fmt.Errorf("flow: ingest: seal record uid %q: %w", r.Metadata.UID, err)
	}
	return append(buf, ct...), nil
}

func (s *Store) decode(uid string, data []byte) (flow.Record, error) {
	var r flow.Record
	if s.cfg.Sealer != nil {
		pt, err := s.cfg.Sealer.Decrypt(data, sealAD(uid))
		if err != nil {
			return r, fmt.Errorf("flow: open record uid %q: %w", uid, err)
		}
		data = pt
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("flow: decode record uid %q: %w", uid, err)
	}
	if r.Metadata.UID != uid {
		return r, fmt.Errorf("flow: record uid %q holds uid %q", uid, r.Metadata.UID)
	}
	return r, nil
}

// Collector exposes the store's ingestion counters.
func (s *Store) Collector() metrics.Collector {
	return metrics.Group{
		metrics.CounterFunc("moat_flow_store_stored_records_total", "Flow records stored.", s.stored.Load),
		metrics.CounterFunc("moat_flow_store_duplicate_records_total", "Flow records ignored because they were already stored.", s.dups.Load),
		metrics.CounterFunc("moat_flow_store_expired_records_total", "Flow records ignored because they were older than the retention.", s.expired.Load),
		metrics.CounterFunc("moat_flow_store_future_records_total", "Flow records ignored because their time was too far ahead of the clock.", s.future.Load),
		metrics.CounterFunc("moat_flow_store_follow_dropped_records_total", "Flow records slow followers missed.", s.dropped.Load),
		metrics.GaugeFunc("moat_flow_store_open_partitions", "Day partitions open now (at most the store's MaxOpen).", func() float64 { return float64(s.OpenPartitions()) }),
		metrics.GaugeFunc("moat_flow_store_damaged_partitions", "Day partitions that failed their check at open and were set aside.", func() float64 { return float64(len(s.DamagedPartitions())) }),
	}
}
