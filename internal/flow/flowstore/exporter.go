package flowstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"moat/internal/flow"
	"moat/internal/seal"
)

// An Exporter copies every record a Store keeps into rotated, gzipped
// files (FileWriter's files) for a shipper to pick up, and loses none: it
// reads the store itself, behind a durable Cursor, rather than following
// records in memory, so a sink slower than ingestion only makes it lag, and
// a stop or a crash resumes where the last commit left off.
//
// Exactly once, how: after each batch the live file is synced, then the
// cursor and the live file's size are saved together (seal.WriteFileAtomic)
// in a state file beside it (".NAME.state"). On start, bytes past the saved
// size (lines written after the last commit, before a crash) are cut off
// and their records read again from the store. A rotation saves its
// intent (the rotated name) before it renames the live file, and a start
// finishes one a crash interrupted; rotated files left uncompressed are
// compressed then. So every record is in the rotated files exactly once. A
// tailer of the live file may, after a crash, have read lines past the
// last commit that are then cut and written again: such a reader dedups by
// the record's metadata.uid (OCSF); rotated .gz files need no dedup.
//
// A new export (no state file) starts after the records stored so far:
// the history is what `moat flows export` writes.
type Exporter struct {
	cfg   ExporterConfig
	log   *slog.Logger
	fw    *FileWriter
	state exportState
	path  string // the state file

	exported atomic.Uint64
}

// ExporterConfig configures an Exporter.
type ExporterConfig struct {
	// Store is the store exported. Required.
	Store *Store
	// File is the files written; RotateEvery is applied by Run.
	File FileConfig
	// Batch is how many records are written between two commits; zero
	// means 1000.
	Batch int
	// Poll is how often a caught-up exporter looks at the store besides
	// being woken by ingestion; zero means 1s.
	Poll time.Duration
	// Retry is the wait after a failed write (a full disk) before the
	// same records are tried again; zero means 5s.
	Retry time.Duration
	// Logger receives failures and resumptions; nil discards them.
	Logger *slog.Logger
}

// exportState is what the state file keeps.
type exportState struct {
	Cursor   *Cursor `json:"cursor"`
	LiveSize int64   `json:"live_size"`
	// Rotating names the file the live one is being renamed to: set
	// before the rename, cleared after.
	Rotating string `json:"rotating,omitempty"`
}

// StateFile is where an export of cfg keeps its position.
func StateFile(cfg FileConfig) string {
	return filepath.Join(filepath.Dir(cfg.Path), "."+filepath.Base(cfg.Path)+".state")
}

// NewExporter opens the export's files and state, finishing what a crash
// interrupted (see Exporter). A state file that cannot be read is an error
// naming it: the export would not know which records it wrote.
func NewExporter(cfg ExporterConfig) (*Exporter, error) {
	if cfg.Store == nil {
		return nil, errors.New("flow: export: nil store")
	}
	if cfg.Batch < 0 || cfg.Poll < 0 || cfg.Retry < 0 {
		return nil, errors.New("flow: export: negative batch or period")
	}
	if cfg.Batch == 0 {
		cfg.Batch = 1000
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.Retry == 0 {
		cfg.Retry = 5 * time.Second
	}
	fw, err := NewFileWriter(cfg.File)
	if err != nil {
		return nil, err
	}
	e := &Exporter{cfg: cfg, log: cfg.Logger, fw: fw, path: StateFile(fw.cfg)}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := e.load(); err != nil {
		return nil, err
	}
	return e, nil
}

// load reads the state (making it for a new export) and repairs the files.
func (e *Exporter) load() error {
	live := e.fw.cfg.Path
	b, err := os.ReadFile(e.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c, err := e.cfg.Store.Mark(context.Background())
		if err != nil {
			return err
		}
		e.state = exportState{Cursor: c, LiveSize: sizeOf(live)}
		return e.save()
	case err != nil:
		return fmt.Errorf("flow: export state: %w", err)
	}
	if err := json.Unmarshal(b, &e.state); err != nil || e.state.Cursor == nil || e.state.LiveSize < 0 {
		return fmt.Errorf("flow: export state %q is damaged (%v): remove it to export from now on, and re-export what is missing with moat flows export", e.path, err)
	}
	if r := e.state.Rotating; r != "" {
		if fileExists(live) {
			if err := truncateTo(live, e.state.LiveSize); err != nil {
				return err
			}
			if err := os.Rename(live, r); err != nil {
				return fmt.Errorf("flow: export: finish rotation: %w", err)
			}
		}
		e.state.Rotating, e.state.LiveSize = "", 0
		if err := e.save(); err != nil {
			return err
		}
	}
	switch size := sizeOf(live); {
	case size > e.state.LiveSize:
		e.log.Info("flow export: cutting lines written after the last commit; their records are written again", "file", live, "bytes", size-e.state.LiveSize)
		if err := truncateTo(live, e.state.LiveSize); err != nil {
			return err
		}
	case size < e.state.LiveSize:
		e.log.Warn("flow export: the live file is shorter than this export wrote: removed or cut by something else", "file", live, "want", e.state.LiveSize, "have", size)
		e.state.LiveSize = size
		if err := e.save(); err != nil {
			return err
		}
	}
	// Rotated files a stop left uncompressed, and compressions cut short.
	ext := filepath.Ext(live)
	stem := strings.TrimSuffix(live, ext)
	tmps, _ := filepath.Glob(stem + "-*" + ext + ".gz.tmp")
	for _, t := range tmps {
		os.Remove(t)
	}
	plain, _ := filepath.Glob(stem + "-*" + ext)
	for _, p := range plain {
		e.fw.finish(p)
	}
	return nil
}

func sizeOf(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func truncateTo(path string, size int64) error {
	if err := os.Truncate(path, size); err != nil {
		return fmt.Errorf("flow: export: %w", err)
	}
	return nil
}

func (e *Exporter) save() error {
	b, err := json.Marshal(e.state)
	if err != nil {
		return err
	}
	if err := seal.WriteFileAtomic(e.path, b, 0o600); err != nil {
		return fmt.Errorf("flow: export state: %w", err)
	}
	return nil
}

// Exported counts the records written since NewExporter.
func (e *Exporter) Exported() uint64 { return e.exported.Load() }

// Run exports until ctx ends, then commits and closes the files (waiting
// for compressions). A failed write (a full disk) is logged and the same
// records are tried again after Retry; a store that cannot be read ends
// Run with the error.
func (e *Exporter) Run(ctx context.Context) (err error) {
	defer func() { err = errors.Join(err, e.close()) }()
	poll := time.NewTicker(e.cfg.Poll)
	defer poll.Stop()
	var rotate <-chan time.Time
	if every := e.fw.cfg.RotateEvery; every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		rotate = t.C
	}
	for {
		woken := e.cfg.Store.Changed()
		n, err := e.step(ctx)
		var werr *writeError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &werr):
			e.log.Error("flow export: write failed; retrying", "file", e.fw.cfg.Path, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(e.cfg.Retry):
			}
			continue
		case err != nil:
			return err
		case n == e.cfg.Batch:
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-woken:
		case <-poll.C:
		case <-rotate:
			if err := e.rotate(); err != nil {
				e.log.Error("flow export: rotation failed", "file", e.fw.cfg.Path, "err", err)
			}
		}
	}
}

// writeError is a failure of the files, not of the store.
type writeError struct{ err error }

func (w *writeError) Error() string { return w.err.Error() }
func (w *writeError) Unwrap() error { return w.err }

// step writes up to Batch records after the cursor and commits them.
// Lines written and not committed (a failure midway) are cut off again,
// so the live file always ends at a commit.
func (e *Exporter) step(ctx context.Context) (int, error) {
	cur := e.state.Cursor.Clone()
	n, err := e.cfg.Store.Next(ctx, cur, e.cfg.Batch, func(r flow.Record) error {
		b, ok, err := e.fw.line(&r)
		if err != nil || !ok {
			return err
		}
		// Rotate by size only at a commit: the records before this one.
		if e.fw.size > 0 && e.fw.size+int64(len(b)) > e.fw.max {
			if err := e.commit(cur); err != nil {
				return err
			}
			if err := e.rotate(); err != nil {
				return &writeError{err}
			}
		}
		if err := e.fw.openLocked(); err != nil {
			return &writeError{err}
		}
		m, err := e.fw.f.Write(b)
		e.fw.size += int64(m)
		if err != nil {
			return &writeError{fmt.Errorf("flow: export %q: %w", e.fw.cfg.Path, err)}
		}
		return nil
	})
	if err == nil {
		err = e.commit(cur)
	}
	if err != nil {
		e.rollback()
		return 0, err
	}
	e.exported.Add(uint64(n))
	return n, nil
}

// commit makes the lines written durable, then the cursor with the size.
func (e *Exporter) commit(c *Cursor) error {
	if e.fw.f != nil {
		if err := e.fw.f.Sync(); err != nil {
			return &writeError{fmt.Errorf("flow: export %q: %w", e.fw.cfg.Path, err)}
		}
	}
	prev := e.state
	e.state.Cursor, e.state.LiveSize = c.Clone(), e.fw.size
	if err := e.save(); err != nil {
		e.state = prev
		return &writeError{err}
	}
	return nil
}

// rollback cuts the live file back to the last commit.
func (e *Exporter) rollback() {
	if e.fw.f == nil || e.fw.size == e.state.LiveSize {
		return
	}
	e.fw.f.Close()
	e.fw.f, e.fw.size = nil, 0
	if err := truncateTo(e.fw.cfg.Path, e.state.LiveSize); err != nil {
		e.log.Error("flow export: cutting uncommitted lines failed", "err", err)
	}
}

// rotate renames the live file, committed, to its rotated name (its
// intent saved first) and compresses it in the background. An empty live
// file stays.
func (e *Exporter) rotate() error {
	fw := e.fw
	if err := fw.openLocked(); err != nil {
		return err
	}
	if fw.size == 0 || fw.cfg.Format == FormatVPC && fw.size == int64(len(VPCHeader)+1) {
		return nil
	}
	rotated := rotatedName(fw.cfg)
	e.state.Rotating = rotated
	if err := e.save(); err != nil {
		e.state.Rotating = ""
		return err
	}
	if err := fw.f.Close(); err != nil {
		return fmt.Errorf("flow: export %q: %w", fw.cfg.Path, err)
	}
	fw.f, fw.size = nil, 0
	if err := os.Rename(fw.cfg.Path, rotated); err != nil {
		e.state.Rotating = ""
		return errors.Join(fmt.Errorf("flow: export %q: rotate: %w", fw.cfg.Path, err), e.save())
	}
	e.state.Rotating, e.state.LiveSize = "", 0
	if err := e.save(); err != nil {
		return err
	}
	fw.finish(rotated)
	return nil
}

func (e *Exporter) close() error {
	e.rollback()
	return e.fw.Close()
}
