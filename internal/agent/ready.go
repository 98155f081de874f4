package agent

import (
	"context"
	"fmt"
	"sort"
)

// NotReady says what an agent still waits for before its mesh can carry
// every local service's traffic; nil means it is ready.
func (a *Agent) NotReady() error {
	if !a.meshSynced.Load() {
		return fmt.Errorf("agent %s: no registry or policy from the control plane yet", a.cfg.Node)
	}
	a.mu.RLock()
	var missing []string
	for name, s := range a.svids {
		if s.cert == nil {
			missing = append(missing, name)
		}
	}
	a.mu.RUnlock()
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("agent %s: no SVID yet for %q", a.cfg.Node, missing)
	}
	return nil
}

// WaitReady waits until the agent is ready: its mesh applied a full
// snapshot of the registry and the policy, and it holds an SVID for every
// service registered on its node. Until then an inbound handshake for a
// local service is refused as not ready (flow.ReasonNotReady). When ctx
// ends first, the error says what was still missing.
func (a *Agent) WaitReady(ctx context.Context) error {
	for {
		applied, changed := a.meshApplied.C(), a.changed.C()
		err := a.NotReady()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-applied:
		case <-changed:
		}
	}
}
