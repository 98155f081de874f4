package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	store "moat/internal/store/kv"
)

// DefaultStorePrefix is where a StoreLog keeps its keys when
// StoreLogConfig.Prefix is empty.
const DefaultStorePrefix = "audit/"

// Keys of a StoreLog under its prefix. Indexes are 16 hex digits, so keys
// sort in index order and a block of 4096 entries shares a prefix.
const (
	storeHead    = "head" // the latest signed checkpoint: the log's one sequence point
	storeEntry   = "e/"   // e/<index>: the stored bytes of an entry
	storeHashes  = "h/"   // h/<index>: the stored hashes tlog.StoredHashes gave for it
	storeHistory = "c/"   // c/<size>: the checkpoint signed at that size
	storeKey     = StoreKeySuffix
)

// StoreKeySuffix is the key, under a log's prefix, where StoreKey keeps
// the signer key; DefaultStoreKey is where a server's log keeps it.
const (
	StoreKeySuffix  = "key"
	DefaultStoreKey = DefaultStorePrefix + StoreKeySuffix
)

// storeOpTimeout bounds each store call a StoreLog makes without a caller's
// context (Size, Checkpoint, Entries, Prove).
const storeOpTimeout = 10 * time.Second

// maxStoreBatch bounds one append: two ops per entry and two for the
// checkpoint must fit one store transaction.
const maxStoreBatch = (store.MaxTxnOps - 2) / 2

// StoreLogConfig configures a StoreLog.
type StoreLogConfig struct {
	// Store holds the log; required. Give it a Sealer: the signer key is
	// kept there too.
	Store store.Store
	// Prefix is the log's key prefix; empty means DefaultStorePrefix.
	Prefix string
	// Signer and Verifier sign and check checkpoints. If Signer is nil the
	// key kept in the store under the prefix is used, made on first open
	// and named Name (empty means DefaultKeyName).
	Signer   note.Signer
	Verifier note.Verifier
	Name     string
	// Sealer, if set, encrypts each entry with its index as associated
	// data, as Config.Sealer does for a Log.
	Sealer Sealer
	// Now stamps entries whose Time is zero; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// StoreLog is the audit log of a cluster: one tlog sequence kept in the
// control-plane store that every server shares, so that whichever server
// writes an entry, the log has one order, one tree and one signed
// checkpoint history. An append is one store transaction, conditional on
// the head (the latest signed checkpoint) being the one the appender
// extended: two servers appending at once cannot both win, and the loser
// rebuilds on the winner's tree and tries again. It offers what Log offers
// (Record, Append, Verify, Prove, consistency proofs) and is safe for
// concurrent use.
type StoreLog struct {
	st       store.Store
	prefix   string
	signer   note.Signer
	verifier note.Verifier
	sealer   Sealer
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex // serializes appends; guards the fields below
	front   frontier   // the tree of the head this process last saw
	headRev int64      // the head key's ModRevision, 0 when absent
	latest  []byte     // that head
}

// OpenStoreLog opens the log under cfg.Prefix in cfg.Store, creating it
// (with its signer key, unless one is given) when absent. It verifies the
// whole log first and refuses a damaged one, naming the first bad entry.
func OpenStoreLog(ctx context.Context, cfg StoreLogConfig) (*StoreLog, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit: StoreLogConfig.Store is required")
	}
	l := &StoreLog{st: cfg.Store, prefix: cfg.Prefix, signer: cfg.Signer, verifier: cfg.Verifier, sealer: cfg.Sealer, now: cfg.Now, log: cfg.Logger}
	if l.prefix == "" {
		l.prefix = DefaultStorePrefix
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	if l.signer == nil {
		name := cfg.Name
		if name == "" {
			name = DefaultKeyName
		}
		s, v, err := StoreKey(ctx, cfg.Store, l.prefix+storeKey, name, "")
		if err != nil {
			return nil, err
		}
		l.signer = s
		if l.verifier == nil {
			l.verifier = v
		}
	}
	if l.verifier == nil {
		return nil, errors.New("audit: StoreLogConfig.Verifier is required with a Signer")
	}
	if err := l.init(ctx); err != nil {
		return nil, err
	}
	if err := l.VerifyWith(ctx, VerifyOptions{requireSealed: l.sealer != nil}); err != nil {
		return nil, fmt.Errorf("audit: the log under %q is damaged; refusing to append to it: %w", l.prefix, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refresh(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *StoreLog) key(kind string, n int64) string {
	return l.prefix + kind + fmt.Sprintf("%016x", n)
}

// init writes the checkpoint of the empty tree when the log has no head.
func (l *StoreLog) init(ctx context.Context) error {
	if _, err := l.st.Get(ctx, l.prefix+storeHead); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("audit: %w", err)
	}
	var f frontier
	signed, err := signTree(l.signer, &f)
	if err != nil {
		return err
	}
	_, err = l.st.Txn(ctx, []store.Cond{{Key: l.prefix + storeHead}}, []store.Op{
		store.Put(l.key(storeHistory, 0), signed),
		store.Put(l.prefix+storeHead, signed),
	})
	if err != nil && !errors.Is(err, store.ErrConflict) { // a conflict: another server made it
		return fmt.Errorf("audit: create log: %w", err)
	}
	return nil
}

// head reads the latest signed checkpoint and its revision.
func (l *StoreLog) head(ctx context.Context) ([]byte, Checkpoint, int64, error) {
	kv, err := l.st.Get(ctx, l.prefix+storeHead)
	if err != nil {
		return nil, Checkpoint{}, 0, fmt.Errorf("audit: read head: %w", err)
	}
	c, err := OpenCheckpoint(kv.Value, l.verifier)
	if err != nil {
		return nil, Checkpoint{}, 0, &VerifyError{Index: 0, File: l.prefix + storeHead, Reason: err.Error()}
	}
	return kv.Value, c, kv.ModRevision, nil
}

// refresh brings l.front to the head's tree; l.mu is held. The hashes a
// frontier needs are read from the stored hashes of the entries that
// completed each subtree, and the result is checked against the head.
func (l *StoreLog) refresh(ctx context.Context) error {
	signed, c, rev, err := l.head(ctx)
	if err != nil {
		return err
	}
	if rev == l.headRev && l.latest != nil {
		return nil
	}
	f := frontier{n: c.Size}
	for level := 0; level < len(f.h) && c.Size>>uint(level) > 0; level++ {
		i := (c.Size>>uint(level))<<uint(level) - 1 // the entry that completed the subtree
		hs, err := l.storedHashes(ctx, i)
		if err != nil {
			return err
		}
		if level >= len(hs) {
			return &VerifyError{Index: i, File: l.key(storeHashes, i), Reason: "the stored hashes of this entry end early"}
		}
		f.h[level] = hs[level]
	}
	if root, err := f.root(); err != nil || root != c.Root {
		return &VerifyError{Index: c.Size, File: l.prefix + storeHashes, Reason: "stored hashes do not match the signed head; run verify"}
	}
	l.front, l.headRev, l.latest = f, rev, signed
	return nil
}

func (l *StoreLog) storedHashes(ctx context.Context, i int64) ([]tlog.Hash, error) {
	kv, err := l.st.Get(ctx, l.key(storeHashes, i))
	if err != nil {
		return nil, fmt.Errorf("audit: stored hashes of entry %d: %w", i, err)
	}
	return splitHashes(kv.Value, i)
}

func splitHashes(b []byte, i int64) ([]tlog.Hash, error) {
	if len(b) == 0 || len(b)%tlog.HashSize != 0 {
		return nil, &VerifyError{Index: i, Reason: fmt.Sprintf("stored hashes of %d bytes, not a multiple of %d", len(b), tlog.HashSize)}
	}
	out := make([]tlog.Hash, len(b)/tlog.HashSize)
	for k := range out {
		copy(out[k][:], b[k*tlog.HashSize:])
	}
	return out, nil
}

// Record appends e; it implements Recorder.
func (l *StoreLog) Record(ctx context.Context, e Entry) error {
	_, err := l.Append(ctx, e)
	return err
}

// Append appends e and returns its index.
func (l *StoreLog) Append(ctx context.Context, e Entry) (int64, error) {
	return l.AppendBatch(ctx, []Entry{e})
}

// AppendBatch appends es (at most 31, and at most store.MaxTxnBytes in
// all) in one store transaction with one checkpoint, and returns the index
// of the first. It is all or nothing.
func (l *StoreLog) AppendBatch(ctx context.Context, es []Entry) (int64, error) {
	if len(es) == 0 {
		return -1, errors.New("audit: append: empty batch")
	}
	if len(es) > maxStoreBatch {
		return -1, fmt.Errorf("audit: append: a batch of %d entries, more than %d", len(es), maxStoreBatch)
	}
	for i := range es {
		if es[i].Action == "" {
			return -1, fmt.Errorf("audit: append: %w", ErrNoAction)
		}
		if es[i].Time.IsZero() {
			es[i].Time = l.now().UTC()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return -1, fmt.Errorf("audit: append: %w", err)
		}
		first, err := l.tryAppend(ctx, es)
		if !errors.Is(err, store.ErrConflict) {
			return first, err
		}
		// Another server appended first: build on its tree.
		if attempt >= 100 {
			return -1, fmt.Errorf("audit: append: the head kept moving: %w", err)
		}
		if err := l.refresh(ctx); err != nil {
			return -1, err
		}
	}
}

// tryAppend writes es on top of the head l last saw; l.mu is held.
func (l *StoreLog) tryAppend(ctx context.Context, es []Entry) (int64, error) {
	front := l.front
	first := front.n
	var ops []store.Op
	size := 0
	for _, e := range es {
		n := front.n
		stored, hashes, err := addEntry(&front, e, l.sealer)
		if err != nil {
			return -1, err
		}
		hb := make([]byte, 0, len(hashes)*tlog.HashSize)
		for _, h := range hashes {
			hb = append(hb, h[:]...)
		}
		size += len(stored) + len(hb)
		ops = append(ops, store.Put(l.key(storeEntry, n), stored), store.Put(l.key(storeHashes, n), hb))
	}
	signed, err := signTree(l.signer, &front)
	if err != nil {
		return -1, err
	}
	if size += 2 * len(signed); size > store.MaxTxnBytes-4096 {
		return -1, fmt.Errorf("audit: append: %d bytes in one batch, more than a store transaction holds", size)
	}
	ops = append(ops, store.Put(l.key(storeHistory, front.n), signed), store.Put(l.prefix+storeHead, signed))
	rev, err := l.st.Txn(ctx, []store.Cond{{Key: l.prefix + storeHead, ModRevision: l.headRev}}, ops)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return -1, err
		}
		return -1, fmt.Errorf("audit: append entry %d: %w", first, err)
	}
	l.front, l.headRev, l.latest = front, rev, signed
	return first, nil
}

// signTree signs the checkpoint of the tree in f.
func signTree(s note.Signer, f *frontier) ([]byte, error) {
	root, err := f.root()
	if err != nil {
		return nil, fmt.Errorf("audit: tree hash: %w", err)
	}
	return SignCheckpoint(Checkpoint{Origin: s.Name(), Size: f.n, Root: root}, s)
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeOpTimeout)
}

// Checkpoint returns the latest signed checkpoint of the cluster's log.
func (l *StoreLog) Checkpoint() ([]byte, error) {
	ctx, cancel := opCtx()
	defer cancel()
	signed, _, _, err := l.head(ctx)
	return signed, err
}

// Size returns the number of entries the latest checkpoint covers; when the
// store cannot be read it returns what this process last saw.
func (l *StoreLog) Size() int64 {
	ctx, cancel := opCtx()
	defer cancel()
	if _, c, _, err := l.head(ctx); err == nil {
		return c.Size
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.front.n
}

// Verifier returns the key that checks the log's checkpoints.
func (l *StoreLog) Verifier() note.Verifier { return l.verifier }

// Close releases nothing: the store belongs to the caller. It is there so
// that both kinds of log close alike.
func (l *StoreLog) Close() error { return nil }

// Stored returns the stored bytes of entry i.
func (l *StoreLog) Stored(i int64) ([]byte, error) {
	ctx, cancel := opCtx()
	defer cancel()
	kv, err := l.st.Get(ctx, l.key(storeEntry, i))
	if err != nil {
		return nil, fmt.Errorf("audit: entry %d: %w", i, err)
	}
	return kv.Value, nil
}

// Entries returns entries from (inclusive) to to (exclusive), decoded.
func (l *StoreLog) Entries(from, to int64) ([]Indexed, error) {
	if n := l.Size(); from < 0 || from > to || to > n {
		return nil, fmt.Errorf("audit: entries [%d, %d) out of range: the log has %d", from, to, n)
	}
	out := make([]Indexed, 0, to-from)
	for i := from; i < to; i++ {
		stored, err := l.Stored(i)
		if err != nil {
			return nil, err
		}
		e, err := DecodeEntry(i, stored, l.sealer)
		if err != nil {
			return nil, err
		}
		out = append(out, Indexed{Index: i, Entry: e})
	}
	return out, nil
}

// storeHashReader reads stored hashes by their tlog index: hash (level L,
// k) was written by entry (k+1)·2^L − 1, at position L of its hashes.
type storeHashReader struct {
	ctx context.Context
	l   *StoreLog
}

func (r storeHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	cache := map[int64][]tlog.Hash{}
	for i, x := range indexes {
		level, k := tlog.SplitStoredHashIndex(x)
		e := (k+1)<<uint(level) - 1
		hs, ok := cache[e]
		if !ok {
			var err error
			if hs, err = r.l.storedHashes(r.ctx, e); err != nil {
				return nil, err
			}
			cache[e] = hs
		}
		if level >= len(hs) {
			return nil, fmt.Errorf("audit: stored hashes of entry %d end before level %d", e, level)
		}
		out[i] = hs[level]
	}
	return out, nil
}

// Prove returns an inclusion proof of entry n in the tree of the latest
// signed checkpoint.
func (l *StoreLog) Prove(n int64) (*Proof, error) {
	ctx, cancel := opCtx()
	defer cancel()
	_, c, _, err := l.head(ctx)
	if err != nil {
		return nil, err
	}
	if n < 0 || n >= c.Size {
		return nil, fmt.Errorf("audit: prove: entry %d is not in the checkpointed log of %d entries", n, c.Size)
	}
	stored, err := l.Stored(n)
	if err != nil {
		return nil, err
	}
	return proveRecord(storeHashReader{ctx, l}, c, n, stored)
}

// ProveConsistency returns the latest signed checkpoint and a proof that
// the tree of the first old entries is a prefix of its tree.
func (l *StoreLog) ProveConsistency(old int64) ([]byte, tlog.TreeProof, error) {
	ctx, cancel := opCtx()
	defer cancel()
	signed, c, _, err := l.head(ctx)
	if err != nil {
		return nil, nil, err
	}
	p, err := proveTree(storeHashReader{ctx, l}, c.Size, old)
	return signed, p, err
}

// Verify checks the whole log as Log.Verify does: every entry against its
// stored hashes, the tree against every checkpoint of the history, and the
// head's signature.
func (l *StoreLog) Verify(ctx context.Context) error { return l.VerifyWith(ctx, VerifyOptions{}) }

// VerifyWith is Verify with options. It reads the head first and checks the
// log up to the size the head signs: appends made meanwhile are not
// covered by it and are left for the next check.
func (l *StoreLog) VerifyWith(ctx context.Context, o VerifyOptions) error {
	hk, err := l.st.Get(ctx, l.prefix+storeHead)
	if err != nil {
		return fmt.Errorf("audit: read head: %w", err)
	}
	c, err := parseUnverified(hk.Value)
	if err != nil {
		return &VerifyError{Index: 0, File: l.prefix + storeHead, Reason: err.Error()}
	}
	kvs, _, err := l.st.List(ctx, l.prefix+storeHistory)
	if err != nil {
		return fmt.Errorf("audit: read checkpoint history: %w", err)
	}
	var cps [][]byte
	for _, kv := range kvs {
		if s, err := strconv.ParseInt(kv.Key[len(l.prefix+storeHistory):], 16, 64); err == nil && s > c.Size {
			continue // signed after the head was read
		}
		cps = append(cps, kv.Value)
	}
	src := &storeSource{ctx: ctx, l: l, size: c.Size}
	o.requireSealed = o.requireSealed || l.sealer != nil
	return verifyTree(ctx, l.verifier, treeState{
		cps: cps, head: hk.Value,
		names: fileNames{entries: l.prefix + storeEntry, hashes: l.prefix + storeHashes, history: l.prefix + storeHistory, head: l.prefix + storeHead},
	}, src, o)
}

// storeSource reads a StoreLog's entries and hashes a block of 4096 at a
// time, up to size.
type storeSource struct {
	ctx     context.Context
	l       *StoreLog
	size    int64
	block   int64 // loaded block, -1 before the first
	entries map[string][]byte
	hashes  map[string][]byte
	cur     []byte // unread stored hashes of the current entry
}

const storeBlockShift = 12

func (s *storeSource) load(b int64) error {
	pfx := fmt.Sprintf("%013x", b)
	s.entries, s.hashes = map[string][]byte{}, map[string][]byte{}
	for _, t := range []struct {
		kind string
		into map[string][]byte
	}{{storeEntry, s.entries}, {storeHashes, s.hashes}} {
		kvs, _, err := s.l.st.List(s.ctx, s.l.prefix+t.kind+pfx)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			t.into[kv.Key] = kv.Value
		}
	}
	s.block = b
	return nil
}

func (s *storeSource) entry(i int64) ([]byte, error) {
	if i >= s.size {
		return nil, io.EOF
	}
	if s.entries == nil || s.block != i>>storeBlockShift {
		if err := s.load(i >> storeBlockShift); err != nil {
			return nil, err
		}
	}
	e, ok := s.entries[s.l.key(storeEntry, i)]
	if !ok {
		return nil, errors.New("missing from the store")
	}
	h, ok := s.hashes[s.l.key(storeHashes, i)]
	if !ok {
		return nil, errors.New("its stored hashes are missing from the store")
	}
	s.cur = h
	return e, nil
}

func (s *storeSource) hash(i int64, h *tlog.Hash) error {
	if len(s.cur) < tlog.HashSize {
		return errors.New("the stored hashes of this entry end early")
	}
	copy(h[:], s.cur)
	s.cur = s.cur[tlog.HashSize:]
	return nil
}

func (s *storeSource) done(i int64) string {
	if len(s.cur) != 0 {
		return fmt.Sprintf("the stored hashes of this entry hold %d bytes too many", len(s.cur))
	}
	return ""
}

func (s *storeSource) trailing() bool { return false }
