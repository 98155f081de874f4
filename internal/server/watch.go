package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/store"
)

// subBuffer is how many frames a slow watcher may lag before it is cut off;
// it reconnects and starts again from a full snapshot.
const subBuffer = 1024

// hub turns store changes into watch frames and fans them out.
type hub struct {
	s    *Server
	mu   sync.Mutex // guards subs
	subs map[*sub]struct{}
}

type sub struct {
	ch     chan frame
	closed bool // guarded by hub.mu
}

// frame is an update with the store revision and key prefix it came from.
type frame struct {
	prefix string
	rev    int64
	u      api.Update
}

func newHub(s *Server) *hub { return &hub{s: s, subs: map[*sub]struct{}{}} }

func (h *hub) subscribe() *sub {
	sb := &sub{ch: make(chan frame, subBuffer)}
	h.mu.Lock()
	h.subs[sb] = struct{}{}
	h.mu.Unlock()
	return sb
}

func (h *hub) unsubscribe(sb *sub) {
	h.mu.Lock()
	if _, ok := h.subs[sb]; ok {
		delete(h.subs, sb)
		if !sb.closed {
			sb.closed = true
			close(sb.ch)
		}
	}
	h.mu.Unlock()
}

func (h *hub) publish(f frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sb := range h.subs {
		select {
		case sb.ch <- f:
		default:
			// Too slow: cut it off rather than block everyone.
			delete(h.subs, sb)
			sb.closed = true
			close(sb.ch)
		}
	}
}

// watchedPrefix returns which watched key family k belongs to, or "".
func watchedPrefix(k string) string {
	switch {
	case strings.HasPrefix(k, prefixService):
		return prefixService
	case strings.HasPrefix(k, prefixNode):
		return prefixNode
	case strings.HasPrefix(k, prefixGrant):
		return prefixGrant
	case k == keyRevocations, k == keyPolicy, k == keyBundle, k == keyCA, k == keyEpoch:
		return k
	}
	return ""
}

// run follows the store and publishes a frame per relevant change. It also
// keeps this server's own trust in step with changes made by other servers
// sharing the store.
func (h *hub) run(ctx context.Context) error {
	// A store that does not answer is waited out (storeup.go): the server
	// keeps serving what it can and tries again.
	bo := storeBackoff()
	var rev int64
	for {
		r, err := h.s.st.Rev(ctx)
		if err == nil {
			rev = r
			break
		}
		if !h.s.store.retry(ctx, bo, err) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("server: read the store: %w", err)
		}
	}
	h.s.store.answered()
	bo.Reset()
	for ctx.Err() == nil {
		events, err := h.s.st.Watch(ctx, "", rev)
		if err != nil {
			if errors.Is(err, store.ErrCompacted) {
				rev = 0
				continue
			}
			if errors.Is(err, store.ErrClosed) || ctx.Err() != nil {
				return err
			}
			if transient(err) {
				h.s.store.retry(ctx, bo, err)
			} else {
				// A watch that fails for another cause is tried again too.
				h.s.log.Warn("store watch failed; retrying", "err", err)
				pause(ctx, bo.NextBackOff())
			}
			continue
		}
		h.s.store.answered()
		bo.Reset()
		for ev := range events {
			if ev.Err != nil {
				if errors.Is(ev.Err, store.ErrCompacted) {
					rev = 0
				}
				h.s.log.Warn("store watch ended", "err", ev.Err)
				break
			}
			rev = ev.KV.ModRevision
			f, ok := h.frameOf(ctx, ev)
			if ok {
				h.publish(f)
			}
		}
		if ctx.Err() == nil {
			// The stream ended without our asking: resume after a pause.
			pause(ctx, time.Second)
		}
	}
	return nil
}

func (h *hub) frameOf(ctx context.Context, ev store.Event) (frame, bool) {
	k := ev.KV.Key
	p := watchedPrefix(k)
	if p == "" {
		return frame{}, false
	}
	f := frame{prefix: p, rev: ev.KV.ModRevision, u: api.Update{Revision: ev.KV.ModRevision}}
	del := ev.Type == store.EventDelete
	switch p {
	case prefixService:
		if del {
			f.u.RemovedServices = []string{strings.TrimPrefix(k, p)}
		} else {
			var reg api.Registration
			if json.Unmarshal(ev.KV.Value, &reg) != nil {
				return frame{}, false
			}
			f.u.Services = []api.Registration{reg}
		}
	case prefixNode:
		if del {
			f.u.RemovedNodes = []string{strings.TrimPrefix(k, p)}
		} else {
			var n api.Node
			if json.Unmarshal(ev.KV.Value, &n) != nil {
				return frame{}, false
			}
			f.u.Nodes = []api.Node{n}
		}
	case prefixGrant:
		if del {
			h.s.access.cut(strings.TrimPrefix(k, p))
			return frame{}, false
		}
		var g api.Grant
		if json.Unmarshal(ev.KV.Value, &g) != nil {
			return frame{}, false
		}
		if !g.Active(h.s.now()) {
			// Revoked (through whichever server): the relays this
			// server carries end now, as the agents' sessions do.
			h.s.access.cut(g.ID)
		}
		f.u.Grants = []api.Grant{g}
	case keyRevocations:
		var r identity.Revocations
		if json.Unmarshal(ev.KV.Value, &r) != nil {
			return frame{}, false
		}
		if r.Version > h.s.trust.Revocations().Version {
			h.s.trust.Update(nil, r)
		}
		f.u.Revocations, f.u.RevocationTags = &r, h.s.tags.of(h.s.td, r)
	case keyPolicy:
		var pol api.Policy
		if json.Unmarshal(ev.KV.Value, &pol) != nil {
			return frame{}, false
		}
		f.u.Policy = &pol
	case keyBundle:
		var roots [][]byte
		if json.Unmarshal(ev.KV.Value, &roots) != nil {
			return frame{}, false
		}
		f.u.Bundle = roots
	case keyCA:
		// Another server rotated the CA: load what it stored.
		if err := h.s.loadCA(ctx); err != nil {
			h.s.log.Error("reload CA after a change in the store", "err", err)
		} else {
			h.s.trust.Update(h.s.CA().Bundle(), h.s.trust.Revocations())
			// This server's own certificate moves to the active authority
			// too, as on the server that made the change.
			if err := h.s.renewOwnCert(); err != nil {
				h.s.log.Error("renew server certificate after a CA change", "err", err)
			}
		}
		return frame{}, false
	case keyEpoch:
		// A stream of another epoch than this one ends (handleWatch); a
		// record that does not read ends every stream. The same epoch
		// written again (a re-encryption pass) ends none.
		var rec restoreRecord
		if del || json.Unmarshal(ev.KV.Value, &rec) != nil {
			rec.Epoch = -1
		}
		f.u.Epoch = rec.Epoch
	}
	return f, true
}

// snapshot builds a full frame and the store revision of each key family
// it read, so frames already covered can be skipped.
func (s *Server) snapshot(ctx context.Context) (api.Update, map[string]int64, error) {
	u := api.Update{Full: true}
	revs := map[string]int64{}
	regs, rev, err := s.st.List(ctx, prefixService)
	if err != nil {
		return u, nil, err
	}
	revs[prefixService] = rev
	for _, kv := range regs {
		var reg api.Registration
		if err := json.Unmarshal(kv.Value, &reg); err != nil {
			return u, nil, err
		}
		u.Services = append(u.Services, reg)
	}
	nodes, rev, err := s.st.List(ctx, prefixNode)
	if err != nil {
		return u, nil, err
	}
	revs[prefixNode] = rev
	for _, kv := range nodes {
		var n api.Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			return u, nil, err
		}
		u.Nodes = append(u.Nodes, n)
	}
	single := func(key string, v any) (bool, error) {
		kv, err := s.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			r, rerr := s.st.Rev(ctx)
			revs[key] = r
			return false, rerr
		}
		if err != nil {
			return false, err
		}
		revs[key] = kv.ModRevision
		return true, json.Unmarshal(kv.Value, v)
	}
	grants, rev, err := s.st.List(ctx, prefixGrant)
	if err != nil {
		return u, nil, err
	}
	revs[prefixGrant] = rev
	now := s.now()
	for _, kv := range grants {
		var g api.Grant
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return u, nil, err
		}
		if st := g.State(now); st == api.GrantActive || st == api.GrantPending {
			u.Grants = append(u.Grants, g)
		}
	}
	var rv identity.Revocations
	if _, err := single(keyRevocations, &rv); err != nil {
		return u, nil, err
	}
	u.Revocations, u.RevocationTags = &rv, s.tags.of(s.td, rv)
	var pol api.Policy
	ok, err := single(keyPolicy, &pol)
	if err != nil {
		return u, nil, err
	}
	if ok {
		u.Policy = &pol
	} else {
		u.Policy = &api.Policy{}
	}
	if _, err := single(keyBundle, &u.Bundle); err != nil {
		return u, nil, err
	}
	var er restoreRecord
	if ok, err := single(keyEpoch, &er); err != nil {
		return u, nil, err
	} else if ok && er.Epoch <= 0 {
		return u, nil, fmt.Errorf("server: stored %q: epoch %d", keyEpoch, er.Epoch)
	}
	u.Epoch = er.Epoch
	for _, r := range revs {
		u.Revision = max(u.Revision, r)
	}
	return u, revs, nil
}

// maxNodeWatches bounds the watch streams a server keeps for one node. An
// agent follows one, two while it reconnects over a stream not yet seen
// dead; whoever holds the node's certificate could open thousands, each a
// subscription fed every change. A stream past the bound ends the node's
// oldest, so the newest, the agent's own after a reconnect, is kept.
const maxNodeWatches = 4

// nodeWatches are the watch streams each node holds on this server, oldest
// first, by the function that ends each.
type nodeWatches struct {
	mu sync.Mutex // guards m
	m  map[string][]*context.CancelFunc
}

// add registers a watch stream of node that end ends, ends the node's
// oldest one past maxNodeWatches, and returns the stream's removal.
func (nw *nodeWatches) add(node string, end context.CancelFunc) (remove func()) {
	me := &end
	nw.mu.Lock()
	if nw.m == nil {
		nw.m = map[string][]*context.CancelFunc{}
	}
	l := append(nw.m[node], me)
	var oldest *context.CancelFunc
	if len(l) > maxNodeWatches {
		oldest, l = l[0], l[1:]
	}
	nw.m[node] = l
	nw.mu.Unlock()
	if oldest != nil {
		(*oldest)()
	}
	return func() {
		nw.mu.Lock()
		defer nw.mu.Unlock()
		l := nw.m[node]
		if i := slices.Index(l, me); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
		if len(l) == 0 {
			delete(nw.m, node)
		} else {
			nw.m[node] = l
		}
	}
}

// handleWatch streams a full snapshot, then every change, as JSON lines.
// The stream ends when the node's certificate is revoked or expires, when
// the node joins again (the certificate is of an earlier join), or when
// the node opens more than maxNodeWatches.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx, end := context.WithCancel(r.Context())
	defer end()
	defer s.watches.add(c.Name, end)()
	sb := s.hub.subscribe()
	defer s.hub.unsubscribe(sb)
	s.m.watches.Inc()
	defer s.m.watches.Dec()
	// The snapshot is read with quorum: an agent takes it in place of what
	// it holds, so one member's copy, behind the cluster, would take back
	// revocations, grant revocations and narrowed intentions the agent
	// already has. Without quorum the watch is refused and the agent keeps
	// serving with what it holds.
	snap, revs, err := s.snapshot(ctx)
	if err != nil {
		s.log.Warn("watch snapshot not read; watch refused", "node", c.Name, "err", err)
		writeError(w, err)
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(u api.Update) bool {
		if enc.Encode(u) != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	if !send(forNode(snap, c.Name)) {
		return
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case f, ok := <-sb.ch:
			if !ok {
				return
			}
			if f.rev <= revs[f.prefix] {
				continue
			}
			if f.prefix == keyEpoch {
				if f.u.Epoch != snap.Epoch {
					return
				}
				continue
			}
			if f.prefix == prefixNode && s.joinedAgain(ctx, c, f.u.Nodes) {
				return
			}
			u := forNode(f.u, c.Name)
			// Every frame is of the snapshot's epoch: one that changed
			// ends the stream (above).
			u.Epoch = snap.Epoch
			if f.prefix == prefixGrant && len(u.Grants) == 0 {
				continue
			}
			if !send(u) {
				return
			}
			if f.u.Revocations != nil && s.credentialEnded(c) {
				return
			}
		case <-tick.C:
			if s.credentialEnded(c) {
				return
			}
			if !send(api.Update{Heartbeat: true}) {
				return
			}
		}
	}
}

// joinedAgain says whether nodes, a watch frame's, hold the caller's node,
// joined again since the join its certificate is of (sameJoin): the
// stream of a copy of an earlier join's certificate ends with it. A store
// that cannot be read ends nothing.
func (s *Server) joinedAgain(ctx context.Context, c *caller, nodes []api.Node) bool {
	for _, n := range nodes {
		if n.Name != c.Name {
			continue
		}
		var rec nodeRecord
		return getJSON(ctx, s.st, prefixNode+c.Name, &rec) == nil && rec.JoinID != c.join
	}
	return false
}

// forNode keeps only node's own grants in u: an agent learns nothing of
// other nodes' break-glass access.
func forNode(u api.Update, node string) api.Update {
	if len(u.Grants) == 0 {
		return u
	}
	var mine []api.Grant
	for _, g := range u.Grants {
		if g.Node == node {
			mine = append(mine, g)
		}
	}
	u.Grants = mine
	return u
}
