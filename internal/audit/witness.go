package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/seal"
)

// ErrInconsistent is returned when a checkpoint does not extend one seen
// before: the log was cut back, rewritten or forked by someone holding the
// signer key.
var ErrInconsistent = errors.New("audit: the log's new checkpoint does not extend the one seen before (cut back, rewritten or forked)")

// ProveConsistency returns the latest signed checkpoint and a proof that
// the tree of the first old entries is a prefix of its tree: what a
// witness holding a checkpoint of size old needs to accept the new one.
// When the log holds fewer than old entries the proof is empty, and the
// checkpoint is what shows the witness the log went back.
func (l *Log) ProveConsistency(old int64) ([]byte, tlog.TreeProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, nil, ErrClosed
	}
	if l.latest == nil {
		return nil, nil, errors.New("audit: the log has no checkpoint")
	}
	c, err := parseUnverified(l.latest)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: latest checkpoint: %w", err)
	}
	p, err := proveTree(fileHashReader{l.hashes}, c.Size, old)
	if err != nil {
		return nil, nil, err
	}
	return bytesClone(l.latest), p, nil
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

// proveTree proves that the tree of old entries is a prefix of the tree of
// size entries. Asked from more entries than the log holds, it returns no
// proof and no error: the checkpoint itself then shows the asker that the
// log went back.
func proveTree(hr tlog.HashReader, size, old int64) (tlog.TreeProof, error) {
	if old < 0 {
		return nil, fmt.Errorf("audit: consistency: negative size %d", old)
	}
	if old == 0 || old >= size {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(size, old, hr)
	if err != nil {
		return nil, fmt.Errorf("audit: consistency proof from %d to %d: %w", old, size, err)
	}
	return p, nil
}

// CheckConsistency checks newer, a signed checkpoint, with v and, when
// older (an earlier signed checkpoint of the same log) is not nil, that
// proof shows older's tree to be a prefix of newer's. It returns newer's
// body; an inconsistency wraps ErrInconsistent.
func CheckConsistency(v note.Verifier, older, newer []byte, proof tlog.TreeProof) (Checkpoint, error) {
	nc, err := OpenCheckpoint(newer, v)
	if err != nil {
		return Checkpoint{}, err
	}
	if older == nil {
		return nc, nil
	}
	oc, err := OpenCheckpoint(older, v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: the earlier checkpoint: %w", err)
	}
	switch {
	case nc.Size < oc.Size:
		return Checkpoint{}, fmt.Errorf("%w: it covers %d entries, %d were seen before", ErrInconsistent, nc.Size, oc.Size)
	case oc.Size == 0:
		return nc, nil
	case nc.Size == oc.Size:
		if nc.Root != oc.Root {
			return Checkpoint{}, fmt.Errorf("%w: two roots for %d entries", ErrInconsistent, nc.Size)
		}
		return nc, nil
	}
	if len(proof) > 2*maxProofHashes {
		return Checkpoint{}, fmt.Errorf("audit: consistency proof of %d hashes, more than %d", len(proof), 2*maxProofHashes)
	}
	if err := tlog.CheckTree(proof, nc.Size, nc.Root, oc.Size, oc.Root); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: from %d to %d entries: %v", ErrInconsistent, oc.Size, nc.Size, err)
	}
	return nc, nil
}

// Witness remembers the newest checkpoint of one log that it has checked,
// in a file, and accepts a new one only with a proof that it extends the
// one remembered, as the Go checksum database's clients do: a log cut back
// or rewritten after a witness saw it cannot show it a consistent
// checkpoint again, signer key or not. It is safe for concurrent use.
type Witness struct {
	path string
	v    note.Verifier

	mu     sync.Mutex // guards signed and cp
	signed []byte
	cp     Checkpoint
}

// OpenWitness loads the checkpoint remembered in path (none when the file
// does not exist yet), checking it with v.
func OpenWitness(path string, v note.Verifier) (*Witness, error) {
	w := &Witness{path: path, v: v}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: witness: %w", err)
	}
	c, err := OpenCheckpoint(b, v)
	if err != nil {
		return nil, fmt.Errorf("audit: witness %q: %w", path, err)
	}
	w.signed, w.cp = b, c
	return w, nil
}

// Latest returns the remembered checkpoint (nil when none) and its body.
func (w *Witness) Latest() ([]byte, Checkpoint) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytesClone(w.signed), w.cp
}

// Size is how many entries the remembered checkpoint covers: what to ask
// a consistency proof from.
func (w *Witness) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cp.Size
}

// Update asks fetch for the log's latest checkpoint and a consistency
// proof from the size the witness holds (0 when none), checks them, and
// remembers the checkpoint durably when it extends the remembered one. An
// inconsistent checkpoint is refused (wrapping ErrInconsistent) and the
// remembered one is kept. Updates are serialized, fetch included, so each
// proof is checked from the size it was asked from.
func (w *Witness) Update(fetch func(from int64) (signed []byte, proof tlog.TreeProof, err error)) (Checkpoint, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	signed, proof, err := fetch(w.cp.Size)
	if err != nil {
		return Checkpoint{}, err
	}
	c, err := CheckConsistency(w.v, w.signed, signed, proof)
	if err != nil {
		return Checkpoint{}, err
	}
	if w.signed != nil && c.Size == w.cp.Size {
		return c, nil
	}
	if err := seal.WriteFileAtomic(w.path, signed, 0o600); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: witness: %w", err)
	}
	w.signed, w.cp = bytesClone(signed), c
	return c, nil
}

// ProofBytes turns a tree proof into the byte strings the API carries.
func ProofBytes(p tlog.TreeProof) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytesClone(p[i][:])
	}
	return out
}

// ParseProofBytes is ProofBytes' inverse; it refuses hashes of the wrong
// size and more hashes than any tree needs.
func ParseProofBytes(b [][]byte) (tlog.TreeProof, error) {
	if len(b) > 2*maxProofHashes {
		return nil, fmt.Errorf("audit: consistency proof of %d hashes, more than %d", len(b), 2*maxProofHashes)
	}
	p := make(tlog.TreeProof, len(b))
	for i, h := range b {
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("audit: consistency proof: hash %d is %d bytes, want %d", i, len(h), tlog.HashSize)
		}
		copy(p[i][:], h)
	}
	return p, nil
}

// CheckEntries recomputes a log's tree from its entries as stored, which
// page serves in order from an index (a server's API, say), and checks
// that the signed checkpoint (opened with v) signs that tree and that every
// checkpoint of o.Trusted is a prefix of it. The caller trusts nothing the
// server says but what v signed. Like Verify, it returns a *VerifyError
// naming the first entry not vouched for.
func CheckEntries(ctx context.Context, v note.Verifier, signed []byte, page func(from, to int64) ([][]byte, error), o VerifyOptions) (Checkpoint, error) {
	c, err := OpenCheckpoint(signed, v)
	if err != nil {
		return Checkpoint{}, err
	}
	trusted, err := openTrusted(o.Trusted, v)
	if err != nil {
		return Checkpoint{}, err
	}
	var front frontier
	next, good := 0, int64(0) // next trusted checkpoint; size of the last one matched
	check := func() error {
		for next < len(trusted) && trusted[next].Size == front.n {
			root, err := front.root()
			if err != nil {
				return err
			}
			if root != trusted[next].Root {
				return &VerifyError{Index: good, Reason: fmt.Sprintf("the log differs from the trusted checkpoint of size %d: entries from %d on were rewritten (and re-signed with the signer key)", trusted[next].Size, good)}
			}
			good = trusted[next].Size
			next++
		}
		return nil
	}
	if err := check(); err != nil {
		return Checkpoint{}, err
	}
	sealed := o.requireSealed
	for front.n < c.Size {
		if err := ctx.Err(); err != nil {
			return Checkpoint{}, fmt.Errorf("audit: check entries: %w", err)
		}
		es, err := page(front.n, c.Size)
		if err != nil {
			return Checkpoint{}, err
		}
		if len(es) == 0 {
			return Checkpoint{}, &VerifyError{Index: front.n, Reason: fmt.Sprintf("missing: the checkpoint covers %d entries, the log served %d", c.Size, front.n)}
		}
		for _, stored := range es {
			i := front.n
			if i == c.Size {
				break
			}
			if i == 0 {
				sealed = sealed || IsSealed(stored)
			}
			if sealed && !IsSealed(stored) {
				return Checkpoint{}, &VerifyError{Index: i, Reason: "a plaintext entry in a sealed log"}
			}
			hs, err := tlog.StoredHashes(i, stored, &front)
			if err != nil {
				return Checkpoint{}, &VerifyError{Index: i, Reason: err.Error()}
			}
			front.add(hs)
			if err := check(); err != nil {
				return Checkpoint{}, err
			}
		}
	}
	if next < len(trusted) {
		return Checkpoint{}, &VerifyError{Index: c.Size, Reason: fmt.Sprintf("missing: a trusted checkpoint covers %d entries, the log holds %d (it was cut back)", trusted[next].Size, c.Size)}
	}
	root, err := front.root()
	if err != nil {
		return Checkpoint{}, err
	}
	if root != c.Root {
		return Checkpoint{}, &VerifyError{Index: good, Reason: fmt.Sprintf("the entries served do not make the tree the checkpoint of size %d signs", c.Size)}
	}
	return c, nil
}

// ErrNoWitnessed: there is no remembered checkpoint to drop.
var ErrNoWitnessed = errors.New("audit: no witnessed checkpoint")

// Dropped is what DropWitnessed set aside.
type Dropped struct {
	// Checkpoint is the dropped checkpoint, checked with the verifier;
	// Unverified, when not empty, says why it could not be (Checkpoint is
	// then zero).
	Checkpoint Checkpoint
	Unverified string
	// Kept is the path the dropped checkpoint was moved to.
	Kept string
}

// DropWitnessed sets aside the checkpoint a witness remembers in path, so
// that the next one it is shown is trusted on first use: for a log
// deliberately restored from a backup, which no longer extends what the
// witness saw. v (nil when the verifier key cannot be read) checks what
// is dropped, for the record. The file is not deleted but renamed beside
// itself (path.dropped-TIME, at now), one atomic step made durable, so a
// log can still be checked against it (moat audit verify --trusted) and a
// crash leaves either the old state or the new. ErrNoWitnessed when path
// does not exist. A witness open on path keeps what it read; the caller
// makes sure none is.
func DropWitnessed(path string, v note.Verifier, now time.Time) (Dropped, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Dropped{}, ErrNoWitnessed
	}
	if err != nil {
		return Dropped{}, fmt.Errorf("audit: %w", err)
	}
	var d Dropped
	if v == nil {
		d.Unverified = "no verifier key to check it with"
	} else if d.Checkpoint, err = OpenCheckpoint(b, v); err != nil {
		d.Checkpoint, d.Unverified = Checkpoint{}, err.Error()
	}
	d.Kept = path + ".dropped-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, d.Kept); err != nil {
		return Dropped{}, fmt.Errorf("audit: %w", err)
	}
	if err := seal.SyncDir(filepath.Dir(path)); err != nil {
		return Dropped{}, fmt.Errorf("audit: %w", err)
	}
	return d, nil
}
