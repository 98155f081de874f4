package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"encoding/json"
)

// SpoolConfig configures a Spool.
type SpoolConfig struct {
	// Dir holds the segment files; it is created when missing. Required.
	Dir string
	// MaxBytes bounds the spool on disk. Records that would exceed it are
	// dropped and counted (the oldest records are kept). Zero means 64 MiB.
	MaxBytes int64
	// SegmentBytes is the size at which a segment is closed and a new one
	// started. Zero means 1 MiB, or MaxBytes/4 when that is smaller. A
	// segment is read whole when it is sent, so this bounds the memory a
	// catch-up after an outage takes.
	SegmentBytes int64
	// Sealer, when set, encrypts each spooled record.
	Sealer Sealer
	// Logger receives repair and loss messages; nil discards them.
	Logger *slog.Logger
}

// SpoolStats describes a spool.
type SpoolStats struct {
	Bytes    int64  // on disk
	Records  int64  // waiting to be sent
	Segments int    // files
	Dropped  uint64 // records refused because the spool was full or a write failed
	Corrupt  uint64 // torn or unreadable frames discarded at open or read
}

// Spool is a bounded on-disk queue of records on their way to the server:
// the write-ahead log of a Shipper. Records leave it only once a send has
// succeeded, so delivery is at least once; the server's Ingest, keyed by
// record UID, makes it exactly once. A full spool drops new records and
// counts them, never silently. Writes are not fsynced one by one: a process
// crash loses nothing Append returned, a machine crash loses what the
// kernel had not yet written back (segments are fsynced when full, on Sync
// and on Close) and may tear the last frame, which the next Open detects
// and cuts off, keeping the records before it.
type Spool struct {
	cfg SpoolConfig
	log *slog.Logger

	drainMu sync.Mutex // serializes Next, Ack and Drain; guards cur

	qmu   sync.Mutex // guards queue
	qcond *sync.Cond // on qmu: a group write finished
	queue []*commitWaiter

	mu      sync.Mutex // guards everything below
	segs    []*segment // oldest first; the last may be active
	active  *os.File   // open for append, the file of segs[len(segs)-1]
	size    int64
	records int64
	nextSeq uint64
	closed  bool
	full    bool // the last Append dropped records; logged once per episode

	cur *loaded // the oldest segment, read for sending

	dropped, corrupt atomic.Uint64
}

type segment struct {
	seq     uint64
	path    string
	size    int64
	records int64
	synced  bool // on disk: fsynced since its last write
}

type loaded struct {
	seg  *segment
	recs []Record
	sent int // recs[:sent] were acknowledged
}

const (
	segPrefix = "spool-"
	segSuffix = ".seg"
	// spoolAD binds spooled ciphertexts to their purpose.
	spoolAD = "moat/flow/spool"
)

// OpenSpool opens the spool in cfg.Dir, cutting torn frames off the ends
// of its segments.
func OpenSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, errors.New("flow: spool: empty directory")
	}
	if cfg.MaxBytes < 0 || cfg.SegmentBytes < 0 {
		return nil, fmt.Errorf("flow: spool: negative size (max %d, segment %d)", cfg.MaxBytes, cfg.SegmentBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.SegmentBytes == 0 {
		cfg.SegmentBytes = min(1<<20, max(cfg.MaxBytes/4, 1))
	}
	s := &Spool{cfg: cfg, log: cfg.Logger}
	s.qcond = sync.NewCond(&s.qmu)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("flow: spool: %w", err)
	}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("flow: spool: %w", err)
	}
	for _, e := range ents {
		seq, ok := parseSegName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		seg, err := s.recover(seq, filepath.Join(cfg.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if seg != nil {
			s.segs = append(s.segs, seg)
			s.size += seg.size
			s.records += seg.records
		}
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	return s, nil
}

func segName(seq uint64) string { return fmt.Sprintf("%s%016x%s", segPrefix, seq, segSuffix) }

func parseSegName(name string) (uint64, bool) {
	h, ok := strings.CutPrefix(name, segPrefix)
	if !ok {
		return 0, false
	}
	h, ok = strings.CutSuffix(h, segSuffix)
	if !ok || len(h) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(h, 16, 64)
	return seq, err == nil
}

// recover checks one segment file at open, truncating a torn tail and
// removing a file with nothing in it. It returns nil for a removed file.
func (s *Spool) recover(seq uint64, path string) (*segment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flow: spool: %w", err)
	}
	frames, good, derr := decodeSegment(data)
	if derr != nil {
		s.corrupt.Add(1)
		s.log.Warn("flow spool segment damaged; keeping the records before the damage",
			"path", path, "offset", good, "discarded_bytes", len(data)-good, "records_kept", len(frames), "err", derr)
	}
	if len(frames) == 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("flow: spool: %w", err)
		}
		return nil, nil
	}
	if derr != nil {
		if err := os.Truncate(path, int64(good)); err != nil {
			return nil, fmt.Errorf("flow: spool: repair %q: %w", path, err)
		}
	}
	return &segment{seq: seq, path: path, size: int64(good), records: int64(len(frames)), synced: true}, nil
}

// Append writes recs to the spool and returns how many it kept; the rest
// are dropped and counted because the spool is full. An error means a
// write failed; the records not kept are counted as dropped then too.
//
// When Append returns, the records it kept are in the segment file (in the
// kernel's page cache, not yet on disk): a crash of the process loses none
// of them. Concurrent Appends are committed together, one write for all
// (group commit), so many producers cost few system calls.
func (s *Spool) Append(recs []Record) (int, error) {
	frames := make([][]byte, 0, len(recs))
	for i := range recs {
		b, err := s.encode(&recs[i])
		if err != nil {
			s.dropped.Add(uint64(len(recs)))
			return 0, err
		}
		frames = append(frames, b)
	}
	kept, err := s.commit(frames)
	s.dropped.Add(uint64(len(frames) - kept))
	return kept, err
}

// encode turns r into a frame payload: JSON, sealed when there is a Sealer.
func (s *Spool) encode(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("flow: spool: encode record uid %q: %w", r.Metadata.UID, err)
	}
	if s.cfg.Sealer != nil {
		if b, err = s.cfg.Sealer.Encrypt(b, []byte(spoolAD)); err != nil {
			return nil, fmt.Errorf("flow: spool: seal record uid %q: %w", r.Metadata.UID, err)
		}
	}
	if len(b) > maxFrame {
		return nil, fmt.Errorf("flow: spool: record uid %q encodes to %d bytes, over the %d-byte frame limit", r.Metadata.UID, len(b), maxFrame)
	}
	return b, nil
}

// commitWaiter is one Append's frames waiting for the group write.
type commitWaiter struct {
	frames [][]byte
	done   bool
	kept   int
	err    error
}

// commit writes frames as part of a group: the oldest waiting Append
// writes the frames of every Append queued behind it in one go, then wakes
// them. It returns how many of frames were kept (a prefix).
func (s *Spool) commit(frames [][]byte) (int, error) {
	w := &commitWaiter{frames: frames}
	s.qmu.Lock()
	s.queue = append(s.queue, w)
	for !w.done && s.queue[0] != w {
		s.qcond.Wait()
	}
	if w.done {
		s.qmu.Unlock()
		return w.kept, w.err
	}
	group := s.queue
	s.qmu.Unlock()

	var all [][]byte
	if len(group) == 1 {
		all = frames
	} else {
		for _, g := range group {
			all = append(all, g.frames...)
		}
	}
	kept, err := s.writeFrames(all)

	s.qmu.Lock()
	off := 0
	for _, g := range group {
		g.kept = min(max(kept-off, 0), len(g.frames))
		if g.kept < len(g.frames) {
			g.err = err
		}
		off += len(g.frames)
		g.done = true
	}
	s.queue = s.queue[len(group):]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	s.qcond.Broadcast()
	s.qmu.Unlock()
	return w.kept, w.err
}

// writeFrames appends frames to the active segment, rotating as segments
// fill, and returns how many it kept: a prefix, cut where the spool is
// full or a write failed.
func (s *Spool) writeFrames(frames [][]byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errors.New("flow: spool closed")
	}
	kept := 0 // records written and accounted
	var buf []byte
	var pending, pendingBytes int64
	// flush writes buf to the active segment and accounts for it; on failure
	// the segment is cut back to its last whole frame.
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		seg := s.segs[len(s.segs)-1]
		if _, err := s.active.Write(buf); err != nil {
			_ = s.active.Truncate(seg.size)
			return fmt.Errorf("flow: spool: write %q: %w", seg.path, err)
		}
		seg.size += pendingBytes
		seg.records += pending
		seg.synced = false
		s.size += pendingBytes
		s.records += pending
		kept += int(pending)
		buf, pending, pendingBytes = buf[:0], 0, 0
		return nil
	}
	for _, f := range frames {
		n := int64(frameHeader + len(f))
		if s.size+pendingBytes+n > s.cfg.MaxBytes {
			if err := flush(); err != nil {
				return kept, err
			}
			if !s.full {
				s.full = true
				s.log.Warn("flow spool full; dropping new records until it drains (counted in moat_flow_spool_dropped_records_total)", "max_bytes", s.cfg.MaxBytes)
			}
			return kept, nil
		}
		if s.active == nil || s.segs[len(s.segs)-1].size+pendingBytes+n > s.cfg.SegmentBytes && s.segs[len(s.segs)-1].records+pending > 0 {
			if err := flush(); err != nil {
				return kept, err
			}
			if err := s.rotate(); err != nil {
				return kept, err
			}
			if s.size+n > s.cfg.MaxBytes { // the new segment's magic took the room
				return kept, nil
			}
		}
		buf = appendFrame(buf, f)
		pending++
		pendingBytes += n
	}
	if err := flush(); err != nil {
		return kept, err
	}
	s.full = false
	return kept, nil
}

// rotate closes the active segment, full, and starts a new one. Called
// with s.mu.
func (s *Spool) rotate() error {
	if err := s.closeActive(); err != nil {
		return err
	}
	seq := s.nextSeq
	path := filepath.Join(s.cfg.Dir, segName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("flow: spool: %w", err)
	}
	if _, err := f.Write([]byte(segMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("flow: spool: write %q: %w", path, err)
	}
	s.nextSeq++
	n := int64(len(segMagic))
	s.segs = append(s.segs, &segment{seq: seq, path: path, size: n})
	s.size += n
	s.active = f
	return nil
}

// closeActive syncs and closes the active segment. Called with s.mu.
func (s *Spool) closeActive() error {
	if s.active == nil {
		return nil
	}
	f := s.active
	s.active = nil
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("flow: spool: sync %q: %w", f.Name(), err)
	}
	s.segs[len(s.segs)-1].synced = true
	if err := f.Close(); err != nil {
		return fmt.Errorf("flow: spool: close %q: %w", f.Name(), err)
	}
	return nil
}

// Sync writes every segment to disk, so that a crash of the machine (not
// only of the process) keeps what the spool holds. The shipper calls it
// when the server becomes unreachable: records then stay for a while.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i, seg := range s.segs {
		if seg.synced {
			continue
		}
		var err error
		if i == len(s.segs)-1 && s.active != nil {
			err = s.active.Sync()
		} else {
			err = syncFile(seg.path)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("flow: spool: sync %q: %w", seg.path, err))
			continue
		}
		seg.synced = true
	}
	return errors.Join(errs...)
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// SpoolBatch is records handed out by Next, to be acknowledged with Ack
// once sent.
type SpoolBatch struct {
	Records []Record
	seg     *segment
	end     int
}

// Next returns up to max of the oldest unacknowledged records, or nil when
// the spool is empty. Until Ack, the same records come back from Next.
func (s *Spool) Next(max int) (*SpoolBatch, error) {
	if max <= 0 {
		return nil, fmt.Errorf("flow: spool: batch size must be positive, got %d", max)
	}
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	for {
		if s.cur == nil {
			if err := s.load(); err != nil || s.cur == nil {
				return nil, err
			}
		}
		if s.cur.sent < len(s.cur.recs) {
			end := min(s.cur.sent+max, len(s.cur.recs))
			return &SpoolBatch{Records: s.cur.recs[s.cur.sent:end], seg: s.cur.seg, end: end}, nil
		}
		if err := s.finish(); err != nil {
			return nil, err
		}
	}
}

// Ack records that b was sent; a segment is deleted once all of it was.
func (s *Spool) Ack(b *SpoolBatch) error {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.cur == nil || s.cur.seg != b.seg || b.end <= s.cur.sent {
		return nil
	}
	s.cur.sent = b.end
	if s.cur.sent == len(s.cur.recs) {
		return s.finish()
	}
	return nil
}

// load reads the oldest segment into s.cur. When that is the segment
// appends go to, it is detached first (the next Append starts a new one)
// and closed without an fsync: it is about to be sent and deleted, and
// Sync writes it to disk if it is not. Called with drainMu.
func (s *Spool) load() error {
	s.mu.Lock()
	if len(s.segs) == 0 {
		s.mu.Unlock()
		return nil
	}
	seg := s.segs[0]
	var detached *os.File
	if len(s.segs) == 1 && s.active != nil {
		detached, s.active = s.active, nil
	}
	s.mu.Unlock()
	if detached != nil {
		if err := detached.Close(); err != nil {
			return fmt.Errorf("flow: spool: close %q: %w", seg.path, err)
		}
	}
	data, err := os.ReadFile(seg.path)
	if err != nil {
		return fmt.Errorf("flow: spool: %w", err)
	}
	frames, good, derr := decodeSegment(data)
	if derr != nil {
		s.corrupt.Add(1)
		s.log.Warn("flow spool segment damaged while reading", "path", seg.path, "offset", good, "err", derr)
	}
	l := &loaded{seg: seg}
	for i, f := range frames {
		if s.cfg.Sealer != nil {
			if f, err = s.cfg.Sealer.Decrypt(f, []byte(spoolAD)); err != nil {
				s.corrupt.Add(1)
				s.log.Warn("flow spool record cannot be opened", "path", seg.path, "frame", i, "err", err)
				continue
			}
		}
		var r Record
		if err := json.Unmarshal(f, &r); err != nil {
			s.corrupt.Add(1)
			s.log.Warn("flow spool record cannot be decoded", "path", seg.path, "frame", i, "err", err)
			continue
		}
		l.recs = append(l.recs, r)
	}
	// Frames that could not be used are no longer waiting.
	s.mu.Lock()
	lost := seg.records - int64(len(l.recs))
	seg.records -= lost
	s.records -= lost
	s.mu.Unlock()
	s.cur = l
	return nil
}

// finish deletes the fully sent current segment. Called with drainMu.
func (s *Spool) finish() error {
	seg := s.cur.seg
	s.cur = nil
	if err := os.Remove(seg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("flow: spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) > 0 && s.segs[0] == seg {
		s.segs = s.segs[1:]
		s.size -= seg.size
		s.records -= seg.records
	}
	return nil
}

// Drain hands the spooled records to send in batches of up to batch,
// oldest first, removing each batch only after send returns nil. It stops
// at the first error, which it returns; what was not sent stays spooled.
func (s *Spool) Drain(ctx context.Context, batch int, send func(context.Context, []Record) error) (int, error) {
	sent := 0
	for {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		b, err := s.Next(batch)
		if err != nil || b == nil {
			return sent, err
		}
		if err := send(ctx, b.Records); err != nil {
			return sent, err
		}
		if err := s.Ack(b); err != nil {
			return sent, err
		}
		sent += len(b.Records)
	}
}

// Stats describes the spool now.
func (s *Spool) Stats() SpoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SpoolStats{
		Bytes:    s.size,
		Records:  s.records,
		Segments: len(s.segs),
		Dropped:  s.dropped.Load(),
		Corrupt:  s.corrupt.Load(),
	}
}

// Dropped counts records lost because the spool was full or a write failed.
func (s *Spool) Dropped() uint64 { return s.dropped.Load() }

// Close syncs and closes the active segment. It is idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeActive()
}
