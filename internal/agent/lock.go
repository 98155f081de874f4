package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"moat/internal/filelock"
)

// LockFile, inside the node directory (DataDir/node), is locked by a
// running agent for as long as it runs: a second agent on the same
// directory, and an operator's command that changes what the agent keeps
// there (moat agent witness reset), are refused while it is held.
const LockFile = "agent.lock"

// ErrRunning: an agent runs on the data directory (it holds LockFile).
var ErrRunning = errors.New("agent: an agent runs on this data directory")

// lockDataDir takes the agent's lock of dataDir, whose node directory
// must exist, without waiting: a held lock wraps ErrRunning and names the
// file. Closing the file drops it.
func lockDataDir(dataDir string) (*os.File, error) {
	p := filepath.Join(dataDir, nodeDir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if err := filelock.Flock(f, filelock.Exclusive|filelock.NonBlocking); err != nil {
		f.Close()
		if errors.Is(err, filelock.ErrLocked) {
			return nil, fmt.Errorf("%w: %s is locked", ErrRunning, p)
		}
		return nil, fmt.Errorf("agent: lock %s: %w", p, err)
	}
	return f, nil
}
