// Package kv is the contract of moat's control-plane store: keys, values
// and revisions, conditional transactions, ordered watches, the limits and
// errors every implementation shares. The implementations (bbolt, etcd) are
// package store's; code that only uses a store (the audit log kept in it)
// imports this package and links neither.
//
// See package store for what revisions, keys and sealing promise.
package kv

import (
	"context"
	"fmt"
	"unicode/utf8"
)

// KV is one key with its value and the revisions that made it.
type KV struct {
	Key   string
	Value []byte
	// CreateRevision is the revision of the Put that created the key (after
	// its last deletion, if any).
	CreateRevision int64
	// ModRevision is the revision of the last change to the key. For a
	// deletion event it is the revision of the deletion.
	ModRevision int64
}

// Cond is a precondition of a Txn: the key's ModRevision must equal
// ModRevision, where 0 means the key must be absent.
type Cond struct {
	Key         string
	ModRevision int64
}

// OpKind says what an Op does.
type OpKind uint8

// The kinds of Op.
const (
	OpPut OpKind = iota + 1
	OpDelete
)

// Op is one change in a Txn. Build them with [Put] and [Delete].
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte // OpPut only
}

// Put returns an Op that sets key to value.
func Put(key string, value []byte) Op { return Op{Kind: OpPut, Key: key, Value: value} }

// Delete returns an Op that removes key; removing an absent key changes nothing.
func Delete(key string) Op { return Op{Kind: OpDelete, Key: key} }

// EventType says what changed.
type EventType uint8

// The kinds of Event.
const (
	EventPut EventType = iota + 1
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Event is one change seen by a watch. A deletion carries the key and the
// deletion's revision in KV.ModRevision, with no value.
//
// When a watch cannot go on (its history was compacted away under it, or a
// stored value failed to open) it sends one last Event with Err set and
// closes its channel; such an Event carries no change.
type Event struct {
	Type EventType
	KV   KV
	Err  error
}

// Store is moat's control-plane state. All methods are safe for concurrent
// use. After Close every method returns ErrClosed and open watches end.
type Store interface {
	// Get returns key's current value, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key under prefix (all keys when prefix is ""),
	// sorted by key, as one consistent snapshot taken at revision rev. A watch
	// from rev then sees exactly the changes after the snapshot.
	List(ctx context.Context, prefix string) (kvs []KV, rev int64, err error)
	// Put sets key to value and returns the revision of the change.
	Put(ctx context.Context, key string, value []byte) (rev int64, err error)
	// Delete removes key and returns the revision of the removal; removing an
	// absent key changes nothing and returns the current revision.
	Delete(ctx context.Context, key string) (rev int64, err error)
	// Txn applies ops atomically, at one revision, iff every cond holds;
	// otherwise nothing is applied and the error is ErrConflict. It returns
	// the revision of the change (the current revision if ops change nothing).
	// A key may appear in at most one op.
	Txn(ctx context.Context, conds []Cond, ops []Op) (rev int64, err error)
	// Watch streams, in revision order, every change to keys under prefix
	// made after revision fromRev; fromRev 0 means after the current
	// revision. The channel closes when ctx ends or the store closes. Watch
	// returns ErrCompacted when changes after fromRev are no longer kept.
	Watch(ctx context.Context, prefix string, fromRev int64) (<-chan Event, error)
	// Rev returns the current revision.
	Rev(ctx context.Context) (int64, error)
	// Compact discards the change history up to and including revision rev:
	// afterwards a watch from a revision before rev fails with ErrCompacted,
	// and one from rev on still sees every change. Current values are kept.
	// Compacting at or below an earlier compaction does nothing; rev beyond
	// the current revision is ErrInvalid.
	Compact(ctx context.Context, rev int64) error
	// Close releases the store. It is idempotent.
	Close() error
}

// Sealer encrypts values at rest: authenticated encryption with associated
// data, the shape of tink's AEAD primitive. The store passes the key as
// associated data.
type Sealer interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// Limits every implementation enforces the same way, within what a default
// etcd server accepts (128 ops per transaction, 1.5 MiB per request).
const (
	MaxKeyLen   = 1024    // bytes in a key
	MaxTxnBytes = 1 << 20 // bytes of keys and values in one write, before sealing
	MaxTxnOps   = 64      // ops in one Txn
)

// CheckKey rejects keys that no implementation can hold the same way.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key: %w", ErrInvalid)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("key %.40q...: longer than %d bytes: %w", key, MaxKeyLen, ErrInvalid)
	case !utf8.ValidString(key):
		return fmt.Errorf("key %q: not valid UTF-8: %w", key, ErrInvalid)
	}
	return nil
}

// CheckPrefix accepts "" (every key) and anything a key could start with.
func CheckPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if len(prefix) > MaxKeyLen || !utf8.ValidString(prefix) {
		return fmt.Errorf("prefix %.40q: not a valid key prefix: %w", prefix, ErrInvalid)
	}
	return nil
}

// CheckTxn validates conds and ops before an implementation sees them.
func CheckTxn(conds []Cond, ops []Op) error {
	for i, c := range conds {
		if err := CheckKey(c.Key); err != nil {
			return fmt.Errorf("conds[%d]: %w", i, err)
		}
		if c.ModRevision < 0 {
			return fmt.Errorf("conds[%d] (key %q): negative revision %d: %w", i, c.Key, c.ModRevision, ErrInvalid)
		}
	}
	if len(ops) > MaxTxnOps {
		return fmt.Errorf("%d ops, more than %d: %w", len(ops), MaxTxnOps, ErrInvalid)
	}
	seen := make(map[string]int, len(ops))
	size := 0
	for i, op := range ops {
		if err := CheckKey(op.Key); err != nil {
			return fmt.Errorf("ops[%d]: %w", i, err)
		}
		if op.Kind != OpPut && op.Kind != OpDelete {
			return fmt.Errorf("ops[%d] (key %q): unknown op kind %d: %w", i, op.Key, op.Kind, ErrInvalid)
		}
		if size += len(op.Key) + len(op.Value); size > MaxTxnBytes {
			return fmt.Errorf("ops[%d] (key %q): keys and values reach %d bytes, more than %d: %w", i, op.Key, size, MaxTxnBytes, ErrInvalid)
		}
		if j, dup := seen[op.Key]; dup {
			return fmt.Errorf("ops[%d] and ops[%d] both change key %q: %w", j, i, op.Key, ErrInvalid)
		}
		seen[op.Key] = i
	}
	return nil
}
