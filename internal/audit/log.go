package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"moat/internal/filelock"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/seal"
)

// Log attribute keys.
const (
	logKeyDir   = "dir"
	logKeyIndex = "index"
	logKeyErr   = "err"
)

// DirName is the log's directory inside a moat data directory.
const DirName = "audit"

// Config configures a Log.
type Config struct {
	// Dir holds the log's files; it is created (mode 0700) when missing.
	// Required.
	Dir string
	// Signer signs checkpoints; its name is the checkpoint origin. If nil,
	// the key in Dir/audit.key is used, generated on first open of an empty
	// log (0600, with its verifier key in Dir/audit.pub). Unused when
	// ReadOnly.
	Signer note.Signer
	// Verifier checks checkpoints. If nil it is derived from the key in Dir
	// (writer) or read from Dir/audit.pub (ReadOnly). A key kept in Dir is
	// only as trustworthy as Dir: to detect tampering by someone who can
	// write Dir, pass a verifier key obtained elsewhere.
	Verifier note.Verifier
	// Name is the name, and so the checkpoint origin, of a key generated
	// in Dir; empty means DefaultKeyName.
	Name string
	// Sealer, if set, encrypts each new entry with its index as associated
	// data. Hashes cover the stored (encrypted) bytes, so Verify and Prove
	// work without it; Entries needs it to show sealed entries.
	Sealer Sealer
	// ReadOnly opens the log for Entries, Prove and Verify only, without
	// the writer lock, so a running server's log can be checked from
	// another process. A torn tail is not repaired; Verify reports it.
	ReadOnly bool
	// Now stamps entries whose Time is zero; nil means time.Now.
	Now func() time.Time
	// Logger receives repair warnings; nil means slog.Default().
	Logger *slog.Logger
}

// Log is an append-only, tamper-evident audit log. It is safe for
// concurrent use.
type Log struct {
	dir      string
	signer   note.Signer
	verifier note.Verifier
	sealer   Sealer
	readOnly bool
	now      func() time.Time
	logger   *slog.Logger

	owner *os.File // ownerFile, flock held while open (writer only)
	lock  *os.File // lockFile

	mu      sync.Mutex // guards the fields below
	entries *os.File
	hashes  *os.File
	cps     *os.File
	offsets []int64 // start offset of each entry's frame
	end     int64   // end of the last entry frame
	hashEnd int64   // end of the last stored hash
	cpEnd   int64   // end of the last checkpoint frame
	front   frontier
	latest  []byte // latest signed checkpoint
	broken  error  // a failed write not yet cut back: appends retry the cut first
	closed  bool
}

// Indexed is an entry with its position in the log.
type Indexed struct {
	Index int64 `json:"index"`
	Entry Entry `json:"entry"`
}

// Open opens the log in cfg.Dir, creating it if needed. A writer holds an
// exclusive lock on the directory until Close.
//
// Crash safety: an append writes the entry, its hashes and a new signed
// checkpoint, then fsyncs each file. Open finds what an interrupted append
// left past the latest signed checkpoint, cuts it (saving the bytes beside
// the log), logs a warning and appends an "audit.repair" entry saying what
// was cut, so the loss is on record. Open refuses to cut anything a signed
// checkpoint covers: that is damage or tampering, for Verify to report.
func Open(cfg Config) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: Config.Dir is required")
	}
	l := &Log{
		dir: cfg.Dir, signer: cfg.Signer, verifier: cfg.Verifier, sealer: cfg.Sealer,
		readOnly: cfg.ReadOnly, now: cfg.Now, logger: cfg.Logger,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if err := l.open(cfg); err != nil {
		l.closeFiles()
		return nil, err
	}
	if !l.readOnly {
		// A writer checks everything its checkpoints cover before it adds
		// to it: appending to a damaged log would sign over the damage.
		if err := l.VerifyWith(context.Background(), VerifyOptions{requireSealed: l.sealer != nil}); err != nil {
			l.closeFiles()
			return nil, fmt.Errorf("audit: the log in %q is damaged; refusing to append to it (see moat audit verify): %w", l.dir, err)
		}
	}
	return l, nil
}

func (l *Log) path(name string) string { return filepath.Join(l.dir, name) }

func (l *Log) open(cfg Config) error {
	flags := os.O_RDWR | os.O_CREATE
	if l.readOnly {
		flags = os.O_RDONLY
		if _, err := os.Stat(l.path(entriesFile)); err != nil {
			return fmt.Errorf("audit: no log in %q: %w", l.dir, err)
		}
	} else {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		f, err := os.OpenFile(l.path(ownerFile), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		l.owner = f
		if err := flock(f, filelock.Exclusive|filelock.NonBlocking); err != nil {
			return fmt.Errorf("audit: log %q is open by another writer: %w", l.dir, err)
		}
	}
	var err error
	l.lock, err = os.OpenFile(l.path(lockFile), flags, 0o600)
	if err != nil && !(l.readOnly && errors.Is(err, os.ErrNotExist)) {
		// A copy of a log without its lock file has no writer to wait for.
		return fmt.Errorf("audit: %w", err)
	}
	for _, f := range []struct {
		name string
		dst  **os.File
	}{{entriesFile, &l.entries}, {hashesFile, &l.hashes}, {checkpointsFile, &l.cps}} {
		if *f.dst, err = os.OpenFile(l.path(f.name), flags, 0o600); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if !l.readOnly {
		// Make the files' directory entries durable too.
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	how := filelock.Exclusive
	if l.readOnly {
		how = filelock.Shared
	}
	if err := flock(l.lock, how); err != nil {
		return fmt.Errorf("audit: lock %q: %w", l.dir, err)
	}
	defer flock(l.lock, filelock.Unlock)
	s, err := l.scan()
	if err != nil {
		return err
	}
	if err := l.keys(cfg, s); err != nil {
		return err
	}
	return l.recover(s)
}

// scanned is what Open found in the files.
type scanned struct {
	offsets   []int64 // complete entry frames
	end       int64   // end of the last complete entry frame
	size      int64   // entries file size
	entryErr  error   // why the entries file stops before size
	hashSize  int64
	cps       int // complete checkpoint frames
	cpEnd     int64
	cpSize    int64
	cpErr     error
	lastCP    []byte
	published []byte // checkpointFile, nil if absent
}

func (l *Log) scan() (*scanned, error) {
	s := &scanned{}
	var err error
	if s.size, err = fileSize(l.entries); err != nil {
		return nil, err
	}
	fr := newFrameReader(io.NewSectionReader(l.entries, 0, s.size), maxEntry)
	for {
		_, off, err := fr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.entryErr = err
			break
		}
		s.offsets = append(s.offsets, off)
	}
	s.end = fr.off
	if s.hashSize, err = fileSize(l.hashes); err != nil {
		return nil, err
	}
	if s.cpSize, err = fileSize(l.cps); err != nil {
		return nil, err
	}
	cr := newFrameReader(io.NewSectionReader(l.cps, 0, s.cpSize), maxCheckpoint)
	for {
		p, _, err := cr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.cpErr = err
			break
		}
		s.cps++
		s.lastCP = append(s.lastCP[:0], p...)
	}
	s.cpEnd = cr.off
	if b, err := os.ReadFile(l.path(checkpointFile)); err == nil {
		s.published = b
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return s, nil
}

func fileSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return st.Size(), nil
}

func (l *Log) keys(cfg Config, s *scanned) error {
	if l.readOnly {
		if l.verifier == nil {
			if v, err := LoadVerifier(l.path(VerifierKeyFile)); err == nil {
				l.verifier = v
			}
		}
		return nil
	}
	if l.signer != nil {
		if l.verifier == nil {
			return errors.New("audit: Config.Verifier is required with Config.Signer")
		}
		return l.publishVerifier()
	}
	name := cfg.Name
	if name == "" {
		name = DefaultKeyName
	}
	empty := s.size == 0 && s.hashSize == 0 && s.cpSize == 0
	sg, v, err := loadOrCreateKey(l.dir, name, empty, nil)
	if err != nil {
		return err
	}
	l.signer = sg
	if l.verifier == nil {
		l.verifier = v
	}
	return nil
}

// publishVerifier writes the verifier key beside the log when it is not
// there yet, for offline verification; the signer key is kept elsewhere.
func (l *Log) publishVerifier() error {
	p := l.path(VerifierKeyFile)
	if _, err := os.Stat(p); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	vkey, err := VerifierKey(l.verifier)
	if err != nil {
		return nil // a verifier that cannot be written as a key: nothing to publish
	}
	if err := seal.WriteFileAtomic(p, []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("audit: publish the verifier key: %w", err)
	}
	return nil
}

// recover brings the in-memory state to what the latest signed checkpoint
// covers. An append is committed once its checkpoint is on disk (Record
// returns only then), so anything past the latest checkpoint is an append
// that never returned: a writer cuts it, keeps the cut bytes beside the
// log, and records the cut in an "audit.repair" entry. Nothing is ever
// signed that was not signed when it was appended.
func (l *Log) recover(s *scanned) error {
	m := int64(len(s.offsets))
	h, _ := hashCountEntries(s.hashSize)
	k := min(m, h) // entries with their hashes on disk
	empty := s.size == 0 && s.hashSize == 0 && s.cpSize == 0
	var signed Checkpoint
	if s.cps > 0 && l.verifier != nil {
		c, err := OpenCheckpoint(s.lastCP, l.verifier)
		if err != nil && !l.readOnly {
			return fmt.Errorf("audit: latest checkpoint in %q: %w", l.dir, err)
		}
		signed = c
	}
	keep := k
	if !l.readOnly {
		if s.cps == 0 && !empty {
			return &VerifyError{Index: 0, Reason: fmt.Sprintf("the checkpoint history of %q is missing; run verify", l.dir)}
		}
		if signed.Size > k {
			return &VerifyError{Index: k, Reason: fmt.Sprintf("the signed checkpoint covers %d entries but only %d are intact; run verify", signed.Size, k)}
		}
		keep = signed.Size
	}
	end := s.end
	if keep < m {
		end = s.offsets[keep]
	}
	hashEnd := tlog.StoredHashCount(keep) * tlog.HashSize
	var err error
	if l.front, err = loadFrontier(l.hashes, keep); err != nil {
		return err
	}
	l.offsets, l.end, l.hashEnd, l.cpEnd = s.offsets[:keep], end, hashEnd, s.cpEnd
	if s.cps > 0 {
		l.latest = bytes.Clone(s.lastCP)
	}
	if l.readOnly {
		// An incomplete tail is Verify's to report; Entries and Prove
		// serve the complete prefix.
		return nil
	}
	cut := end < s.size || hashEnd < s.hashSize || s.cpEnd < s.cpSize
	if signed.Size > 0 {
		root, err := tlog.TreeHash(signed.Size, fileHashReader{l.hashes})
		if err != nil {
			return err
		}
		if root != signed.Root {
			return &VerifyError{Reason: fmt.Sprintf("stored hashes do not match the signed checkpoint of size %d; run verify", signed.Size)}
		}
	}
	var repair map[string]string
	if cut {
		if repair, err = l.cutTail(s, keep, m, end, hashEnd); err != nil {
			return err
		}
	}
	if s.cps == 0 {
		if err := l.signLocked(); err != nil {
			return err
		}
	}
	if !bytes.Equal(s.published, l.latest) {
		if err := l.publish(l.latest); err != nil {
			return err
		}
	}
	if repair != nil {
		if _, err := l.appendLocked(Entry{Actor: "moat", Action: "audit.repair", Target: l.dir, Result: "ok", Detail: repair}); err != nil {
			return err
		}
	}
	return nil
}

// cutTail saves the bytes past the committed prefix to "<file>.cut-<index>"
// files, truncates the log files to the prefix, and returns the details
// for the audit.repair entry.
func (l *Log) cutTail(s *scanned, keep, m, end, hashEnd int64) (map[string]string, error) {
	detail := map[string]string{
		"index":                fmt.Sprint(keep),
		"entries_cut":          fmt.Sprint(m - keep),
		"entry_bytes_cut":      fmt.Sprint(s.size - end),
		"hash_bytes_cut":       fmt.Sprint(s.hashSize - hashEnd),
		"checkpoint_bytes_cut": fmt.Sprint(s.cpSize - s.cpEnd),
	}
	if s.entryErr != nil {
		detail["entries_error"] = s.entryErr.Error()
	}
	l.logger.Warn("audit: cutting appends past the latest signed checkpoint",
		logKeyDir, l.dir, logKeyIndex, keep, "entries", m-keep, "entry_bytes", s.size-end,
		"hash_bytes", s.hashSize-hashEnd, "checkpoint_bytes", s.cpSize-s.cpEnd)
	for _, t := range []struct {
		f         *os.File
		name      string
		from, end int64
	}{{l.entries, entriesFile, end, s.size}, {l.hashes, hashesFile, hashEnd, s.hashSize}, {l.cps, checkpointsFile, s.cpEnd, s.cpSize}} {
		if t.from == t.end {
			continue
		}
		b := make([]byte, t.end-t.from)
		if _, err := t.f.ReadAt(b, t.from); err != nil {
			return nil, fmt.Errorf("audit: repair: read %s: %w", t.name, err)
		}
		saved := fmt.Sprintf("%s.cut-%d", t.name, keep)
		if err := os.WriteFile(l.path(saved), b, 0o600); err != nil {
			return nil, fmt.Errorf("audit: repair: %w", err)
		}
		detail[t.name+"_saved_as"] = saved
		if err := t.f.Truncate(t.from); err != nil {
			return nil, fmt.Errorf("audit: repair: %w", err)
		}
		if err := t.f.Sync(); err != nil {
			return nil, fmt.Errorf("audit: repair: %w", err)
		}
	}
	if err := syncDir(l.dir); err != nil {
		return nil, err
	}
	return detail, nil
}

// Close releases the log. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.closeFiles()
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{l.entries, l.hashes, l.cps, l.lock, l.owner} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// Record appends e; it implements Recorder. It returns once the entry, its
// hashes and a checkpoint covering it are on disk.
func (l *Log) Record(ctx context.Context, e Entry) error {
	_, err := l.Append(ctx, e)
	return err
}

// Append appends e and returns its index. A zero e.Time is set to Now.
// A failed append (a full disk, say) is cut back from the files before
// Append returns, so the log stays whole and the next append can succeed.
func (l *Log) Append(ctx context.Context, e Entry) (int64, error) {
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("audit: append: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return -1, err
	}
	if err := flock(l.lock, filelock.Exclusive); err != nil {
		return -1, fmt.Errorf("audit: lock: %w", err)
	}
	defer flock(l.lock, filelock.Unlock)
	return l.appendLocked(e)
}

func (l *Log) writable() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.readOnly:
		return ErrReadOnly
	case l.broken != nil:
		if err := l.rollback(); err != nil {
			return fmt.Errorf("audit: the log cannot be written: a failed append is still to be cut back: %w", err)
		}
		l.logger.Info("audit: the failed append was cut back; appending again", logKeyDir, l.dir)
		l.broken = nil
	}
	return nil
}

// rollback truncates the files to the end of the last committed append
// and syncs them; l.mu is held. Truncating needs no free space.
func (l *Log) rollback() error {
	for _, t := range []struct {
		f   *os.File
		end int64
	}{{l.entries, l.end}, {l.hashes, l.hashEnd}, {l.cps, l.cpEnd}} {
		if err := t.f.Truncate(t.end); err != nil {
			return err
		}
		if err := t.f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// AppendBatch appends es in order with one write and one fsync per file and
// one checkpoint covering them all, and returns the index of the first. It
// is all or nothing: on error no entry of the batch is in the log.
func (l *Log) AppendBatch(ctx context.Context, es []Entry) (int64, error) {
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("audit: append: %w", err)
	}
	if len(es) == 0 {
		return -1, errors.New("audit: append: empty batch")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writable(); err != nil {
		return -1, err
	}
	if err := flock(l.lock, filelock.Exclusive); err != nil {
		return -1, fmt.Errorf("audit: lock: %w", err)
	}
	defer flock(l.lock, filelock.Unlock)
	return l.appendLocked(es...)
}

// appendLocked writes entries; l.mu and the file lock are held.
func (l *Log) appendLocked(es ...Entry) (int64, error) {
	first := l.front.n
	front := l.front
	var frames, hb []byte
	offsets := make([]int64, 0, len(es))
	for _, e := range es {
		if e.Action == "" {
			return -1, fmt.Errorf("audit: entry %d: %w", front.n, ErrNoAction)
		}
		if e.Time.IsZero() {
			e.Time = l.now().UTC()
		}
		stored, hashes, err := addEntry(&front, e, l.sealer)
		if err != nil {
			return -1, err
		}
		offsets = append(offsets, l.end+int64(len(frames)))
		frames = appendFrame(frames, stored)
		for _, h := range hashes {
			hb = append(hb, h[:]...)
		}
	}
	signed, err := l.sign(&front)
	if err != nil {
		return -1, err
	}
	cpFrame := appendFrame(nil, signed)
	if err := l.write(frames, hb, cpFrame); err != nil {
		// Cut what was written back to the last commit, so the log is
		// whole again and the next append (once the disk has room, say)
		// succeeds; if even that fails, appends wait until it does.
		if rerr := l.rollback(); rerr != nil {
			l.broken = errors.Join(err, rerr)
			l.logger.Error("audit: a failed append could not be cut back; appends are refused until it can", logKeyDir, l.dir, logKeyErr, l.broken)
		}
		return -1, fmt.Errorf("audit: append entry %d: %w", first, err)
	}
	l.offsets = append(l.offsets, offsets...)
	l.end += int64(len(frames))
	l.hashEnd += int64(len(hb))
	l.cpEnd += int64(len(cpFrame))
	l.front = front
	l.latest = signed
	if err := l.publish(signed); err != nil {
		// The entries are durable and covered by the checkpoint history;
		// only the published copy is stale, and the next append or open
		// fixes it.
		l.logger.Warn("audit: publish checkpoint", logKeyDir, l.dir, logKeyErr, err)
	}
	return first, nil
}

// addEntry encodes e as entry front.n (sealed with s when set), hashes it
// into the tree and returns its stored bytes and the hashes it added.
func addEntry(front *frontier, e Entry, s Sealer) ([]byte, []tlog.Hash, error) {
	n := front.n
	stored, err := EncodeEntry(n, e, s)
	if err != nil {
		return nil, nil, err
	}
	if len(stored) > maxEntry {
		return nil, nil, fmt.Errorf("audit: entry %d is %d bytes, more than %d", n, len(stored), maxEntry)
	}
	hashes, err := tlog.StoredHashes(n, stored, front)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: hash entry %d: %w", n, err)
	}
	front.add(hashes)
	return stored, hashes, nil
}

func (l *Log) write(frame, hb, cpFrame []byte) error {
	if _, err := l.entries.WriteAt(frame, l.end); err != nil {
		return err
	}
	if _, err := l.hashes.WriteAt(hb, l.hashEnd); err != nil {
		return err
	}
	if _, err := l.cps.WriteAt(cpFrame, l.cpEnd); err != nil {
		return err
	}
	for _, f := range []*os.File{l.entries, l.hashes, l.cps} {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// sign returns a signed checkpoint for the tree in f.
func (l *Log) sign(f *frontier) ([]byte, error) {
	root, err := f.root()
	if err != nil {
		return nil, fmt.Errorf("audit: tree hash: %w", err)
	}
	return SignCheckpoint(Checkpoint{Origin: l.signer.Name(), Size: f.n, Root: root}, l.signer)
}

// signLocked appends a checkpoint for the current tree to the history.
func (l *Log) signLocked() error {
	signed, err := l.sign(&l.front)
	if err != nil {
		return err
	}
	frame := appendFrame(nil, signed)
	if _, err := l.cps.WriteAt(frame, l.cpEnd); err != nil {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	if err := l.cps.Sync(); err != nil {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	l.cpEnd += int64(len(frame))
	l.latest = signed
	return nil
}

// publish replaces the checkpoint file with signed.
func (l *Log) publish(signed []byte) error {
	tmp := l.path(checkpointTemp)
	if err := os.WriteFile(tmp, signed, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.path(checkpointFile))
}

// Checkpoint returns the latest signed checkpoint, the one also published
// in Dir/checkpoint. Every append signs a new one, so it covers every entry.
func (l *Log) Checkpoint() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.latest == nil {
		return nil, errors.New("audit: the log has no checkpoint")
	}
	return bytes.Clone(l.latest), nil
}

// Verifier returns the key that checks the log's checkpoints.
func (l *Log) Verifier() note.Verifier { return l.verifier }

// Size returns the number of entries.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.front.n
}

// Entries returns entries from (inclusive) to to (exclusive), decoded.
// Sealed entries need Config.Sealer.
func (l *Log) Entries(from, to int64) ([]Indexed, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if from < 0 || from > to || to > l.front.n {
		return nil, fmt.Errorf("audit: entries [%d, %d) out of range: the log has %d", from, to, l.front.n)
	}
	out := make([]Indexed, 0, to-from)
	for i := from; i < to; i++ {
		stored, err := l.storedLocked(i)
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

// Stored returns the stored bytes of entry i: what the hashes cover.
func (l *Log) Stored(i int64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if i < 0 || i >= l.front.n {
		return nil, fmt.Errorf("audit: entry %d out of range: the log has %d", i, l.front.n)
	}
	return l.storedLocked(i)
}

func (l *Log) storedLocked(i int64) ([]byte, error) {
	end := l.end
	if i+1 < int64(len(l.offsets)) {
		end = l.offsets[i+1]
	}
	b := make([]byte, end-l.offsets[i])
	if _, err := l.entries.ReadAt(b, l.offsets[i]); err != nil {
		return nil, fmt.Errorf("audit: read entry %d: %w", i, err)
	}
	if len(b) < frameHdr {
		return nil, fmt.Errorf("audit: entry %d: short record", i)
	}
	return b[frameHdr:], nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("audit: sync %q: %w", dir, err)
	}
	return nil
}
