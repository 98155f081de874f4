package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/seal"
)

// The agent witnesses the control plane's audit log, as Go's checksum
// database clients witness theirs: it pins the log's verifier key at join,
// remembers the newest checkpoint it has checked (node/audit.checkpoint),
// and accepts a newer one only with a proof that it extends the one
// remembered. A log cut back or rewritten after this node saw it, by
// whoever holds the server's key, is refused: the agent keeps its
// checkpoint, logs an error and counts it in
// moat_agent_audit_inconsistent_total.

// defaultWitnessEvery is how often the agent checks the log's checkpoint.
const defaultWitnessEvery = time.Minute

// witnessState is what the agent's witness has seen.
type witnessState struct {
	size         atomic.Int64 // entries the remembered checkpoint covers
	inconsistent atomic.Int64 // checkpoints refused as inconsistent
}

// pinAuditKey keeps the audit log's verifier key the server gave at join
// or renewal, unless one is pinned already: a key that changes later is
// not believed.
func (a *Agent) pinAuditKey(vkey string) {
	if vkey == "" {
		return
	}
	if _, err := audit.ParseVerifier(vkey); err != nil {
		a.log.Warn("audit: the server's verifier key does not parse; not pinned", "err", err)
		return
	}
	p := filepath.Join(a.cfg.DataDir, nodeDir, api.AuditKeyFile)
	old, err := os.ReadFile(p)
	switch {
	case err == nil && strings.TrimSpace(string(old)) != vkey:
		a.log.Error("audit: the server now names another verifier key than the one pinned at join; keeping the pinned one", "pinned", strings.TrimSpace(string(old)), "offered", vkey)
	case errors.Is(err, os.ErrNotExist):
		if err := seal.WriteFileAtomic(p, []byte(vkey+"\n"), 0o644); err != nil {
			a.log.Warn("audit: pin the verifier key", "err", err)
		}
	}
}

// witnessLoop checks the log's checkpoint every WitnessEvery.
func (a *Agent) witnessLoop(ctx context.Context) error {
	every := a.cfg.WitnessEvery
	if every <= 0 {
		every = defaultWitnessEvery
	}
	var w *audit.Witness
	for {
		if w == nil {
			w = a.openWitness()
		}
		// The log is checked against the control plane the node has taken
		// a snapshot of in this run (its store epoch known), not only the
		// state cached from an earlier one.
		updates, synced := a.updates.C(), a.liveSynced()
		if w != nil && synced {
			a.witnessOnce(ctx, w)
		}
		// Until the first snapshot, each frame may be it: the first check
		// follows it rather than a period later.
		var frame <-chan struct{}
		if !synced {
			frame = updates
		}
		select {
		case <-ctx.Done():
			return nil
		case <-frame:
		case <-a.cfg.After(every):
		}
	}
}

// openWitness opens the witness once a verifier key is pinned.
func (a *Agent) openWitness() *audit.Witness {
	dir := filepath.Join(a.cfg.DataDir, nodeDir)
	v, err := audit.LoadVerifier(filepath.Join(dir, api.AuditKeyFile))
	if err != nil {
		return nil // not pinned yet: the next renewal pins it
	}
	w, err := audit.OpenWitness(filepath.Join(dir, api.AuditCheckpointFile), v)
	if err != nil {
		a.log.Error("audit: the remembered checkpoint does not open", "err", err)
		return nil
	}
	a.witness.size.Store(w.Size())
	return w
}

func (a *Agent) witnessOnce(ctx context.Context, w *audit.Witness) {
	held, _ := w.Latest()
	c, err := w.Update(func(from int64) ([]byte, tlog.TreeProof, error) {
		var resp api.AuditConsistency
		if err := a.api().Call(ctx, http.MethodGet, fmt.Sprintf("%s?from=%d", api.PathNodeAudit, from), nil, &resp); err != nil {
			return nil, nil, err
		}
		p, err := audit.ParseProofBytes(resp.Proof)
		return []byte(resp.Checkpoint), p, err
	})
	switch {
	case errors.Is(err, audit.ErrInconsistent):
		a.witness.inconsistent.Add(1)
		a.log.Error("audit: the control plane's audit log does not extend the checkpoint this node witnessed; it was cut back or rewritten", "witnessed", w.Size(), "err", err,
			"store_epoch", a.floor.epoch(),
			"if_restored", "if the control plane was restored from a backup on purpose (its log then holds a store.restore entry, and the store a newer epoch), stop the agent and run: moat agent witness reset --data-dir "+a.cfg.DataDir)
	case err != nil:
		if ctx.Err() == nil {
			a.log.Debug("audit: checkpoint not checked", "err", err)
		}
	case held == nil:
		// The node's record that it trusted this log from here on, after
		// a join or a reset (moat agent witness reset).
		a.log.Info("audit: no checkpoint witnessed before; trusting the log's on first use", "size", c.Size, "root", c.Root.String())
		a.witness.size.Store(c.Size)
	default:
		a.log.Debug("audit: checkpoint witnessed", "size", c.Size)
		a.witness.size.Store(c.Size)
	}
}

// AuditWitnessed returns how many entries of the audit log this agent has
// witnessed, and how many checkpoints it refused as inconsistent.
func (a *Agent) AuditWitnessed() (size, inconsistent int64) {
	return a.witness.size.Load(), a.witness.inconsistent.Load()
}

// ErrNoWitnessed: the node holds no witnessed audit checkpoint.
var ErrNoWitnessed = audit.ErrNoWitnessed

// ResetWitness drops the audit checkpoint the agent of dataDir witnessed
// (audit.DropWitnessed: set aside, not deleted), so that it trusts the
// next one it sees on first use, as after its join: for a control plane
// deliberately restored from a backup, whose log no longer extends what
// the node saw. It refuses while an agent runs on dataDir (it holds
// LockFile), and returns ErrNoWitnessed when there is nothing to drop.
func ResetWitness(dataDir string, now time.Time) (audit.Dropped, error) {
	dir := filepath.Join(dataDir, nodeDir)
	if _, err := os.Stat(dir); err != nil {
		return audit.Dropped{}, fmt.Errorf("agent: %s holds no node identity: %w", dataDir, err)
	}
	lock, err := lockDataDir(dataDir)
	if errors.Is(err, ErrRunning) {
		return audit.Dropped{}, fmt.Errorf("agent: the agent of %s is running (it holds %s); stop it first; nothing was changed",
			dataDir, filepath.Join(dir, LockFile))
	}
	if err != nil {
		return audit.Dropped{}, err
	}
	defer lock.Close()
	v, verr := audit.LoadVerifier(filepath.Join(dir, api.AuditKeyFile))
	if verr != nil {
		v = nil
	}
	d, err := audit.DropWitnessed(filepath.Join(dir, api.AuditCheckpointFile), v, now)
	if err == nil && verr != nil {
		d.Unverified = verr.Error()
	}
	return d, err
}
