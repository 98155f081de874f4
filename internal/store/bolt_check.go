package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// The bbolt file records what it holds beside the keys, so damage that
// bbolt's own structure does not show (a leaf page that lost keys but
// still parses) is caught:
//
//	meta "sum"       SHA-256-sized XOR over every key's (key, create, mod)
//	meta "n/<seg>"   number of keys whose first segment (up to and
//	                 including the first "/", or the whole key) is seg
//
// Every write keeps them in its transaction. OpenBolt checks the file with
// bbolt's page check, then walks every key (decoding each record and
// opening each sealed value) and the change history, and compares what it
// found with what was recorded; List of one whole segment ("svc/") compares its count too, so
// a registry that shrank without a recorded change is never returned.
var (
	metaSum      = []byte("sum")
	metaCountPfx = "n/"
)

// segment is the part of key its count is kept under.
func segment(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

// keyDigest is one key's contribution to the sum.
func keyDigest(key string, create, mod int64) [sha256.Size]byte {
	b := make([]byte, 0, len(key)+17)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(create))
	b = binary.BigEndian.AppendUint64(b, uint64(mod))
	return sha256.Sum256(b)
}

// tally is what a file records about its keys.
type tally struct {
	sum    [sha256.Size]byte
	counts map[string]int64
}

func (t *tally) add(key string, create, mod int64, n int64) {
	d := keyDigest(key, create, mod)
	for i := range t.sum {
		t.sum[i] ^= d[i]
	}
	if t.counts == nil {
		t.counts = map[string]int64{}
	}
	t.counts[segment(key)] += n
}

// readTally reads the recorded tally; ok is false for a file written
// before tallies were kept.
func readTally(meta *bolt.Bucket) (t tally, ok bool, err error) {
	sum := meta.Get(metaSum)
	if sum == nil {
		return t, false, nil
	}
	if len(sum) != sha256.Size {
		return t, false, fmt.Errorf("meta %q: %d bytes: %w", metaSum, len(sum), ErrCorrupt)
	}
	copy(t.sum[:], sum)
	t.counts = map[string]int64{}
	c := meta.Cursor()
	for k, v := c.Seek([]byte(metaCountPfx)); k != nil && bytes.HasPrefix(k, []byte(metaCountPfx)); k, v = c.Next() {
		if len(v) != 8 {
			return t, false, fmt.Errorf("meta %q: %d bytes: %w", k, len(v), ErrCorrupt)
		}
		t.counts[string(k[len(metaCountPfx):])] = int64(binary.BigEndian.Uint64(v))
	}
	return t, true, nil
}

// writeTally records t, replacing what was recorded.
func writeTally(meta *bolt.Bucket, t tally) error {
	if err := meta.Put(metaSum, t.sum[:]); err != nil {
		return err
	}
	c := meta.Cursor()
	for k, _ := c.Seek([]byte(metaCountPfx)); k != nil && bytes.HasPrefix(k, []byte(metaCountPfx)); k, _ = c.Seek([]byte(metaCountPfx)) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	for seg, n := range t.counts {
		if n == 0 {
			continue
		}
		if err := meta.Put([]byte(metaCountPfx+seg), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

// updateTally applies one write's changes to the recorded tally. old is
// the record a key held before (nil if absent), next the one it holds
// after (nil if deleted).
func updateTally(meta *bolt.Bucket, changes []tallyChange) error {
	t, ok, err := readTally(meta)
	if err != nil || !ok {
		return err // a file without a tally gets one at its next open
	}
	for _, c := range changes {
		if c.old != nil {
			t.add(c.key, c.old.create, c.old.mod, -1)
		}
		if c.next != nil {
			t.add(c.key, c.next.create, c.next.mod, 1)
		}
	}
	return writeTally(meta, t)
}

type tallyChange struct {
	key       string
	old, next *record
}

// checkFile verifies the whole file: bbolt's page check, then every key
// against the recorded tally (recording one for a file that had none).
// Any panic while reading damaged pages is a damaged file.
func (s *Bolt) checkFile(db *bolt.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reading it failed (%v): %w", r, ErrCorrupt)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			if len(errs) < 5 {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("page check: %w: %w", errors.Join(errs...), ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var found tally
	found.counts = map[string]int64{}
	recorded := false
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		want, ok, err := readTally(meta)
		if err != nil {
			return err
		}
		rev, err := readMeta(meta, metaRev)
		if err != nil {
			return err
		}
		recorded = ok
		err = tx.Bucket(bktKV).ForEach(func(k, v []byte) error {
			key := string(k)
			r, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			if r.mod > rev {
				return fmt.Errorf("key %q: revision %d after the store's %d: %w", key, r.mod, rev, ErrCorrupt)
			}
			if _, err := s.open(key, r.value); err != nil {
				return err
			}
			found.add(key, r.create, r.mod, 1)
			return nil
		})
		if err != nil {
			return err
		}
		// The change history feeds watches: every entry must decode and
		// every value in it open, or a watch would fail on it later.
		err = tx.Bucket(bktLog).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("change log key %x: %w", k, ErrCorrupt)
			}
			r := int64(binary.BigEndian.Uint64(k))
			cs, err := decodeLogEntry(v)
			if err != nil {
				return fmt.Errorf("change log at revision %d: %w", r, err)
			}
			for _, c := range cs {
				if c.kind != EventPut {
					continue
				}
				if _, err := s.open(c.key, c.value); err != nil {
					return fmt.Errorf("change log at revision %d: %w", r, err)
				}
			}
			return nil
		})
		if err != nil || !ok {
			return err
		}
		for seg, n := range want.counts {
			if found.counts[seg] != n {
				return fmt.Errorf("it holds %d keys under %q where %d were recorded: %w", found.counts[seg], seg, n, ErrCorrupt)
			}
		}
		for seg, n := range found.counts {
			if want.counts[seg] != n {
				return fmt.Errorf("it holds %d keys under %q where %d were recorded: %w", n, seg, want.counts[seg], ErrCorrupt)
			}
		}
		if found.sum != want.sum {
			return fmt.Errorf("its keys' revisions do not match the recorded digest: %w", ErrCorrupt)
		}
		return nil
	})
	if err != nil || recorded {
		return err
	}
	s.log.Info("store: recorded the key counts and digest of a file that had none")
	return db.Update(func(tx *bolt.Tx) error { return writeTally(tx.Bucket(bktMeta), found) })
}

// checkListCount compares a list of one whole segment with its recorded
// count.
func checkListCount(meta *bolt.Bucket, prefix string, n int) error {
	if prefix == "" || segment(prefix) != prefix || !strings.HasSuffix(prefix, "/") {
		return nil
	}
	v := meta.Get([]byte(metaCountPfx + prefix))
	if meta.Get(metaSum) == nil {
		return nil
	}
	var want int64
	if len(v) == 8 {
		want = int64(binary.BigEndian.Uint64(v))
	}
	if int64(n) != want {
		return fmt.Errorf("%d keys under %q where %d are recorded: %w", n, prefix, want, ErrCorrupt)
	}
	return nil
}
