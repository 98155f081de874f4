package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BoltConfig configures the embedded store.
type BoltConfig struct {
	// Dir is the data directory; the state lives in Dir/store.db. Required.
	// It is created (0700) if missing.
	Dir string
	// History is how many revisions of change history are kept for watches;
	// older ones are compacted away as new ones commit. 0 means 10,000.
	History int64
	// Sealer, if set, encrypts every stored value with its key as associated
	// data. A file created with a Sealer refuses to open without one, and
	// the other way round, so values are never silently stored in the clear.
	Sealer Sealer
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// LockTimeout bounds the wait for another process that holds the file;
	// 0 means 1s.
	LockTimeout time.Duration
}

// Bolt is the embedded Store on a bbolt file. Every write is fsynced before
// it returns, and watchers are fed only after that. Concurrent writes share
// transactions (group commit), each still at its own revision.
type Bolt struct {
	db      *bolt.DB
	sealer  Sealer
	history int64
	batch   int // revisions a watch reads per transaction
	log     *slog.Logger

	// mu guards closed. Reads and write submissions hold it for reading, so
	// once Close has set closed under it no new work reaches db.
	mu     sync.RWMutex
	closed bool

	done      chan struct{} // closed by Close: watchers stop
	closeOnce sync.Once
	closeErr  error
	watchers  sync.WaitGroup

	writes    chan *writeReq // to the committer goroutine
	committed chan struct{}  // closed when the committer has stopped

	// nmu guards notify, which is closed and replaced after every commit
	// that makes a new revision, waking the watchers.
	nmu    sync.Mutex
	notify chan struct{}
}

var _ Store = (*Bolt)(nil)

// Bucket names and meta keys in the bbolt file.
var (
	bktMeta = []byte("meta")
	bktKV   = []byte("kv")
	bktLog  = []byte("log")

	metaRev    = []byte("rev")    // current revision, 8 bytes big-endian
	metaFirst  = []byte("first")  // lowest revision still in the log
	metaSealed = []byte("sealed") // "1" if values are sealed, "0" if not
)

const (
	defaultHistory = 10000
	watchBatch     = 256 // revisions read per watch transaction
)

// OpenBolt opens (creating if needed) the store under cfg.Dir.
func OpenBolt(cfg BoltConfig) (*Bolt, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("store: bolt: data dir is empty: %w", ErrInvalid)
	}
	if cfg.History < 0 {
		return nil, fmt.Errorf("store: bolt: history %d is negative: %w", cfg.History, ErrInvalid)
	}
	s := &Bolt{
		sealer:    cfg.Sealer,
		history:   cfg.History,
		batch:     watchBatch,
		log:       cfg.Logger,
		done:      make(chan struct{}),
		notify:    make(chan struct{}),
		writes:    make(chan *writeReq),
		committed: make(chan struct{}),
	}
	if s.history == 0 {
		s.history = defaultHistory
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.LockTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: bolt: %w", err)
	}
	path := filepath.Join(cfg.Dir, "store.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("store: bolt: open %q: %w", path, err)
	}
	s.db = db
	if err := db.Update(s.initFile); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: bolt: %q: %w", path, err)
	}
	if err := s.checkFile(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: bolt: %q is damaged, refusing to use it (restore it from a backup): %w", path, err)
	}
	go s.commitLoop()
	return s, nil
}

// initFile creates the buckets of a new file and checks those of an old one.
func (s *Bolt) initFile(tx *bolt.Tx) error {
	for _, name := range [][]byte{bktMeta, bktKV, bktLog} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bktMeta)
	want := []byte("0")
	if s.sealer != nil {
		want = []byte("1")
	}
	switch got := meta.Get(metaSealed); {
	case got == nil:
		if err := meta.Put(metaSealed, want); err != nil {
			return err
		}
		if err := meta.Put(metaFirst, revKey(1)); err != nil {
			return err
		}
		if err := writeTally(meta, tally{}); err != nil {
			return err
		}
		return meta.Put(metaRev, revKey(0))
	case !bytes.Equal(got, want):
		if s.sealer == nil {
			return fmt.Errorf("values are sealed but no sealer is configured: %w", ErrInvalid)
		}
		return fmt.Errorf("values are stored unsealed but a sealer is configured: %w", ErrInvalid)
	}
	if _, err := readMeta(meta, metaRev); err != nil {
		return err
	}
	_, err := readMeta(meta, metaFirst)
	return err
}

// Close stops every watch and closes the file. It is idempotent.
func (s *Bolt) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.done)
		s.watchers.Wait()
		<-s.committed
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: bolt: close: %w", err)
		}
	})
	return s.closeErr
}

// view runs fn in a read transaction unless ctx has ended or s is closed.
func (s *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// update runs fn in a write transaction, committed and fsynced on success.
func (s *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Update(fn)
}

// Get implements Store.
func (s *Bolt) Get(ctx context.Context, key string) (KV, error) {
	if err := checkKey(key); err != nil {
		return KV{}, fmt.Errorf("store: get: %w", err)
	}
	var kv KV
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bktKV).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		var err error
		kv, err = s.openRecord(key, v)
		return err
	})
	if err != nil {
		return KV{}, fmt.Errorf("store: get %q: %w", key, err)
	}
	return kv, nil
}

// List implements Store.
func (s *Bolt) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, 0, fmt.Errorf("store: list: %w", err)
	}
	var (
		kvs []KV
		rev int64
	)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		if rev, err = readMeta(tx.Bucket(bktMeta), metaRev); err != nil {
			return err
		}
		c := tx.Bucket(bktKV).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			kv, err := s.openRecord(string(k), v)
			if err != nil {
				return err
			}
			kvs = append(kvs, kv)
		}
		return checkListCount(tx.Bucket(bktMeta), prefix, len(kvs))
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	return kvs, rev, nil
}

// Rev implements Store.
func (s *Bolt) Rev(ctx context.Context) (int64, error) {
	var rev int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		rev, err = readMeta(tx.Bucket(bktMeta), metaRev)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: rev: %w", err)
	}
	return rev, nil
}

// Put implements Store.
func (s *Bolt) Put(ctx context.Context, key string, value []byte) (int64, error) {
	rev, err := s.apply(ctx, nil, []Op{Put(key, value)})
	if err != nil {
		return 0, fmt.Errorf("store: put %q: %w", key, err)
	}
	return rev, nil
}

// Delete implements Store.
func (s *Bolt) Delete(ctx context.Context, key string) (int64, error) {
	rev, err := s.apply(ctx, nil, []Op{Delete(key)})
	if err != nil {
		return 0, fmt.Errorf("store: delete %q: %w", key, err)
	}
	return rev, nil
}

// Txn implements Store.
func (s *Bolt) Txn(ctx context.Context, conds []Cond, ops []Op) (int64, error) {
	rev, err := s.apply(ctx, conds, ops)
	if err != nil {
		return 0, fmt.Errorf("store: txn: %w", err)
	}
	return rev, nil
}

// Compact implements Store.
func (s *Bolt) Compact(ctx context.Context, rev int64) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		cur, err := readMeta(tx.Bucket(bktMeta), metaRev)
		if err != nil {
			return err
		}
		if rev > cur {
			return fmt.Errorf("revision %d is beyond the current revision %d: %w", rev, cur, ErrInvalid)
		}
		return compactLog(tx, rev)
	})
	if err != nil {
		return fmt.Errorf("store: compact %d: %w", rev, err)
	}
	return nil
}

// compactLog drops the log entries up to and including rev.
func compactLog(tx *bolt.Tx, rev int64) error {
	meta := tx.Bucket(bktMeta)
	first, err := readMeta(meta, metaFirst)
	if err != nil {
		return err
	}
	if rev < first {
		return nil
	}
	c := tx.Bucket(bktLog).Cursor()
	for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) <= rev; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return meta.Put(metaFirst, revKey(rev+1))
}

// seal encrypts value for key, or copies it when no Sealer is set (the
// caller may reuse its slice after Put returns).
func (s *Bolt) seal(key string, value []byte) ([]byte, error) {
	if s.sealer == nil {
		return bytes.Clone(value), nil
	}
	ct, err := s.sealer.Encrypt(value, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("seal value of %q: %w", key, err)
	}
	return ct, nil
}

// open decrypts a stored value of key, or copies it out of the bbolt page
// it aliases when no Sealer is set.
func (s *Bolt) open(key string, stored []byte) ([]byte, error) {
	if s.sealer == nil {
		if stored == nil {
			return []byte{}, nil
		}
		return bytes.Clone(stored), nil
	}
	pt, err := s.sealer.Decrypt(stored, []byte(key))
	if err != nil {
		return nil, fmt.Errorf("value of %q does not open under its key (%v): %w", key, err, ErrCorrupt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

func (s *Bolt) openRecord(key string, v []byte) (KV, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return KV{}, fmt.Errorf("key %q: %w", key, err)
	}
	value, err := s.open(key, r.value)
	if err != nil {
		return KV{}, err
	}
	return KV{Key: key, Value: value, CreateRevision: r.create, ModRevision: r.mod}, nil
}

func revKey(rev int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(rev)) }

func readMeta(meta *bolt.Bucket, name []byte) (int64, error) {
	v := meta.Get(name)
	if len(v) != 8 {
		return 0, fmt.Errorf("meta %q: %d bytes, want 8: %w", name, len(v), ErrCorrupt)
	}
	n := binary.BigEndian.Uint64(v)
	if n > 1<<62 {
		return 0, fmt.Errorf("meta %q: %d out of range: %w", name, n, ErrCorrupt)
	}
	return int64(n), nil
}
