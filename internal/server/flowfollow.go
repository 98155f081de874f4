package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/identity"
)

// Following a cluster's flows. Records are stored by the server an agent
// ships to, so a follow stream from one server alone would miss what its
// agents send elsewhere. The server that takes a follow relays the whole
// cluster, as Hubble Relay does: it subscribes to its own store and follows
// every live member's own records (PathPeerFollow, server identities only,
// which relays nothing further), merges them by record UID (a batch
// delivered to two servers is shown once), sends the newest Limit of the
// backlog in time order, then every record as it comes. It re-reads the
// membership every memberEvery, follows servers that joined, and
// reconnects to a member whose stream broke, asking for what that member
// stored since the last record it sent; every heartbeat names the servers
// followed and those missing.

// followBuffer is how many records a follower may lag before it misses
// some (counted in its frames' Dropped).
const followBuffer = 4096

// followBacklogWait bounds how long the backlog waits for members'
// backlogs; one that has not sent its own by then is shown as it comes.
const followBacklogWait = 5 * time.Second

// followSeen bounds the record UIDs remembered to drop a record shown
// already (from another server, or in the backlog).
const followSeen = 1 << 16

// handleFlowFollow streams the cluster's newest matching records (Limit of
// them), then every matching record as any server stores it, as
// newline-delimited api.FlowFrames with a heartbeat while nothing happens.
func (s *Server) handleFlowFollow(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	st, err := s.flowStore()
	if err != nil {
		return nil, "", err
	}
	f, _, err := flowFilter(r)
	if err != nil {
		return nil, "", err
	}
	sub, err := st.Follow(f, followBuffer)
	if err != nil {
		return nil, "", err
	}
	recent, err := st.Query(ctx, f)
	if err != nil {
		sub.Close()
		return nil, "", err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer sub.Close()
		rl := s.newRelay(r.Context(), f)
		defer rl.stop()
		s.streamFlows(r.Context(), c, w, sub, recent, rl)
	}), "", nil
}

// handlePeerFollow streams this server's own records to a member's relay.
func (s *Server) handlePeerFollow(w http.ResponseWriter, r *http.Request, c *caller) {
	st, err := s.flowStore()
	if err != nil {
		writeError(w, err)
		return
	}
	f, _, err := flowFilter(r)
	if err != nil {
		writeError(w, err)
		return
	}
	sub, err := st.Follow(f, followBuffer)
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()
	recent, err := st.Query(r.Context(), f)
	if err != nil {
		writeError(w, err)
		return
	}
	s.streamFlows(r.Context(), c, w, sub, recent, nil)
}

// peerEvent is what a member's follower reports to its relay.
type peerEvent struct {
	member  string
	rec     *flow.Record
	backlog bool   // rec belongs to the member's backlog
	ready   bool   // the member's backlog is out
	dropped uint64 // the member's stream's Dropped so far
	err     error  // the stream broke (being reconnected)
}

// followRelay follows every live member of the cluster for one follow stream.
type followRelay struct {
	s      *Server
	ctx    context.Context
	cancel context.CancelFunc
	f      flow.Filter
	events chan peerEvent
	wg     sync.WaitGroup

	// Owned by the stream's goroutine:
	peers   map[string]context.CancelFunc // followed members
	missing map[string]string             // member → why its records are missing now
	waiting map[string]bool               // members whose backlog is not out yet
	dropped map[string]uint64
}

func (s *Server) newRelay(ctx context.Context, f flow.Filter) *followRelay {
	ctx, cancel := context.WithCancel(ctx)
	rl := &followRelay{s: s, ctx: ctx, cancel: cancel, f: f, events: make(chan peerEvent, followBuffer),
		peers: map[string]context.CancelFunc{}, missing: map[string]string{}, waiting: map[string]bool{}, dropped: map[string]uint64{}}
	rl.refresh()
	return rl
}

// refresh follows the members that are alive and not followed yet, and
// stops following those gone.
func (rl *followRelay) refresh() {
	ms, err := rl.s.Members(rl.ctx)
	if err != nil {
		return // the store is away: keep following whom we follow
	}
	alive := map[string]bool{}
	for _, m := range ms {
		if m.Self {
			continue
		}
		if !m.Alive {
			if _, ok := rl.peers[m.Name]; ok || rl.missing[m.Name] == "" {
				rl.missing[m.Name] = "gone"
			}
			continue
		}
		alive[m.Name] = true
		if _, ok := rl.peers[m.Name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(rl.ctx)
		rl.peers[m.Name] = cancel
		rl.waiting[m.Name] = true
		rl.missing[m.Name] = "connecting"
		rl.wg.Add(1)
		go func() {
			defer rl.wg.Done()
			rl.follow(ctx, m.Name, m.Addr)
		}()
	}
	for name, cancel := range rl.peers {
		if !alive[name] {
			cancel()
			delete(rl.peers, name)
			delete(rl.waiting, name)
		}
	}
	for name := range rl.missing {
		if _, listed := alive[name]; !listed && !rl.listed(ms, name) {
			delete(rl.missing, name) // removed from the cluster
		}
	}
}

func (rl *followRelay) listed(ms []api.Member, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

// follow streams one member's records into rl.events until ctx ends,
// reconnecting (with a growing wait) when the stream breaks; after a
// break it asks for the records stored since the last one it passed on.
func (rl *followRelay) follow(ctx context.Context, name, addr string) {
	c := rl.s.peerClient(addr)
	defer c.Close()
	f := rl.f
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		backlog := true
		err := c.FollowPeer(ctx, api.FlowValues(f, 0), 3*rl.s.cfg.Heartbeat, func(fr api.FlowFrame) error {
			ev := peerEvent{member: name, dropped: fr.Dropped}
			switch {
			case fr.Record != nil:
				ev.rec, ev.backlog = fr.Record, backlog
				if t := time.UnixMilli(fr.Record.Time); t.After(f.Since) {
					f.Since = t // a reconnection asks from here on
				}
			case backlog:
				backlog, ev.ready = false, true
				wait = 200 * time.Millisecond
			default:
				return nil
			}
			select {
			case rl.events <- ev:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stream ended")
		}
		select {
		case rl.events <- peerEvent{member: name, err: err}:
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, 10*time.Second)
	}
}

func (rl *followRelay) stop() {
	rl.cancel()
	rl.wg.Wait()
}

// note takes a member's event into the relay's state and returns the
// record it carries, if any.
func (rl *followRelay) note(ev peerEvent) *flow.Record {
	rl.dropped[ev.member] = max(rl.dropped[ev.member], ev.dropped)
	switch {
	case ev.err != nil:
		rl.missing[ev.member] = ev.err.Error()
		delete(rl.waiting, ev.member)
	case ev.ready:
		delete(rl.missing, ev.member)
		delete(rl.waiting, ev.member)
	case ev.rec != nil:
		delete(rl.missing, ev.member)
	}
	return ev.rec
}

// status is the heartbeat's Servers and Missing.
func (rl *followRelay) status(self string) (servers, missing []string) {
	servers = []string{self}
	for name := range rl.peers {
		if rl.missing[name] == "" {
			servers = append(servers, name)
		}
	}
	for name, why := range rl.missing {
		missing = append(missing, fmt.Sprintf("%s (%s)", name, why))
	}
	sort.Strings(servers)
	sort.Strings(missing)
	return servers, missing
}

func (rl *followRelay) droppedTotal() uint64 {
	var n uint64
	for _, d := range rl.dropped {
		n += d
	}
	return n
}

// streamFlows writes the follow stream: the backlog (this server's recent
// records and, with a relay, every member's), newest Limit in time order,
// a heartbeat, then records as they are stored, once each.
func (s *Server) streamFlows(ctx context.Context, c *caller, w http.ResponseWriter, sub *flowstore.Subscription, recent []flow.Record, rl *followRelay) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	seen := flow.NewSeenUIDs(followSeen)
	dropped := func() uint64 {
		if rl == nil {
			return sub.Dropped()
		}
		return sub.Dropped() + rl.droppedTotal()
	}
	send := func(fr api.FlowFrame) bool {
		fr.Dropped = dropped()
		return enc.Encode(fr) == nil && rc.Flush() == nil
	}
	heartbeat := func() bool {
		fr := api.FlowFrame{Heartbeat: true}
		if rl != nil {
			fr.Servers, fr.Missing = rl.status(s.cfg.Name)
		}
		return send(fr)
	}
	backlog := recent
	var early []flow.Record // members' live records that came with the backlogs
	var events chan peerEvent
	if rl != nil {
		events = rl.events
		deadline := time.NewTimer(followBacklogWait)
	gather:
		for len(rl.waiting) > 0 {
			select {
			case <-ctx.Done():
				deadline.Stop()
				return
			case <-deadline.C:
				break gather
			case ev := <-events:
				if rec := rl.note(ev); rec != nil {
					if ev.backlog {
						backlog = append(backlog, *rec)
					} else {
						early = append(early, *rec)
					}
				}
			}
		}
		deadline.Stop()
		sort.SliceStable(backlog, func(i, j int) bool {
			if backlog[i].Time != backlog[j].Time {
				return backlog[i].Time < backlog[j].Time
			}
			return backlog[i].Metadata.UID < backlog[j].Metadata.UID
		})
	}
	var uniq []flow.Record
	for _, r := range backlog {
		if seen.Add(r.Metadata.UID) {
			uniq = append(uniq, r)
		}
	}
	if lim := rl.limit(); lim > 0 && len(uniq) > lim {
		uniq = uniq[len(uniq)-lim:]
	}
	for i := range uniq {
		if !send(api.FlowFrame{Record: &uniq[i]}) {
			return
		}
	}
	if !heartbeat() { // the backlog is out
		return
	}
	for i := range early {
		if seen.Add(early[i].Metadata.UID) && !send(api.FlowFrame{Record: &early[i]}) {
			return
		}
	}
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	var members <-chan time.Time
	if rl != nil {
		t := time.NewTicker(memberEvery)
		defer t.Stop()
		members = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case rec, ok := <-sub.C:
			if !ok {
				return
			}
			if seen.Add(rec.Metadata.UID) && !send(api.FlowFrame{Record: &rec}) {
				return
			}
		case ev := <-events:
			if rec := rl.note(ev); rec != nil && seen.Add(rec.Metadata.UID) && !send(api.FlowFrame{Record: rec}) {
				return
			}
		case <-members:
			rl.refresh()
		case <-tick.C:
			// The caller was authorized when the stream began: it ends,
			// as an agent's watch does, once the certificate it began
			// with is revoked (an administrator removed, "moat revoke")
			// or expires, within a heartbeat.
			if s.credentialEnded(c) || !heartbeat() {
				return
			}
		}
	}
}

// credentialEnded says whether the certificate c presented when its call
// began has since been revoked or expired: a stream it opened ends then.
func (s *Server) credentialEnded(c *caller) bool {
	return identity.CheckValidity(c.Leaf, s.now()) != nil || s.trust.Revoked(c.Leaf, mustParseID(c.ID))
}

// limit is how many backlog records a relayed stream sends (0: all).
func (rl *followRelay) limit() int {
	if rl == nil {
		return 0
	}
	return rl.f.Limit
}
