package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"moat/internal/filelock"
)

// Backend holds a keyring in its wrapped form (what encodeKeyring makes:
// data keys wrapped by the KEK, so a backend never holds a usable key).
type Backend interface {
	// Name says where the keyring lives, for messages and audit entries.
	Name() string
	// Load returns the stored keyring, or an error wrapping
	// fs.ErrNotExist when there is none.
	Load() ([]byte, error)
	// Replace stores data only if the backend still holds prev (nil: only
	// if it holds nothing), atomically and durably; otherwise it changes
	// nothing and returns ErrKeyringChanged.
	Replace(prev, data []byte) error
}

// FileBackend keeps the keyring in one file, replaced atomically under an
// advisory lock on a lock file beside it (so two processes on one data
// directory never drop each other's keys).
func FileBackend(path string) Backend { return fileBackend(path) }

type fileBackend string

func (f fileBackend) Name() string { return string(f) }

func (f fileBackend) Load() ([]byte, error) { return os.ReadFile(string(f)) }

func (f fileBackend) Replace(prev, data []byte) error {
	unlock, err := lockDir(filepath.Dir(string(f)))
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := os.ReadFile(string(f))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		cur = nil
	case err != nil:
		return err
	}
	if !bytes.Equal(cur, prev) || (cur == nil) != (prev == nil) {
		return ErrKeyringChanged
	}
	return WriteFileAtomic(string(f), data, 0o600)
}

// lockDir takes an exclusive advisory lock on the directory's lock file,
// serializing keyring writes between processes.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "keyring.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := filelock.Flock(f, filelock.Exclusive); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %q: %w", f.Name(), err)
	}
	return func() {
		_ = filelock.Flock(f, filelock.Unlock)
		f.Close()
	}, nil
}
