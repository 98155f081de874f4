package kv

import "errors"

// Sentinel errors. Every error the store returns names the operation and
// key ("store: get \"svc/api\": key not found") and wraps one of these,
// a context error, or the backend's error; test with errors.Is.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("key not found")
	// ErrConflict: a Txn condition did not hold, so nothing was applied.
	ErrConflict = errors.New("txn condition failed")
	// ErrCompacted: the change history a watch asked for has been discarded.
	// The caller lists again and watches from the list's revision.
	ErrCompacted = errors.New("revision compacted")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrInvalid: a key, prefix, condition or op is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the store cannot answer within its deadline (an etcd
	// cluster without quorum, or out of reach). The error's text says which.
	ErrUnavailable = errors.New("control-plane store unavailable")
	// ErrCorrupt: a stored record cannot be decoded or its sealed value does
	// not open under its key (it was altered, or moved from another key).
	ErrCorrupt = errors.New("corrupt record")
)
