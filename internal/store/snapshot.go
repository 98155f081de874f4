package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Snapshot writes a consistent copy of the whole bbolt file to w, taken in
// one read transaction while the store keeps serving, and returns its
// size. Values stay sealed as stored: the copy opens only with the same
// Sealer.
func (s *Bolt) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: snapshot: %w", err)
	}
	return n, nil
}

// Snapshot writes the cluster's keys, read at one revision, to w as a
// bbolt file in the embedded store's format, values sealed under the
// store's Sealer: a backup of a cluster holds the same store.db as one of
// a single server, and restores into either (see CopyAll). The file is
// assembled in a temporary directory holding sealed values only.
func (s *Etcd) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	kvs, _, err := s.List(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	dir, err := os.MkdirTemp("", "moat-snapshot-")
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	defer os.RemoveAll(dir)
	b, err := OpenBolt(BoltConfig{Dir: dir, Sealer: s.sealer})
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	defer b.Close()
	if err := putAll(ctx, b, kvs); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	return b.Snapshot(ctx, w)
}

// CopyAll copies every key of src into dst, which must hold none of them
// (each is put only if absent), in transactions within the stores' limits.
// Keys named in last are copied after all others, so a reader that sees
// them sees everything.
func CopyAll(ctx context.Context, dst, src Store, last ...string) error {
	kvs, _, err := src.List(ctx, "")
	if err != nil {
		return err
	}
	var first, final []KV
	for _, kv := range kvs {
		if slices.Contains(last, kv.Key) {
			final = append(final, kv)
		} else {
			first = append(first, kv)
		}
	}
	if err := putAll(ctx, dst, first); err != nil {
		return err
	}
	return putAll(ctx, dst, final)
}

// putAll puts kvs into st, each only if absent, in batches within the
// transaction limits.
func putAll(ctx context.Context, st Store, kvs []KV) error {
	for len(kvs) > 0 {
		var conds []Cond
		var ops []Op
		size := 0
		for len(kvs) > 0 && len(ops) < MaxTxnOps && (len(ops) == 0 || size+len(kvs[0].Key)+len(kvs[0].Value) <= MaxTxnBytes) {
			kv := kvs[0]
			kvs = kvs[1:]
			size += len(kv.Key) + len(kv.Value)
			conds = append(conds, Cond{Key: kv.Key})
			ops = append(ops, Put(kv.Key, kv.Value))
		}
		if _, err := st.Txn(ctx, conds, ops); err != nil {
			return err
		}
	}
	return nil
}
