package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"moat/internal/filelock"
	"os"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Verify recomputes every leaf and interior hash from the stored entries,
// compares them with the stored hashes and with the root of every signed
// checkpoint in the history, and checks the signature of the latest
// checkpoint and of the published copy. It returns nil only when all of
// that holds and the latest checkpoint covers every entry; otherwise a
// *VerifyError naming the first entry that is not vouched for.
//
// Each Record or Append signs a checkpoint, so a rewrite of entries and
// hashes together is pinned to the first entry it changed; AppendBatch
// signs one per batch, pinning it to the first entry of the batch.
//
// History checkpoints whose roots match are not signature-checked one by
// one (that costs about 50µs each); VerifyAllCheckpoints does that too.
func (l *Log) Verify(ctx context.Context) error { return l.verify(ctx, false) }

// VerifyAllCheckpoints is Verify that also checks the signature of every
// checkpoint in the history.
func (l *Log) VerifyAllCheckpoints(ctx context.Context) error { return l.verify(ctx, true) }

// verifySnapshot is the state of the files at one instant, taken under the
// shared file lock so no append is half-way through.
type verifySnapshot struct {
	entries, hashes int64
	cps             []byte
	published       []byte
	publishedErr    error
}

func (l *Log) snapshot() (*verifySnapshot, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.verifier == nil {
		return nil, errors.New("audit: verify: no verifier key (Config.Verifier)")
	}
	if err := flock(l.lock, filelock.Shared); err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	defer flock(l.lock, filelock.Unlock)
	s := &verifySnapshot{}
	var err error
	if s.entries, err = fileSize(l.entries); err != nil {
		return nil, err
	}
	if s.hashes, err = fileSize(l.hashes); err != nil {
		return nil, err
	}
	n, err := fileSize(l.cps)
	if err != nil {
		return nil, err
	}
	s.cps = make([]byte, n)
	if _, err := l.cps.ReadAt(s.cps, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	s.published, s.publishedErr = os.ReadFile(l.path(checkpointFile))
	return s, nil
}

// histCP is one checkpoint of the history.
type histCP struct {
	signed []byte
	cp     Checkpoint
}

func (l *Log) verify(ctx context.Context, allSigs bool) error {
	s, err := l.snapshot()
	if err != nil {
		return err
	}
	hist, herr := l.history(s.cps)
	if herr != nil {
		return herr
	}
	// first keeps the problem with the smallest index.
	var first *VerifyError
	keep := func(e *VerifyError) {
		if e != nil && (first == nil || e.Index < first.Index) {
			first = e
		}
	}
	keep(l.checkLatest(hist, s, allSigs))

	var front frontier
	next := 0 // next history checkpoint to compare
	prev := int64(0)
	compare := func() *VerifyError {
		for next < len(hist) && hist[next].cp.Size == front.n {
			c := hist[next]
			root, err := front.root()
			if err != nil {
				return &VerifyError{Index: prev, Reason: err.Error()}
			}
			if root != c.cp.Root {
				if _, err := OpenCheckpoint(c.signed, l.verifier); err != nil {
					return &VerifyError{Index: prev, Reason: fmt.Sprintf("checkpoint %d (size %d) has a bad signature: %v", next, c.cp.Size, err)}
				}
				return &VerifyError{Index: prev, Reason: fmt.Sprintf("the tree recomputed from the stored entries differs from the signed checkpoint of size %d: entries from %d on were rewritten together with their stored hashes", c.cp.Size, prev)}
			}
			prev = c.cp.Size
			next++
		}
		return nil
	}
	if e := compare(); e != nil {
		keep(e)
		return first
	}
	fr := newFrameReader(io.NewSectionReader(l.entries, 0, s.entries), maxEntry)
	hr := bufio.NewReaderSize(io.NewSectionReader(l.hashes, 0, s.hashes), 1<<16)
	var got tlog.Hash
	for i := int64(0); first == nil || i < first.Index; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("audit: verify: %w", err)
			}
		}
		stored, off, err := fr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			keep(&VerifyError{Index: i, Reason: fmt.Sprintf("unreadable record at offset %d: %v", off, err)})
			break
		}
		want, err := tlog.StoredHashes(i, stored, &front)
		if err != nil {
			keep(&VerifyError{Index: i, Reason: err.Error()})
			break
		}
		bad := ""
		for j, w := range want {
			if _, err := io.ReadFull(hr, got[:]); err != nil {
				bad = "the hash file ends before this entry's hashes"
				break
			}
			if got != w {
				if j == 0 {
					bad = "stored bytes do not match the stored leaf hash"
				} else {
					bad = fmt.Sprintf("stored interior hash (level %d) does not match the recomputed one", j)
				}
				break
			}
		}
		if bad != "" {
			keep(&VerifyError{Index: i, Reason: bad})
			break
		}
		front.add(want)
		if e := compare(); e != nil {
			keep(e)
			break
		}
	}
	if first != nil {
		return first
	}
	n := front.n
	if _, err := hr.ReadByte(); err == nil {
		keep(&VerifyError{Index: n, Reason: "the hash file holds hashes for entries that are missing from the log"})
	}
	latest := hist[len(hist)-1].cp
	if latest.Size > n {
		keep(&VerifyError{Index: n, Reason: fmt.Sprintf("missing: the signed checkpoint covers %d entries, the log holds %d", latest.Size, n)})
	} else if next < len(hist) {
		keep(&VerifyError{Index: prev, Reason: fmt.Sprintf("checkpoint %d claims size %d, which the log never had", next, hist[next].cp.Size)})
	}
	if latest.Size < n {
		keep(&VerifyError{Index: latest.Size, Reason: fmt.Sprintf("not covered by a signed checkpoint (the latest covers %d of %d entries)", latest.Size, n)})
	}
	if first != nil {
		return first
	}
	return nil
}

// history parses the checkpoint history without checking signatures.
func (l *Log) history(b []byte) ([]histCP, error) {
	var hist []histCP
	fr := newFrameReader(bytes.NewReader(b), maxCheckpoint)
	var prevSize int64 = -1
	for i := 0; ; i++ {
		p, off, err := fr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &VerifyError{Index: max(prevSize, 0), Reason: fmt.Sprintf("checkpoint history: record %d at offset %d: %v", i, off, err)}
		}
		c, err := parseUnverified(p)
		if err != nil {
			return nil, &VerifyError{Index: max(prevSize, 0), Reason: fmt.Sprintf("checkpoint history: record %d: %v", i, err)}
		}
		if c.Size <= prevSize {
			return nil, &VerifyError{Index: c.Size, Reason: fmt.Sprintf("checkpoint history: record %d has size %d after size %d", i, c.Size, prevSize)}
		}
		prevSize = c.Size
		hist = append(hist, histCP{signed: bytes.Clone(p), cp: c})
	}
	if len(hist) == 0 {
		return nil, &VerifyError{Index: 0, Reason: "the log has no signed checkpoint"}
	}
	return hist, nil
}

// parseUnverified returns the checkpoint inside a signed note without
// checking the signature.
func parseUnverified(signed []byte) (Checkpoint, error) {
	_, err := note.Open(signed, note.VerifierList())
	var u *note.UnverifiedNoteError
	if !errors.As(err, &u) {
		return Checkpoint{}, fmt.Errorf("malformed signed note: %v", err)
	}
	return ParseCheckpoint([]byte(u.Note.Text))
}

// checkLatest checks the signatures: the newest checkpoint's (or, with
// all, every one's) and the published copy's.
func (l *Log) checkLatest(hist []histCP, s *verifySnapshot, all bool) *VerifyError {
	// good is the size up to which a checkpoint with a valid signature
	// vouches; bad signatures above it are reported from there.
	last := len(hist) - 1
	if all {
		for i, h := range hist {
			if _, err := OpenCheckpoint(h.signed, l.verifier); err != nil {
				at := int64(0)
				if i > 0 {
					at = hist[i-1].cp.Size
				}
				return &VerifyError{Index: at, Reason: fmt.Sprintf("checkpoint %d (size %d): %v", i, h.cp.Size, err)}
			}
		}
	} else if _, err := OpenCheckpoint(hist[last].signed, l.verifier); err != nil {
		at := int64(0)
		for i := last - 1; i >= 0; i-- {
			if _, e := OpenCheckpoint(hist[i].signed, l.verifier); e == nil {
				at = hist[i].cp.Size
				break
			}
		}
		return &VerifyError{Index: at, Reason: fmt.Sprintf("latest checkpoint (size %d): %v", hist[last].cp.Size, err)}
	}
	latest := hist[last].cp.Size
	if s.publishedErr != nil {
		return &VerifyError{Index: latest, Reason: fmt.Sprintf("published checkpoint: %v", s.publishedErr)}
	}
	if _, err := OpenCheckpoint(s.published, l.verifier); err != nil {
		return &VerifyError{Index: latest, Reason: fmt.Sprintf("published checkpoint: %v", err)}
	}
	if !bytes.Equal(s.published, hist[last].signed) {
		return &VerifyError{Index: latest, Reason: "published checkpoint differs from the latest in the history"}
	}
	return nil
}
