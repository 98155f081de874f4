// Package filelock takes advisory locks on whole lock files, the same way on
// every system moat builds for: flock(2) on Unix, LockFileEx on Windows.
// Lock only files that exist to be locked: on Windows the lock is
// mandatory for the file's bytes.
package filelock

import (
	"errors"
	"os"
)

// How says which lock to take or to drop.
type How int

const (
	// Shared lets other Shared holders in and keeps Exclusive ones out.
	Shared How = 1 << iota
	// Exclusive keeps every other holder out.
	Exclusive
	// NonBlocking, with Shared or Exclusive, fails with ErrLocked at once
	// instead of waiting for the lock.
	NonBlocking
	// Unlock drops the lock this file holds.
	Unlock
)

// ErrLocked means a NonBlocking lock is held by someone else.
var ErrLocked = errors.New("filelock: held by another process")

// Flock takes or drops the lock on f that how names. It retries calls the
// system interrupted.
func Flock(f *os.File, how How) error {
	switch {
	case how&Unlock != 0:
		return unlock(f)
	case how&(Shared|Exclusive) == 0:
		return errors.New("filelock: want Shared, Exclusive or Unlock")
	}
	return lock(f, how&Exclusive != 0, how&NonBlocking != 0)
}
