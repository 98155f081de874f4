package seal

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// BoltSource is a Source over one bbolt bucket, what these tests hand to
// Reencrypt and CountUsage. Nested buckets are skipped.
type BoltSource struct {
	DB     *bolt.DB
	Bucket []byte
}

// Scan implements Source.
func (s BoltSource) Scan(ctx context.Context, after []byte, limit int) ([]Record, error) {
	var out []Record
	err := s.DB.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.Bucket)
		if b == nil {
			return fmt.Errorf("bucket %q does not exist", s.Bucket)
		}
		c := b.Cursor()
		var k, v []byte
		if after == nil {
			k, v = c.First()
		} else {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			if v == nil {
				continue // nested bucket
			}
			out = append(out, Record{Key: bytes.Clone(k), Value: bytes.Clone(v)})
		}
		return nil
	})
	return out, err
}

// CompareAndSwap implements Source in one read-write transaction.
func (s BoltSource) CompareAndSwap(ctx context.Context, key, old, newValue []byte) (bool, error) {
	swapped := false
	err := s.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.Bucket)
		if b == nil {
			return fmt.Errorf("bucket %q does not exist", s.Bucket)
		}
		cur := b.Get(key)
		if cur == nil || !bytes.Equal(cur, old) {
			return nil
		}
		swapped = true
		return b.Put(key, newValue)
	})
	if err != nil {
		return false, fmt.Errorf("bolt source: %w", err)
	}
	return swapped, nil
}
