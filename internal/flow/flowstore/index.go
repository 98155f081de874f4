package flowstore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"moat/internal/flow"
	"moat/internal/seal"
)

// With a Sealer, a store keeps nothing readable without the key: each
// record's body is sealed, and the query columns (source and destination
// identities, verdict, rule) hold keyed hashes (HMAC-SHA256 under an index
// key, cut to 16 bytes), so that equality queries and the hourly rollup
// still work in SQL. Byte counts are kept only inside sealed data: in the
// record body and, for the rollup, in a sealed aggregate per row, added to
// in Go at ingestion. What the files still show without the key: each
// record's time, OCSF class and ID, how many records there are, and which
// rows share a source, destination, verdict or rule (equal hashes), not
// what those are.
//
// The index key is random, made with the store, and kept in the store's
// directory sealed by the Sealer (IndexKeyFile), so that a reader with the
// key-encryption key (the CLI offline) can query too.

// IndexKeyFile is the sealed index key inside StoreConfig.Dir.
const IndexKeyFile = "index.key.sealed"

// Partition formats, in SQLite's user_version.
const (
	formatPlain = 0 // query columns in plaintext (no Sealer, or written before sealing)
	formatKeyed = 2 // query columns as keyed hashes, rollup counts sealed
)

// Hash namespaces: an identity hashes alike as source or destination, so
// a filter on either side matches either column.
const (
	nsEndpoint = 'e'
	nsVerdict  = 'v'
	nsRule     = 'r'
)

// index makes the keyed hashes.
type index struct {
	key []byte

	mu    sync.Mutex // guards cache
	cache map[string][]byte
}

// maxIndexCache bounds the memo of hashes; names repeat a lot.
const maxIndexCache = 8192

func (x *index) sum(ns byte, v string) []byte {
	k := string(ns) + v
	x.mu.Lock()
	defer x.mu.Unlock()
	if h, ok := x.cache[k]; ok {
		return h
	}
	m := hmac.New(sha256.New, x.key)
	m.Write([]byte{ns, 0})
	m.Write([]byte(v))
	h := m.Sum(nil)[:16]
	if len(x.cache) >= maxIndexCache {
		x.cache = map[string][]byte{}
	}
	x.cache[k] = h
	return h
}

// loadIndexKey reads the index key sealed in dir, making it when absent
// (unless readOnly).
func loadIndexKey(dir string, a flow.Sealer, readOnly bool) ([]byte, error) {
	p := filepath.Join(dir, IndexKeyFile)
	key, err := seal.ReadSealedFile(p, a, "flow/index-key")
	if err == nil {
		if len(key) != 32 {
			return nil, fmt.Errorf("flow: store: index key %q: %d bytes, want 32", p, len(key))
		}
		return key, nil
	}
	if _, serr := os.Stat(p); !errors.Is(serr, os.ErrNotExist) {
		return nil, fmt.Errorf("flow: store: index key: %w", err)
	}
	if readOnly {
		return nil, nil // no sealed partition can exist without it
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := seal.WriteSealedFile(p, a, "flow/index-key", key); err != nil {
		return nil, fmt.Errorf("flow: store: %w", err)
	}
	return key, nil
}

// cols returns the query column values of c for partition p: keyed hashes
// in a keyed partition, the text otherwise.
func (s *Store) cols(p *partition, c flow.Columns) []any {
	if !p.keyed {
		return []any{c.Src, c.SrcName, c.Dst, c.DstName, c.Verdict, c.Rule}
	}
	x := s.index
	return []any{x.sum(nsEndpoint, c.Src), x.sum(nsEndpoint, c.SrcName), x.sum(nsEndpoint, c.Dst), x.sum(nsEndpoint, c.DstName),
		x.sum(nsVerdict, c.Verdict), x.sum(nsRule, c.Rule)}
}

// val is a filter value as partition p stores it.
func (s *Store) val(p *partition, ns byte, v string) any {
	if !p.keyed {
		return v
	}
	return s.index.sum(ns, v)
}

// talkerAgg is a keyed rollup row's counts and names, sealed in its agg
// column.
type talkerAgg struct {
	src, dst     string
	flows, bytes int64
}

func (a talkerAgg) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(a.flows))
	b = binary.AppendUvarint(b, uint64(a.bytes))
	b = binary.AppendUvarint(b, uint64(len(a.src)))
	b = append(b, a.src...)
	return append(b, a.dst...)
}

func decodeAgg(b []byte) (talkerAgg, error) {
	var a talkerAgg
	f, n := binary.Uvarint(b)
	if n <= 0 {
		return a, errors.New("bad flows")
	}
	b = b[n:]
	by, n := binary.Uvarint(b)
	if n <= 0 {
		return a, errors.New("bad bytes")
	}
	b = b[n:]
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return a, errors.New("bad source")
	}
	b = b[n:]
	a.flows, a.bytes, a.src, a.dst = int64(f), int64(by), string(b[:l]), string(b[l:])
	return a, nil
}
