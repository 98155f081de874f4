package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"moat/internal/api"
	"moat/internal/identity"
)

// state is the agent's copy of what the control plane publishes.
type state struct {
	services map[string]api.Registration
	nodes    map[string]api.Node
	policy   api.Policy
	grants   map[string]api.Grant // this node's break-glass grants
	revision int64
	epoch    int64 // the store's restore epoch
	// listed is the revocation list of the latest frame that carried
	// one, without the revocations the floor carries, and revTags its
	// tags.
	listed  identity.Revocations
	revTags map[string][]byte
}

// broadcast wakes every waiter at each Notify.
type broadcast struct {
	mu sync.Mutex // guards ch
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// C returns a channel closed at the next Notify.
func (b *broadcast) C() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) Notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// apply folds one watch frame into the agent's state and keeps the cache.
func (a *Agent) apply(u api.Update) error {
	return a.applyFrame(u, true)
}

func (a *Agent) applyFrame(u api.Update, save bool) error {
	if u.Heartbeat {
		return nil
	}
	if err := a.floor.admit(u); err != nil {
		a.refuse(err)
		return nil
	}
	// The cache, read at start, does not move the floor (see below).
	if from := a.floor.epoch(); u.Epoch > from && save {
		a.mu.RLock()
		held := a.state.revTags
		a.mu.RUnlock()
		n, err := a.floor.enter(u, a.trust.Revocations(), held, a.cfg.Now())
		if err != nil {
			a.refuse(err)
			return nil
		}
		a.log.Info("control plane restored: taking its state at a newer store epoch", "epoch", u.Epoch, "from_epoch", from, "carried_revocations", n)
	}
	var newShells []api.Grant // shell grants this frame brings
	if u.Bundle != nil {
		roots, err := api.ParseChain(u.Bundle)
		if err != nil {
			return err
		}
		a.trust.Update(x509bundle.FromX509Authorities(a.td, roots), a.trust.Revocations())
		a.changed.Notify()
	}
	if u.Revocations != nil {
		a.trust.Update(nil, a.floor.withCarried(*u.Revocations))
	}
	now := a.cfg.Now()
	a.mu.Lock()
	if u.Full {
		a.state = state{services: map[string]api.Registration{}, nodes: map[string]api.Node{}, grants: revokedGrants(a.state.grants, now)}
		a.synced = true
		a.live = a.live || save
	}
	if u.Policy != nil {
		a.state.policy = *u.Policy
	}
	if u.Revocations != nil {
		a.state.listed, a.state.revTags = *u.Revocations, u.RevocationTags
	}
	for _, r := range u.Services {
		a.state.services[r.Name] = r
	}
	for _, n := range u.RemovedServices {
		delete(a.state.services, n)
	}
	for _, n := range u.Nodes {
		a.state.nodes[n.Name] = n
	}
	for _, n := range u.RemovedNodes {
		delete(a.state.nodes, n)
	}
	for _, g := range u.Grants {
		if a.state.grants == nil {
			a.state.grants = map[string]api.Grant{}
		}
		if g.Node == a.cfg.Node {
			if err := a.floor.admitGrant(g, now); err != nil {
				a.refuse(err)
				continue
			}
			if err := a.floor.revokeGrant(g, now); err != nil {
				a.log.Error("revoked grant not kept in the state floor", "grant", g.ID, "err", err)
			}
			if _, had := a.state.grants[g.ID]; !had && g.Mode == api.ModeShell {
				newShells = append(newShells, g)
			}
			a.state.grants[g.ID] = g
		}
	}
	if u.Revision > a.state.revision {
		a.state.revision = u.Revision
	}
	a.state.epoch = max(a.state.epoch, u.Epoch)
	removed := a.reconcileLocked()
	a.mu.Unlock()
	if a.access != nil {
		for _, g := range newShells {
			a.access.shellGranted(g)
		}
	}
	for _, name := range removed {
		_ = os.RemoveAll(filepath.Join(a.cfg.DataDir, svidDir, name))
	}
	if len(removed) > 0 {
		a.changed.Notify()
	}
	if save {
		// What the cache says was accepted before: it does not move the floor,
		// so removing the floor file is all a reset takes.
		if err := a.floor.raise(u); err != nil {
			a.log.Warn("state floor not saved", "err", err)
		}
	}
	a.nudge()
	a.updates.Notify()
	if save {
		if err := a.saveCache(); err != nil {
			a.log.Warn("state cache not saved", "err", err)
		}
	}
	return nil
}

// revokedGrants returns the grants of held that were revoked and could
// still be used but for that (a snapshot lists no revoked grant), so that
// they stay held as revoked; the floor refuses a frame that shows one
// active again (admitGrant). Each goes once its grant would have ended
// anyway.
func revokedGrants(held map[string]api.Grant, now time.Time) map[string]api.Grant {
	kept := map[string]api.Grant{}
	for id, g := range held {
		if !g.Revoked.IsZero() && (now.Before(g.Expires) || now.Before(g.PendingUntil)) {
			kept[id] = g
		}
	}
	return kept
}

// reconcileLocked makes the SVID set match the services registered on this
// node: new ones get an empty entry (due now), gone ones are dropped.
func (a *Agent) reconcileLocked() (removed []string) {
	for name, r := range a.state.services {
		if r.Node != a.cfg.Node {
			continue
		}
		if _, ok := a.svids[name]; !ok {
			id, err := identity.ServiceID(a.td, name)
			if err != nil {
				continue
			}
			a.svids[name] = &svid{id: id}
		}
	}
	for name := range a.svids {
		if r, ok := a.state.services[name]; !ok || r.Node != a.cfg.Node {
			delete(a.svids, name)
			removed = append(removed, name)
		}
	}
	return removed
}

// LocalServices returns the registrations placed on this node.
func (a *Agent) LocalServices() []api.Registration {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.sortedLocalLocked()
}

func (a *Agent) sortedLocalLocked() []api.Registration {
	var out []api.Registration
	for _, r := range a.state.services {
		if r.Node == a.cfg.Node {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Registration returns any service's registration.
func (a *Agent) Registration(name string) (api.Registration, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	r, ok := a.state.services[name]
	return r, ok
}

// NodeAddr returns the mesh address of a node.
func (a *Agent) NodeAddr(node string) (string, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	n, ok := a.state.nodes[node]
	return n.MeshAddr, ok
}

// Policy returns the intentions document last received.
func (a *Agent) Policy() api.Policy {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.state.policy
}

// Updates returns a channel closed at the next applied watch frame.
func (a *Agent) Updates() <-chan struct{} { return a.updates.C() }

// WaitSynced waits until the agent holds a full snapshot (from the server
// or from its cache) or ctx ends.
func (a *Agent) WaitSynced(ctx context.Context) error {
	for {
		ch := a.Updates()
		if a.Synced() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// liveSynced reports whether a full snapshot from the server (not the
// cache read at start) has been taken since start.
func (a *Agent) liveSynced() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.live
}

// Synced reports whether a full snapshot has arrived since start.
func (a *Agent) Synced() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.synced
}

// watchLoop follows the watch stream, reconnecting with backoff. A broken
// stream changes nothing the agent holds.
func (a *Agent) watchLoop(ctx context.Context) error {
	fails := 0
	for ctx.Err() == nil {
		got := false
		wctx, cancel := context.WithCancel(ctx)
		renewed := a.nodeChanged.C()
		go func() {
			select {
			case <-renewed:
			case <-wctx.Done():
			}
			cancel()
		}()
		err := a.api().Watch(wctx, a.cfg.WatchTimeout, func(u api.Update) error {
			got = true
			return a.apply(u)
		})
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-renewed:
			continue // reconnect at once with the new certificate
		default:
		}
		if got {
			fails = 0
		}
		fails++
		switch {
		case errors.Is(err, api.ErrUnauthenticated):
			a.suspectNode(err)
			a.log.Error("the control plane refuses this node's certificate", "err", err)
		case errors.Is(err, api.ErrWatchSilent):
			// The connection is half-open: drop it (and every call pooled
			// on it) and dial afresh.
			a.log.Warn("watch stream silent past its heartbeats; reconnecting on a new connection", "err", err)
			a.resetClient()
			if got {
				continue // it was alive before: try a fresh connection at once
			}
		case got:
			// A stream that worked broke (its server stopped, say): the
			// client tries every server, so reconnect at once.
			a.log.Warn("watch stream broken; reconnecting", "err", err)
			continue
		default:
			a.suspectNode(err)
			a.log.Warn("watch stream failed; retrying", "err", err, "attempt", fails)
		}
		select {
		case <-ctx.Done():
		case <-a.cfg.After(a.backoff(fails)):
		}
	}
	return nil
}

// backoff returns the wait after n consecutive failures: doubling from
// MinBackoff, capped at MaxBackoff, with ±20% jitter.
func (a *Agent) backoff(n int) time.Duration {
	d := a.cfg.MinBackoff
	for i := 1; i < n && d < a.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, a.cfg.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*a.cfg.Jitter()))
}

func (a *Agent) nudge() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}
