package audit

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Proof shows that one stored entry is in the tree a checkpoint signs.
type Proof struct {
	Index  int64            // the entry's position
	Entry  []byte           // the entry's stored bytes (encrypted if sealed)
	Size   int64            // the tree size of the checkpoint it is checked against
	Root   tlog.Hash        // that checkpoint's root hash
	Hashes tlog.RecordProof // tlog inclusion proof of Index in the tree of Size
}

const proofHeader = "moat audit inclusion proof v1"

// maxProofHashes bounds a proof: a tree of 2^63 records needs 63.
const maxProofHashes = 64

// MarshalText encodes the proof as lines of "key value":
//
//	moat audit inclusion proof v1
//	index 5
//	size 12
//	root <base64>
//	entry <base64 of the stored bytes>
//	hash <base64>   (one line per proof hash, leaf side first)
func (p *Proof) MarshalText() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\nindex %d\nsize %d\nroot %s\nentry %s\n", proofHeader, p.Index, p.Size,
		base64.StdEncoding.EncodeToString(p.Root[:]), base64.StdEncoding.EncodeToString(p.Entry))
	for _, h := range p.Hashes {
		fmt.Fprintf(&b, "hash %s\n", base64.StdEncoding.EncodeToString(h[:]))
	}
	return b.Bytes(), nil
}

// UnmarshalText parses the text MarshalText writes. Errors name the line.
func (p *Proof) UnmarshalText(text []byte) error {
	q, err := ParseProof(text)
	if err != nil {
		return err
	}
	*p = *q
	return nil
}

// ParseProof parses a proof in the format of MarshalText.
func ParseProof(text []byte) (*Proof, error) {
	if len(text) > 2*maxEntry {
		return nil, fmt.Errorf("audit: proof: %d bytes, too long", len(text))
	}
	s := string(text)
	if !strings.HasSuffix(s, "\n") {
		return nil, fmt.Errorf("audit: proof: text does not end in a newline")
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if lines[0] != proofHeader {
		return nil, fmt.Errorf("audit: proof: line 1: want %q, got %q", proofHeader, lines[0])
	}
	if len(lines) < 5 {
		return nil, fmt.Errorf("audit: proof: %d lines, want at least 5", len(lines))
	}
	field := func(i int, key string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], key+" ")
		if !ok {
			return "", fmt.Errorf("audit: proof: line %d: want %q, got %q", i+1, key+" …", trim(lines[i]))
		}
		return v, nil
	}
	num := func(i int, key string) (int64, error) {
		v, err := field(i, key)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != v {
			return 0, fmt.Errorf("audit: proof: line %d: bad %s %q", i+1, key, trim(v))
		}
		return n, nil
	}
	hash := func(i int, key string) (tlog.Hash, error) {
		var h tlog.Hash
		v, err := field(i, key)
		if err != nil {
			return h, err
		}
		b, err := base64.StdEncoding.Strict().DecodeString(v)
		if err != nil || len(b) != tlog.HashSize {
			return h, fmt.Errorf("audit: proof: line %d: bad %s hash %q", i+1, key, trim(v))
		}
		copy(h[:], b)
		return h, nil
	}
	p := &Proof{}
	var err error
	if p.Index, err = num(1, "index"); err != nil {
		return nil, err
	}
	if p.Size, err = num(2, "size"); err != nil {
		return nil, err
	}
	if p.Index >= p.Size {
		return nil, fmt.Errorf("audit: proof: index %d is not below size %d", p.Index, p.Size)
	}
	if p.Root, err = hash(3, "root"); err != nil {
		return nil, err
	}
	ev, err := field(4, "entry")
	if err != nil {
		return nil, err
	}
	if p.Entry, err = base64.StdEncoding.Strict().DecodeString(ev); err != nil || len(p.Entry) > maxEntry {
		return nil, fmt.Errorf("audit: proof: line 5: bad entry encoding")
	}
	if len(lines)-5 > maxProofHashes {
		return nil, fmt.Errorf("audit: proof: %d hashes, more than %d", len(lines)-5, maxProofHashes)
	}
	for i := 5; i < len(lines); i++ {
		h, err := hash(i, "hash")
		if err != nil {
			return nil, err
		}
		p.Hashes = append(p.Hashes, h)
	}
	return p, nil
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Prove returns an inclusion proof of entry n in the tree of the latest
// signed checkpoint, checkable by CheckProof with that checkpoint.
func (l *Log) Prove(n int64) (*Proof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if l.latest == nil {
		return nil, fmt.Errorf("audit: prove: the log has no checkpoint")
	}
	c, err := parseUnverified(l.latest)
	if err != nil {
		return nil, fmt.Errorf("audit: prove: latest checkpoint: %w", err)
	}
	if n < 0 || n >= c.Size || n >= l.front.n {
		return nil, fmt.Errorf("audit: prove: entry %d is not in the checkpointed log of %d entries", n, c.Size)
	}
	stored, err := l.storedLocked(n)
	if err != nil {
		return nil, err
	}
	return proveRecord(fileHashReader{l.hashes}, c, n, stored)
}

// proveRecord proves entry n (whose stored bytes are stored) in the tree
// of checkpoint c, and checks the proof before handing it out: a stored
// hash that no longer matches the entry would give a proof nobody can
// check.
func proveRecord(hr tlog.HashReader, c Checkpoint, n int64, stored []byte) (*Proof, error) {
	rp, err := tlog.ProveRecord(c.Size, n, hr)
	if err != nil {
		return nil, fmt.Errorf("audit: prove entry %d: %w", n, err)
	}
	p := &Proof{Index: n, Entry: stored, Size: c.Size, Root: c.Root, Hashes: rp}
	if err := tlog.CheckRecord(p.Hashes, p.Size, p.Root, p.Index, tlog.RecordHash(p.Entry)); err != nil {
		return nil, &VerifyError{Index: n, Reason: fmt.Sprintf("cannot prove: %v; run verify", err)}
	}
	return p, nil
}

// CheckProof checks proofText against a signed checkpoint and the public
// verifier key, needing nothing else from the log. It returns the proof,
// whose Entry is then known to be in the log that signed the checkpoint.
// The proof must be for the checkpoint's tree size.
func CheckProof(checkpointText []byte, verifierKey string, proofText []byte) (*Proof, error) {
	v, err := ParseVerifier(verifierKey)
	if err != nil {
		return nil, err
	}
	p, _, err := CheckProofWith(checkpointText, v, proofText)
	return p, err
}

// CheckProofWith is CheckProof with the verifier parsed; it also returns
// the checkpoint the proof holds against.
func CheckProofWith(checkpointText []byte, v note.Verifier, proofText []byte) (*Proof, Checkpoint, error) {
	c, err := OpenCheckpoint(checkpointText, v)
	if err != nil {
		return nil, c, err
	}
	p, err := ParseProof(proofText)
	if err != nil {
		return nil, c, err
	}
	if p.Size != c.Size {
		return nil, c, fmt.Errorf("audit: proof is for a tree of %d entries, the checkpoint signs %d", p.Size, c.Size)
	}
	if p.Root != c.Root {
		return nil, c, fmt.Errorf("audit: proof root differs from the checkpoint's root")
	}
	if err := tlog.CheckRecord(p.Hashes, p.Size, p.Root, p.Index, tlog.RecordHash(p.Entry)); err != nil {
		return nil, c, fmt.Errorf("audit: entry %d is not proved in the checkpointed tree: %w", p.Index, err)
	}
	return p, c, nil
}
