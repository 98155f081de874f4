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

// Checkpoint is the body of a signed tree head in the tlog checkpoint text
// format: the origin line (the signing key's name), the tree size in
// decimal, and the root hash in standard base64, each ending in a newline.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Text returns the checkpoint body that is signed.
func (c Checkpoint) Text() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// maxCheckpoint bounds a signed checkpoint; real ones are a few hundred bytes.
const maxCheckpoint = 64 << 10

// ParseCheckpoint parses a checkpoint body. Extension lines after the root
// are allowed by the format and ignored; a malformed origin, size or root is
// an error naming the line.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(text) > maxCheckpoint {
		return c, fmt.Errorf("audit: checkpoint: %d bytes, more than %d", len(text), maxCheckpoint)
	}
	if !bytes.HasSuffix(text, []byte("\n")) {
		return c, fmt.Errorf("audit: checkpoint: text does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("audit: checkpoint: %d lines, want at least 3 (origin, size, root)", len(lines))
	}
	c.Origin = lines[0]
	if c.Origin == "" || strings.ContainsAny(c.Origin, " \t+") {
		return c, fmt.Errorf("audit: checkpoint: line 1: bad origin %q", c.Origin)
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return c, fmt.Errorf("audit: checkpoint: line 2: bad tree size %q", lines[1])
	}
	c.Size = n
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return c, fmt.Errorf("audit: checkpoint: line 3: bad root hash %q", lines[2])
	}
	copy(c.Root[:], root)
	for i, l := range lines[3:] {
		if l == "" {
			return c, fmt.Errorf("audit: checkpoint: line %d: empty extension line", i+4)
		}
	}
	return c, nil
}

// SignCheckpoint signs c with s. The origin must be the signer's name, so a
// verifier key names the log it vouches for.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	if c.Origin != s.Name() {
		return nil, fmt.Errorf("audit: checkpoint origin %q is not the signer's name %q", c.Origin, s.Name())
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Text())}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint checks the signature on a signed checkpoint with v and
// returns its body. It fails unless v signed it and the origin is v's name.
func OpenCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	if len(signed) > maxCheckpoint {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint: %d bytes, more than %d", len(signed), maxCheckpoint)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint origin %q is not the key's name %q", c.Origin, v.Name())
	}
	return c, nil
}
