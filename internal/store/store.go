// Package store holds moat's control-plane state: services, nodes, join
// tokens, policy, revocations. It is one small key-value interface with
// revisions and watches, so the server can read a consistent snapshot, change
// it only if nobody else did in between, and push every change to agents in
// order.
//
// The contract (types, limits, errors) is package kv's, re-exported here;
// two implementations share it and one conformance suite:
// [OpenBolt] keeps the state in a bbolt file under the server's data
// directory (the embedded default), and [OpenEtcd] keeps it in an etcd
// cluster under a per-cluster key prefix, for several servers.
//
// Revisions: every change (a Put, a Delete of a present key, a Txn that
// changes something) happens at a new store revision, greater than every
// earlier one; all ops of one Txn share it. Revisions increase but need not be
// consecutive (an etcd cluster counts the writes of every prefix).
//
// Keys are non-empty strings such as "svc/api", "node/n1", "token/<hash>" or
// "policy/current"; values are opaque bytes. With a [Sealer] configured,
// values are encrypted at rest with the key as associated data, so a stored
// value copied under another key fails to open instead of being believed.
package store

import (
	"strings"

	"moat/internal/store/kv"
)

// The contract's types, limits and errors, under this package's names.
type (
	KV        = kv.KV
	Cond      = kv.Cond
	OpKind    = kv.OpKind
	Op        = kv.Op
	EventType = kv.EventType
	Event     = kv.Event
	Store     = kv.Store
	Sealer    = kv.Sealer
)

const (
	OpPut       = kv.OpPut
	OpDelete    = kv.OpDelete
	EventPut    = kv.EventPut
	EventDelete = kv.EventDelete
	MaxKeyLen   = kv.MaxKeyLen
	MaxTxnBytes = kv.MaxTxnBytes
	MaxTxnOps   = kv.MaxTxnOps
)

var (
	Put            = kv.Put
	Delete         = kv.Delete
	ErrNotFound    = kv.ErrNotFound
	ErrConflict    = kv.ErrConflict
	ErrCompacted   = kv.ErrCompacted
	ErrClosed      = kv.ErrClosed
	ErrInvalid     = kv.ErrInvalid
	ErrUnavailable = kv.ErrUnavailable
	ErrCorrupt     = kv.ErrCorrupt

	checkKey    = kv.CheckKey
	checkPrefix = kv.CheckPrefix
	checkTxn    = kv.CheckTxn
)

// Log attribute keys.
const (
	logKeyPrefix = "prefix"
	logKeyFrom   = "from_rev"
	logKeyErr    = "err"
)

// underPrefix reports whether key is in the range a watch or list of prefix covers.
func underPrefix(key, prefix string) bool { return strings.HasPrefix(key, prefix) }
