package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"moat/internal/api"
	"moat/internal/seal"
)

// The agent never goes back. What the control plane publishes carries
// versions that only grow: the store revision of a full snapshot, the
// revocation list's Version, the policy's Version. The agent remembers the
// highest of each it accepted (floorFile, kept across restarts) and refuses
// a frame that carries an older one, whoever sends it: a server restored
// from an old backup, one that lags, an old response replayed. A refused
// frame changes nothing: the revocations, intentions, grants and registry
// the agent holds stay as they are; the refusal is logged (the first, then
// at each power of two) and counted in moat_agent_rollbacks_refused_total.
//
// A control plane deliberately rolled back (restored from a backup, moved
// to a new store) is taken again only once the operator resets each
// agent's floor: with the agent stopped, moat agent floor reset (ResetFloor)
// drops FloorFile, and the agent takes the next snapshot as it comes.

// FloorFile is the file, in the agent's data directory, that keeps the
// highest versions of the control plane's state the agent accepted.
const FloorFile = "floor.json"

// maxFloorBytes bounds what the agent reads of FloorFile.
const maxFloorBytes = 4 << 10

// Versions are the growing versions of the control plane's state.
type Versions struct {
	Revision    int64 `json:"revision"`    // store revision of the latest frame
	Revocations int64 `json:"revocations"` // revocation list's Version
	Policy      int64 `json:"policy"`      // policy's Version
}

// floor is the highest versions accepted, and the refusals counted.
type floor struct {
	path    string
	mu      sync.Mutex // guards v
	v       Versions
	refused atomic.Int64
}

// loadFloor reads the floor kept in dir; none yet is the zero floor. A
// floor that does not read is an error: starting without it would take
// back whatever an old snapshot says.
func loadFloor(dir string) (*floor, error) {
	f := &floor{path: filepath.Join(dir, FloorFile)}
	fh, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFloorBytes+1))
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", f.path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if len(data) > maxFloorBytes {
		err = fmt.Errorf("larger than %d bytes", maxFloorBytes)
	} else if err = dec.Decode(&f.v); err == nil && dec.More() {
		err = errors.New("data after the versions")
	} else if err == nil && (f.v.Revision < 0 || f.v.Revocations < 0 || f.v.Policy < 0) {
		err = errors.New("negative version")
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w (moat agent floor reset drops it)", f.path, err)
	}
	return f, nil
}

// errRollback is a frame older than what the agent holds.
var errRollback = errors.New("older than the state this agent holds")

// admit returns an error if u carries a version below the floor. A full
// snapshot is checked on its store revision too, which is read with quorum
// and so at least that of every change streamed before it; a single change
// is not, since it may be streamed after a snapshot that covered later
// changes.
func (f *floor) admit(u api.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case u.Full && u.Revision < f.v.Revision:
		return fmt.Errorf("snapshot at store revision %d, below %d: %w", u.Revision, f.v.Revision, errRollback)
	case u.Revocations != nil && u.Revocations.Version < f.v.Revocations:
		return fmt.Errorf("revocation list version %d, below %d: %w", u.Revocations.Version, f.v.Revocations, errRollback)
	case u.Policy != nil && u.Policy.Version < f.v.Policy:
		return fmt.Errorf("policy version %d, below %d: %w", u.Policy.Version, f.v.Policy, errRollback)
	}
	return nil
}

// raise moves the floor up to what u carries and keeps it on disk.
func (f *floor) raise(u api.Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.v
	v.Revision = max(v.Revision, u.Revision)
	if u.Revocations != nil {
		v.Revocations = max(v.Revocations, u.Revocations.Version)
	}
	if u.Policy != nil {
		v.Policy = max(v.Policy, u.Policy.Version)
	}
	if v == f.v {
		return nil
	}
	f.v = v
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return seal.WriteFileAtomic(f.path, data, 0o600)
}

// refuse counts a refused frame and logs the first refusal and then each
// power of two, so a source that keeps sending the past cannot fill the log.
func (a *Agent) refuse(err error) {
	n := a.floor.refused.Add(1)
	if n&(n-1) == 0 {
		a.log.Error("refusing control-plane state older than the one this node holds", "err", err, "refused", n,
			"if_restored", "if the control plane was restored from a backup on purpose, stop the agent and run: moat agent floor reset --data-dir "+a.cfg.DataDir)
	}
}

// RollbacksRefused returns how many frames the agent refused as older
// than the state it holds.
func (a *Agent) RollbacksRefused() int64 { return a.floor.refused.Load() }

// ErrNoFloor is ResetFloor's answer when the agent holds no floor.
var ErrNoFloor = errors.New("agent: no state floor kept")

// ResetFloor drops the floor kept in dataDir, returning the versions it
// held, so that the agent takes the control plane's next snapshot as it
// comes: for a control plane deliberately restored from a backup, whose
// state is older than what the node saw. It refuses while an agent runs on
// dataDir (it holds LockFile), and returns ErrNoFloor when there is none.
func ResetFloor(dataDir string) (Versions, error) {
	if _, err := os.Stat(filepath.Join(dataDir, nodeDir)); err != nil {
		return Versions{}, fmt.Errorf("agent: %s holds no node identity: %w", dataDir, err)
	}
	lock, err := lockDataDir(dataDir)
	if errors.Is(err, ErrRunning) {
		return Versions{}, fmt.Errorf("agent: the agent of %s is running (it holds %s); stop it first; nothing was changed",
			dataDir, filepath.Join(dataDir, nodeDir, LockFile))
	}
	if err != nil {
		return Versions{}, err
	}
	defer lock.Close()
	f, err := loadFloor(dataDir)
	if err != nil {
		// A floor that does not read is dropped all the same.
		f = &floor{path: filepath.Join(dataDir, FloorFile)}
	}
	if err := os.Remove(f.path); errors.Is(err, os.ErrNotExist) {
		return Versions{}, ErrNoFloor
	} else if err != nil {
		return Versions{}, fmt.Errorf("agent: %w", err)
	}
	return f.v, nil
}
