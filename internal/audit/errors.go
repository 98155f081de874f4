package audit

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by every method of a closed Log.
var ErrClosed = errors.New("audit: log is closed")

// ErrReadOnly is returned by Append, Record and Checkpoint on a log opened
// with Config.ReadOnly.
var ErrReadOnly = errors.New("audit: log is open read-only")

// ErrSealed is returned when a stored entry is encrypted and the Log has no
// Sealer to open it.
var ErrSealed = errors.New("audit: entry is sealed and no Sealer is configured")

// ErrNoAction rejects an entry without an Action: an entry that does not
// say what happened records nothing.
var ErrNoAction = errors.New("entry has no action")

// VerifyError reports the first place where the stored log, its stored
// hashes and its signed checkpoints disagree. Index is the first entry that
// can no longer be vouched for; everything before it holds.
type VerifyError struct {
	Index  int64
	Reason string
	// File names where the problem was found (a file of the log, or the
	// store keys of a log kept in a store), when known.
	File string
}

func (e *VerifyError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("audit: entry %d: %s (in %s)", e.Index, e.Reason, e.File)
	}
	return fmt.Sprintf("audit: entry %d: %s", e.Index, e.Reason)
}
