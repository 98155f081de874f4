package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/seal"
)

// cacheFile keeps the last state the control plane published, so an agent
// that restarts while the server is away serves with the registry, the
// intentions and the revocations it last knew instead of denying everything.
const cacheFile = "state.json"

type cached struct {
	Epoch       int64                `json:"epoch,omitempty"`
	Revision    int64                `json:"revision"`
	Services    []api.Registration   `json:"services"`
	Nodes       []api.Node           `json:"nodes"`
	Policy      api.Policy           `json:"policy"`
	Revocations identity.Revocations `json:"revocations"`
	// RevocationTags are the tags of the list the control plane sent
	// last (api.Update.RevocationTags).
	RevocationTags map[string][]byte `json:"revocation_tags,omitempty"`
	Bundle         [][]byte          `json:"bundle"`
}

// saveCache writes the current state atomically.
func (a *Agent) saveCache() error {
	a.mu.RLock()
	c := cached{Epoch: a.state.epoch, Revision: a.state.revision, Policy: a.state.policy, Revocations: a.trust.Revocations(), RevocationTags: a.state.revTags}
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
	if err := seal.WriteFileAtomic(name, data, 0o600); err != nil {
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
	u, err := decodeCache(data)
	if err != nil {
		// A damaged cache is not worth refusing to start over: the server
		// sends everything again.
		a.log.Warn("ignoring a damaged state cache", "err", err)
		return nil
	}
	return a.applyFrame(u, false)
}

// decodeCache turns a cache file into the full snapshot it holds, checking
// what the agent would act on: names as identity names them, ports in
// range, a bundle of parseable certificates. Anything else is an error, and
// the cache is then ignored whole.
func decodeCache(data []byte) (api.Update, error) {
	var c cached
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return api.Update{}, fmt.Errorf("agent: cache: %w", err)
	}
	if dec.More() {
		return api.Update{}, errors.New("agent: cache: data after the state")
	}
	for i, r := range c.Services {
		if err := identity.ValidName(r.Name); err != nil {
			return api.Update{}, fmt.Errorf("agent: cache: services[%d]: %w", i, err)
		}
		if err := identity.ValidName(r.Node); err != nil {
			return api.Update{}, fmt.Errorf("agent: cache: services[%d] (%s): node: %w", i, r.Name, err)
		}
		if r.Port < 1 || r.Port > 65535 || r.PlaintextPort < 0 || r.PlaintextPort > 65535 || r.UID != nil && *r.UID < 0 {
			return api.Update{}, fmt.Errorf("agent: cache: services[%d] (%s): port, plaintext port or uid out of range", i, r.Name)
		}
		for j, u := range r.Upstreams {
			if err := u.Check(); err != nil {
				return api.Update{}, fmt.Errorf("agent: cache: services[%d] (%s): upstreams[%d]: %w", i, r.Name, j, err)
			}
		}
	}
	for i, n := range c.Nodes {
		if err := identity.ValidName(n.Name); err != nil {
			return api.Update{}, fmt.Errorf("agent: cache: nodes[%d]: %w", i, err)
		}
	}
	if err := checkTags(c.RevocationTags, c.Revocations); err != nil {
		return api.Update{}, fmt.Errorf("agent: cache: revocation tags: %w", err)
	}
	if len(c.Bundle) > 0 {
		if _, err := api.ParseChain(c.Bundle); err != nil {
			return api.Update{}, fmt.Errorf("agent: cache: bundle: %w", err)
		}
	}
	u := api.Update{Full: true, Epoch: c.Epoch, Revision: c.Revision, Services: c.Services, Nodes: c.Nodes, Policy: &c.Policy, Revocations: &c.Revocations, RevocationTags: c.RevocationTags}
	if len(c.Bundle) > 0 {
		u.Bundle = c.Bundle
	}
	return u, nil
}
