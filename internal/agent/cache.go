package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"moat/internal/api"
	"moat/internal/atomicfile"
	"moat/internal/identity"
)

// cacheFile keeps the last state the control plane published, so an agent
// that restarts while the server is away serves with the registry, the
// intentions and the revocations it last knew instead of denying everything.
const cacheFile = "state.json"

type cached struct {
	Revision    int64                `json:"revision"`
	Services    []api.Registration   `json:"services"`
	Nodes       []api.Node           `json:"nodes"`
	Policy      api.Policy           `json:"policy"`
	Revocations identity.Revocations `json:"revocations"`
	Bundle      [][]byte             `json:"bundle"`
}

// saveCache writes the current state atomically.
func (a *Agent) saveCache() error {
	a.mu.RLock()
	c := cached{Revision: a.state.revision, Policy: a.state.policy, Revocations: a.trust.Revocations()}
	for _, r := range a.state.services {
		c.Services = append(c.Services, r)
	}
	for _, n := range a.state.nodes {
		c.Nodes = append(c.Nodes, n)
	}
	a.mu.RUnlock()
	if b := a.trust.Bundle(); b != nil {
		c.Bundle = api.DERs(b.X509Authorities())
	}
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("agent: cache: %w", err)
	}
	name := filepath.Join(a.cfg.DataDir, cacheFile)
	if err := atomicfile.Write(name, data, 0o600); err != nil {
		return fmt.Errorf("agent: cache: %w", err)
	}
	return nil
}

// loadCache applies the cached state as a full snapshot, if there is one.
// The watch stream's first snapshot replaces it.
func (a *Agent) loadCache() error {
	data, err := os.ReadFile(filepath.Join(a.cfg.DataDir, cacheFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent: cache: %w", err)
	}
	var c cached
	if err := json.Unmarshal(data, &c); err != nil {
		// A damaged cache is not worth refusing to start over: the server
		// sends everything again.
		a.log.Warn("ignoring a damaged state cache", "err", err)
		return nil
	}
	u := api.Update{Full: true, Revision: c.Revision, Services: c.Services, Nodes: c.Nodes, Policy: &c.Policy, Revocations: &c.Revocations}
	if len(c.Bundle) > 0 {
		u.Bundle = c.Bundle
	}
	return a.applyFrame(u, false)
}
