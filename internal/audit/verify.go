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

// VerifyOptions widens what Verify checks.
type VerifyOptions struct {
	// AllCheckpoints checks the signature of every checkpoint of the
	// history, not only of those whose roots disagree (about 50µs each).
	AllCheckpoints bool
	// Trusted are signed checkpoints saved earlier, outside the log (by an
	// agent, a CLI, a monitoring job). The log must still hold every entry
	// each one covers, with the same root: a log cut back to an earlier
	// checkpoint, or rewritten and re-signed by someone holding the signer
	// key, fails here even though it is consistent with itself.
	Trusted [][]byte

	// requireSealed refuses a plaintext entry anywhere (a writer with a
	// Sealer sets it); without it a log is sealed throughout if its first
	// entry is.
	requireSealed bool
}

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
// A log is consistent with itself after someone holding the signer key cut
// it back or rewrote it: only checkpoints kept elsewhere catch that (see
// VerifyOptions.Trusted).
func (l *Log) Verify(ctx context.Context) error { return l.VerifyWith(ctx, VerifyOptions{}) }

// VerifyAllCheckpoints is Verify that also checks the signature of every
// checkpoint in the history.
func (l *Log) VerifyAllCheckpoints(ctx context.Context) error {
	return l.VerifyWith(ctx, VerifyOptions{AllCheckpoints: true})
}

// VerifyWith is Verify with options.
func (l *Log) VerifyWith(ctx context.Context, o VerifyOptions) error {
	s, err := l.snapshot()
	if err != nil {
		return err
	}
	src := &fileSource{
		fr:   newFrameReader(io.NewSectionReader(l.entries, 0, s.entries), maxEntry),
		hr:   bufio.NewReaderSize(io.NewSectionReader(l.hashes, 0, s.hashes), 1<<16),
		path: l.path(entriesFile),
	}
	cps, herr := splitHistory(s.cps)
	if herr != nil {
		herr.File = l.path(checkpointsFile)
		return herr
	}
	return verifyTree(ctx, l.verifier, treeState{
		cps: cps, head: s.published, headErr: s.publishedErr,
		names: fileNames{entries: l.path(entriesFile), hashes: l.path(hashesFile), history: l.path(checkpointsFile), head: l.path(checkpointFile)},
	}, src, o)
}

// splitHistory splits the checkpoints file into its records; a broken
// record is reported at the size of the last readable checkpoint.
func splitHistory(b []byte) ([][]byte, *VerifyError) {
	var out [][]byte
	var prevSize int64
	fr := newFrameReader(bytes.NewReader(b), maxCheckpoint)
	for i := 0; ; i++ {
		p, off, err := fr.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, &VerifyError{Index: prevSize, Reason: fmt.Sprintf("checkpoint history: record %d at offset %d: %v", i, off, err)}
		}
		if c, err := parseUnverified(p); err == nil && c.Size > prevSize {
			prevSize = c.Size
		}
		out = append(out, bytes.Clone(p))
	}
}

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

// fileSource reads a file log's entries and stored hashes in order.
type fileSource struct {
	fr   *frameReader
	hr   *bufio.Reader
	path string
}

func (f *fileSource) entry(i int64) ([]byte, error) {
	p, off, err := f.fr.next()
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("unreadable record at offset %d: %w", off, err)
	}
	return p, err
}

func (f *fileSource) hash(i int64, h *tlog.Hash) error {
	if _, err := io.ReadFull(f.hr, h[:]); err != nil {
		return errors.New("the hash file ends before this entry's hashes")
	}
	return nil
}

func (f *fileSource) done(i int64) string { return "" }

func (f *fileSource) trailing() bool {
	_, err := f.hr.ReadByte()
	return err == nil
}

// treeSource yields a log's stored entries and stored hashes in order.
type treeSource interface {
	// entry returns the stored bytes of entry i, io.EOF after the last,
	// or an error saying why entry i cannot be read.
	entry(i int64) ([]byte, error)
	// hash reads the next stored hash of entry i into h.
	hash(i int64, h *tlog.Hash) error
	// done returns "" once entry i's stored hashes were all read, or what
	// is wrong with them.
	done(i int64) string
	// trailing reports whether stored hashes remain after the last entry.
	trailing() bool
}

// treeState is a log's signed state: its checkpoint history, oldest
// first, and the copy it publishes (the head).
type treeState struct {
	cps     [][]byte
	head    []byte
	headErr error
	names   fileNames
}

// fileNames names where each part of a log is kept, for errors.
type fileNames struct {
	entries, hashes, history, head string
}

// histCP is one checkpoint of the history.
type histCP struct {
	signed []byte
	cp     Checkpoint
}

// verifyTree is the check shared by every kind of log: it walks the stored
// entries and hashes of src against the signed state and the trusted
// checkpoints of o, and returns the problem with the smallest index.
func verifyTree(ctx context.Context, v note.Verifier, st treeState, src treeSource, o VerifyOptions) error {
	nm := st.names
	hist, herr := history(st.cps)
	if herr != nil {
		herr.File = nm.history
		return herr
	}
	trusted, err := openTrusted(o.Trusted, v)
	if err != nil {
		return err
	}
	// first keeps the problem with the smallest index.
	var first *VerifyError
	keep := func(e *VerifyError) {
		if e != nil && (first == nil || e.Index < first.Index) {
			first = e
		}
	}
	keep(checkLatest(v, hist, st, o.AllCheckpoints))

	var front frontier
	next, nextTrusted := 0, 0 // next history and trusted checkpoint to compare
	prev, prevTrusted := int64(0), int64(0)
	compare := func() *VerifyError {
		root, err := front.root()
		if err != nil {
			return &VerifyError{Index: prev, Reason: err.Error()}
		}
		for nextTrusted < len(trusted) && trusted[nextTrusted].Size == front.n {
			c := trusted[nextTrusted]
			if root != c.Root {
				return &VerifyError{Index: prevTrusted, File: nm.entries, Reason: fmt.Sprintf("the log differs from the trusted checkpoint of size %d: entries from %d on were rewritten (and re-signed with the signer key)", c.Size, prevTrusted)}
			}
			prevTrusted = c.Size
			nextTrusted++
		}
		for next < len(hist) && hist[next].cp.Size == front.n {
			c := hist[next]
			if root != c.cp.Root {
				if _, err := OpenCheckpoint(c.signed, v); err != nil {
					return &VerifyError{Index: prev, File: nm.history, Reason: fmt.Sprintf("checkpoint %d (size %d) has a bad signature: %v", next, c.cp.Size, err)}
				}
				return &VerifyError{Index: prev, File: nm.entries, Reason: fmt.Sprintf("the tree recomputed from the stored entries differs from the signed checkpoint of size %d: entries from %d on were rewritten together with their stored hashes", c.cp.Size, prev)}
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
	var got tlog.Hash
	sealed := false
	for i := int64(0); first == nil || i < first.Index; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("audit: verify: %w", err)
			}
		}
		stored, err := src.entry(i)
		if err == io.EOF {
			break
		}
		if err != nil {
			keep(&VerifyError{Index: i, File: nm.entries, Reason: err.Error()})
			break
		}
		if i == 0 {
			sealed = o.requireSealed || IsSealed(stored)
		}
		if sealed && !IsSealed(stored) {
			keep(&VerifyError{Index: i, File: nm.entries, Reason: "a plaintext entry in a sealed log (every entry of this log is encrypted; this one was written without the key)"})
			break
		}
		want, err := tlog.StoredHashes(i, stored, &front)
		if err != nil {
			keep(&VerifyError{Index: i, File: nm.hashes, Reason: err.Error()})
			break
		}
		bad, file := "", nm.hashes
		for j, w := range want {
			if err := src.hash(i, &got); err != nil {
				bad = err.Error()
				break
			}
			if got != w {
				if j == 0 {
					bad, file = "stored bytes do not match the stored leaf hash", nm.entries
				} else {
					bad = fmt.Sprintf("stored interior hash (level %d) does not match the recomputed one", j)
				}
				break
			}
		}
		if bad == "" {
			bad = src.done(i)
		}
		if bad != "" {
			keep(&VerifyError{Index: i, File: file, Reason: bad})
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
	if src.trailing() {
		keep(&VerifyError{Index: n, File: nm.hashes, Reason: "the hash file holds hashes for entries that are missing from the log"})
	}
	if nextTrusted < len(trusted) {
		keep(&VerifyError{Index: n, File: nm.entries, Reason: fmt.Sprintf("missing: a trusted checkpoint covers %d entries, the log holds %d (it was cut back)", trusted[nextTrusted].Size, n)})
	}
	latest := hist[len(hist)-1].cp
	if latest.Size > n {
		keep(&VerifyError{Index: n, File: nm.entries, Reason: fmt.Sprintf("missing: the signed checkpoint covers %d entries, the log holds %d", latest.Size, n)})
	} else if next < len(hist) {
		keep(&VerifyError{Index: prev, File: nm.history, Reason: fmt.Sprintf("checkpoint %d claims size %d, which the log never had", next, hist[next].cp.Size)})
	}
	if latest.Size < n {
		keep(&VerifyError{Index: latest.Size, File: nm.entries, Reason: fmt.Sprintf("not covered by a signed checkpoint (the latest covers %d of %d entries)", latest.Size, n)})
	}
	if first != nil {
		return first
	}
	return nil
}

// openTrusted checks the signatures of trusted checkpoints and returns
// them by size.
func openTrusted(signed [][]byte, v note.Verifier) ([]Checkpoint, error) {
	var out []Checkpoint
	for i, s := range signed {
		c, err := OpenCheckpoint(s, v)
		if err != nil {
			return nil, fmt.Errorf("audit: trusted checkpoint %d: %w", i+1, err)
		}
		out = append(out, c)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Size < out[j-1].Size; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	// Two trusted checkpoints of one size must agree, or one is forged
	// by someone holding the key: nothing can be vouched for from there.
	for i := 1; i < len(out); i++ {
		if out[i].Size == out[i-1].Size && out[i].Root != out[i-1].Root {
			return nil, fmt.Errorf("audit: two trusted checkpoints of size %d sign different roots: the signer key signed two histories", out[i].Size)
		}
	}
	return out, nil
}

// history parses the checkpoint history without checking signatures.
func history(cps [][]byte) ([]histCP, *VerifyError) {
	var hist []histCP
	var prevSize int64 = -1
	for i, p := range cps {
		c, err := parseUnverified(p)
		if err != nil {
			return nil, &VerifyError{Index: max(prevSize, 0), Reason: fmt.Sprintf("checkpoint history: record %d: %v", i, err)}
		}
		if c.Size <= prevSize {
			return nil, &VerifyError{Index: c.Size, Reason: fmt.Sprintf("checkpoint history: record %d has size %d after size %d", i, c.Size, prevSize)}
		}
		prevSize = c.Size
		hist = append(hist, histCP{signed: p, cp: c})
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
// all, every one's) and the head's.
func checkLatest(v note.Verifier, hist []histCP, st treeState, all bool) *VerifyError {
	last := len(hist) - 1
	if all {
		for i, h := range hist {
			if _, err := OpenCheckpoint(h.signed, v); err != nil {
				at := int64(0)
				if i > 0 {
					at = hist[i-1].cp.Size
				}
				return &VerifyError{Index: at, File: st.names.history, Reason: fmt.Sprintf("checkpoint %d (size %d): %v", i, h.cp.Size, err)}
			}
		}
	} else if _, err := OpenCheckpoint(hist[last].signed, v); err != nil {
		at := int64(0)
		for i := last - 1; i >= 0; i-- {
			if _, e := OpenCheckpoint(hist[i].signed, v); e == nil {
				at = hist[i].cp.Size
				break
			}
		}
		return &VerifyError{Index: at, File: st.names.history, Reason: fmt.Sprintf("latest checkpoint (size %d): %v", hist[last].cp.Size, err)}
	}
	latest := hist[last].cp.Size
	if st.headErr != nil {
		return &VerifyError{Index: latest, File: st.names.head, Reason: fmt.Sprintf("published checkpoint: %v", st.headErr)}
	}
	if _, err := OpenCheckpoint(st.head, v); err != nil {
		return &VerifyError{Index: latest, File: st.names.head, Reason: fmt.Sprintf("published checkpoint: %v", err)}
	}
	if !bytes.Equal(st.head, hist[last].signed) {
		return &VerifyError{Index: latest, File: st.names.head, Reason: "published checkpoint differs from the latest in the history"}
	}
	return nil
}
