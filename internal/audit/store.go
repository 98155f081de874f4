package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"moat/internal/filelock"
	"os"

	"golang.org/x/mod/sumdb/tlog"
)

// File names inside Config.Dir.
const (
	entriesFile     = "entries"         // length-prefixed stored entries, append-only
	hashesFile      = "hashes"          // tlog stored hashes, 32 bytes each, append-only
	checkpointsFile = "checkpoints"     // length-prefixed signed checkpoints, one per append
	checkpointFile  = "checkpoint"      // the latest signed checkpoint, for publishing
	lockFile        = "lock"            // flock: exclusive per append, shared per reader snapshot
	ownerFile       = "writer.lock"     // flock: held by the one writer for its lifetime
	checkpointTemp  = "checkpoint.tmp~" // written, then renamed over checkpointFile
)

// Frame limits. An entry is a few hundred bytes; the bound keeps a corrupt
// length prefix from asking for gigabytes.
const (
	maxEntry = 1 << 20
	frameHdr = 4
)

// appendFrame appends a 4-byte big-endian length and p to dst.
func appendFrame(dst, p []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
	return append(dst, p...)
}

// errPartial marks a frame cut short by the end of the data.
var errPartial = errors.New("incomplete record at end of file")

// frameReader reads frames from a stream, tracking offsets.
type frameReader struct {
	r   *bufio.Reader
	off int64 // offset of the next frame
	max int
	buf []byte
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 1<<16), max: max}
}

// next returns the next frame's payload (valid until the following call) and
// its start offset. It returns io.EOF at a clean end, errPartial when the data
// ends inside a frame, and another error for a length over the limit.
func (fr *frameReader) next() ([]byte, int64, error) {
	start := fr.off
	var hdr [frameHdr]byte
	n, err := io.ReadFull(fr.r, hdr[:])
	if err == io.EOF {
		return nil, start, io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		return nil, start, errPartial
	}
	if err != nil {
		return nil, start, err
	}
	size := int(binary.BigEndian.Uint32(hdr[:]))
	if size > fr.max {
		return nil, start, fmt.Errorf("record length %d exceeds the limit of %d", size, fr.max)
	}
	if cap(fr.buf) < size {
		fr.buf = make([]byte, size)
	}
	fr.buf = fr.buf[:size]
	m, err := io.ReadFull(fr.r, fr.buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, start, errPartial
	}
	if err != nil {
		return nil, start, err
	}
	fr.off += int64(n + m)
	return fr.buf, start, nil
}

// hashCountEntries returns the largest n whose stored hashes fit in size
// bytes, and how many bytes that leaves over.
func hashCountEntries(size int64) (n int64, extra int64) {
	total := size / tlog.HashSize
	// StoredHashCount(n) is at most 2n, so n ≥ total/2.
	lo, hi := total/2, total+1
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		if tlog.StoredHashCount(mid) <= total {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, size - tlog.StoredHashCount(lo)*tlog.HashSize
}

// frontier is a tlog.HashReader holding, for each level, the most recent
// complete subtree hash of a tree of n records. Those are the only hashes
// StoredHashes needs to append record n and TreeHash needs for size n, so a
// writer or a verifier walks the whole log in O(log n) memory.
type frontier struct {
	n int64
	h [64]tlog.Hash
}

func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, k := tlog.SplitStoredHashIndex(x)
		if level >= len(f.h) || f.n>>uint(level) == 0 || k != f.n>>uint(level)-1 {
			return nil, fmt.Errorf("audit: hash (level %d, index %d) is not on the frontier of a tree of %d", level, k, f.n)
		}
		out[i] = f.h[level]
	}
	return out, nil
}

// add records the hashes StoredHashes returned for record f.n.
func (f *frontier) add(hashes []tlog.Hash) {
	copy(f.h[:], hashes)
	f.n++
}

// root returns the tree hash of the f.n records added so far.
func (f *frontier) root() (tlog.Hash, error) { return tlog.TreeHash(f.n, f) }

// loadFrontier rebuilds the frontier of a tree of n records from the stored
// hashes in r.
func loadFrontier(r io.ReaderAt, n int64) (frontier, error) {
	f := frontier{n: n}
	for level := 0; level < len(f.h) && n>>uint(level) > 0; level++ {
		idx := tlog.StoredHashIndex(level, n>>uint(level)-1)
		if _, err := r.ReadAt(f.h[level][:], idx*tlog.HashSize); err != nil {
			return f, fmt.Errorf("audit: read stored hash %d: %w", idx, err)
		}
	}
	return f, nil
}

// fileHashReader reads stored hashes from the hash file.
type fileHashReader struct{ r io.ReaderAt }

func (h fileHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if _, err := h.r.ReadAt(out[i][:], x*tlog.HashSize); err != nil {
			return nil, fmt.Errorf("audit: read stored hash %d: %w", x, err)
		}
	}
	return out, nil
}

// flock takes or releases an advisory lock on f; a nil f (a read-only
// copy without a lock file) needs none.
func flock(f *os.File, how filelock.How) error {
	if f == nil {
		return nil
	}
	return filelock.Flock(f, how)
}
