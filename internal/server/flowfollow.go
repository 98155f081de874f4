package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/flow/flowstore"
	"moat/internal/identity"
	"moat/internal/store"
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
// reconnects to a member whose stream broke; every heartbeat names the
// servers followed and those missing.
//
// No record is skipped for a member's lateness or a broken stream. A
// member's stream carries, on its heartbeats, its store's position after
// the records it sent (api.FlowFrame.Resume, a flowstore.Cursor); a member
// whose stream broke, or that was gone and is back, is asked
// (api.PeerAfter) for every record it stored after that position,
// whatever their times (one an agent kept through its own outage
// included). Without a position yet, a member goes by record time: every
// member is asked (api.PeerReplay) for every record of its own from the
// moment the follow began on, besides its newest Limit, so that more than
// Limit records stored before a slow member answered are all shown; a
// member that joins later is asked for those alone (none older: the
// backlog is out). A time replay starts followResumeSlack early, for
// records stored out of time order and clocks a little apart (Since is
// inclusive; the repeats are dropped by UID). A member answers the newest
// followReplay records of a replay, and counts the older ones it left out
// in Dropped. A member of the version before positions sends none and
// refuses api.PeerAfter: it is asked by time, from the last record it
// sent less followResumeSlack.

// followBuffer is how many records a follower may lag before it misses
// some (counted in its frames' Dropped).
const followBuffer = 4096

// followBacklogWait bounds how long the backlog waits for members'
// backlogs; one that has not sent its own by then is shown as it comes.
const followBacklogWait = 5 * time.Second

// followResumeSlack is how far before the last record a member sent a
// reconnection asks from: records reach a server in batches from several
// agents, not quite in time order (an agent flushes every 200ms).
const followResumeSlack = 2 * time.Second

// followReplay bounds the records a member replays (api.PeerReplay):
// the newest of them, the rest counted in Dropped. A test of this package
// lowers it on one server (Server.replayBound).
const followReplay = api.MaxFlowRecords

// replayBound is followReplay, or the lower bound a test set on s.
func (s *Server) replayBound() int {
	if n := s.followReplayTest.Load(); n > 0 {
		return int(n)
	}
	return followReplay
}

// followResumeEvery is how many records a member's stream to its relay
// sends between two positions (api.FlowFrame.Resume) at most, besides one
// each heartbeat: what a relay asks again after a break.
const followResumeEvery = 1024

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
	began := s.now()
	recent, err := st.Query(ctx, f)
	if err != nil {
		sub.Close()
		return nil, "", err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer sub.Close()
		rl := s.newRelay(r.Context(), f, began)
		defer rl.stop()
		s.streamFlows(r.Context(), c, w, sub, recent, 0, rl, nil)
	}), "", nil
}

// handlePeerFollow streams this server's own records to a member's relay:
// the newest Limit, and with api.PeerReplay every record from then on, or
// with api.PeerAfter every record stored after that position (the newest
// followReplay of them, the rest counted in Dropped), then every record as
// it is stored. Every heartbeat carries the store's position after the
// records sent (api.FlowFrame.Resume), to be given back in api.PeerAfter.
func (s *Server) handlePeerFollow(w http.ResponseWriter, r *http.Request, c *caller) {
	st, err := s.flowStore()
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	var replay time.Time
	replaying := q.Has(api.PeerReplay)
	if replaying {
		v := q.Get(api.PeerReplay)
		if replay, err = time.Parse(time.RFC3339Nano, v); err != nil || len(q[api.PeerReplay]) != 1 {
			writeError(w, errorf(http.StatusBadRequest, "%s %.64q: want one RFC 3339 time", api.PeerReplay, v))
			return
		}
		q.Del(api.PeerReplay)
	}
	var after *flowstore.Cursor
	if q.Has(api.PeerAfter) && s.peerBeforeAfter.Load() {
		writeError(w, errorf(http.StatusBadRequest, "unknown parameter %q", api.PeerAfter))
		return
	}
	if q.Has(api.PeerAfter) {
		v := q.Get(api.PeerAfter)
		if len(q[api.PeerAfter]) != 1 || replaying {
			writeError(w, errorf(http.StatusBadRequest, "%q: want one position, and no %q with it", api.PeerAfter, api.PeerReplay))
			return
		}
		if after, err = parseResume(v); err != nil {
			writeError(w, errorf(http.StatusBadRequest, "%q %.64q: %v", api.PeerAfter, v, err))
			return
		}
		q.Del(api.PeerAfter)
	}
	f, _, err := api.ParseFlowValues(q)
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	if (f.Limit == 0 && !replaying && after == nil) || f.Limit > api.MaxFlowRecords {
		f.Limit = api.MaxFlowRecords
	}
	sub, err := st.Follow(f, followBuffer)
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()
	// The position after every record stored before the subscription
	// (and perhaps some after: those come twice, dropped by UID).
	mark, err := st.Mark(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	var recent []flow.Record
	if f.Limit > 0 {
		if recent, err = st.Query(r.Context(), f); err != nil {
			writeError(w, err)
			return
		}
	}
	var cut uint64
	if replaying {
		rf := f
		rf.Limit = s.replayBound()
		if replay.After(rf.Since) {
			rf.Since = replay
		}
		var since []flow.Record
		if rf.Until.IsZero() || rf.Since.Before(rf.Until) {
			if since, err = st.Query(r.Context(), rf); err != nil {
				writeError(w, err)
				return
			}
		}
		if len(since) == rf.Limit {
			if cut, err = st.CountBefore(r.Context(), rf, flowstore.KeyOf(&since[0])); err != nil {
				writeError(w, err)
				return
			}
		}
		recent = append(recent, since...)
	}
	if after != nil {
		rf := f
		rf.Limit = 0
		since, n, err := st.Between(r.Context(), rf, after, mark, s.replayBound())
		if err != nil {
			writeError(w, err)
			return
		}
		recent, cut = append(recent, since...), n
	}
	if s.peerBeforeAfter.Load() {
		mark = nil
	}
	s.streamFlows(r.Context(), c, w, sub, recent, cut, nil, mark)
}

// resumeToken is a store position as api.FlowFrame.Resume carries it
// (base64url of the position's JSON), or "" when it would be longer than
// api.MaxPeerResume.
func resumeToken(c *flowstore.Cursor) string {
	b, err := json.Marshal(c)
	if err != nil || base64.RawURLEncoding.EncodedLen(len(b)) > api.MaxPeerResume {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseResume takes up a position resumeToken made.
func parseResume(v string) (*flowstore.Cursor, error) {
	if v == "" || len(v) > api.MaxPeerResume {
		return nil, fmt.Errorf("want a position of 1 to %d bytes, got %d", api.MaxPeerResume, len(v))
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a position this server sent")
	}
	var c flowstore.Cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// peerEvent is what a member's follower reports to its relay.
type peerEvent struct {
	member  string
	rec     *flow.Record
	backlog bool   // rec belongs to the member's backlog
	ready   bool   // the member's backlog is out
	dropped uint64 // the member's stream's Dropped so far
	resume  string // the member's position after the records it sent (api.FlowFrame.Resume)
	forget  bool   // the member takes no position back (an older version)
	err     error  // the stream broke (being reconnected)
}

// followRelay follows every live member of the cluster for one follow stream.
type followRelay struct {
	s      *Server
	ctx    context.Context
	cancel context.CancelFunc
	f      flow.Filter
	began  time.Time // when the follow began
	events chan peerEvent
	wg     sync.WaitGroup
	live   bool // the backlog is out: members followed from now on send their replay alone

	// Owned by the stream's goroutine:
	peers   map[string]context.CancelFunc // followed members
	missing map[string]string             // member → why its records are missing now
	waiting map[string]bool               // members whose backlog is not out yet
	dropped map[string]uint64
	newest  map[string]int64  // the time of the newest record each member sent (ms)
	resume  map[string]string // each member's position after the records it sent
}

func (s *Server) newRelay(ctx context.Context, f flow.Filter, began time.Time) *followRelay {
	ctx, cancel := context.WithCancel(ctx)
	rl := &followRelay{s: s, ctx: ctx, cancel: cancel, f: f, began: began, events: make(chan peerEvent, followBuffer),
		peers: map[string]context.CancelFunc{}, missing: map[string]string{}, waiting: map[string]bool{}, dropped: map[string]uint64{}, newest: map[string]int64{}, resume: map[string]string{}}
	rl.refresh()
	rl.live = true
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
		if !rl.live {
			rl.waiting[m.Name] = true
		}
		rl.missing[m.Name] = "connecting"
		// A member followed before (gone a while) replays what it
		// stored after the records it sent, its Dropped adding up.
		from := rl.began.Add(-followResumeSlack)
		if n, ok := rl.newest[m.Name]; ok {
			from = later(from, time.UnixMilli(n).Add(-followResumeSlack))
		}
		rl.wg.Add(1)
		go func(backlog bool, dropped uint64, resume string) {
			defer rl.wg.Done()
			rl.follow(ctx, m.Name, m.Addr, backlog, from, resume, dropped)
		}(!rl.live, rl.dropped[m.Name], rl.resume[m.Name])
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
// reconnecting (with a growing wait) when the stream breaks. It asks for
// every record the member stored after the position resume (the member's
// api.FlowFrame.Resume), or without one, every record from `from` on
// (and, for the stream's backlog, its newest Limit too); after a break,
// for those stored after the last position the member sent, or, from a
// member that sends none (an older version), for those since the last
// record it passed on, less followResumeSlack. The member's Dropped adds
// up over its streams, from `before`.
func (rl *followRelay) follow(ctx context.Context, name, addr string, backlog bool, from time.Time, resume string, before uint64) {
	c := rl.s.peerClient(addr)
	defer c.Close()
	var newest int64      // the newest record's time, in milliseconds
	var now uint64        // Dropped by this stream
	delivered := !backlog // the member's backlog is out
	legacy := false       // the member knows no replay (an older version)
	noAfter := false      // the member knows no api.PeerAfter (an older version)
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		f := rl.f
		if !backlog {
			f.Limit = 0 // from `from` on only
		}
		if legacy && !backlog {
			// As before replays: the newest Limit since from.
			f.Limit, f.Since = rl.f.Limit, later(f.Since, from)
		}
		q := api.FlowValues(f, 0)
		switch {
		case resume != "" && !noAfter && !backlog:
			q.Set(api.PeerAfter, resume)
		case !legacy:
			q.Set(api.PeerReplay, from.UTC().Format(time.RFC3339Nano))
		}
		first := true
		err := c.FollowPeer(ctx, q, 3*rl.s.cfg.Heartbeat, func(fr api.FlowFrame) error {
			now = fr.Dropped
			ev := peerEvent{member: name, dropped: before + now}
			if fr.Heartbeat && fr.Resume != "" && len(fr.Resume) <= api.MaxPeerResume && !noAfter {
				resume, ev.resume = fr.Resume, fr.Resume
			}
			switch {
			case fr.Record != nil:
				ev.rec, ev.backlog = fr.Record, first && backlog
				newest = max(newest, fr.Record.Time)
			case first:
				first, ev.ready = false, true
				delivered = true
				wait = 200 * time.Millisecond
			case ev.resume == "":
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
		var se *api.StatusError
		if q.Has(api.PeerAfter) && errors.As(err, &se) && se.Code == http.StatusBadRequest && strings.Contains(se.Msg, strconv.Quote(api.PeerAfter)) {
			noAfter, resume = true, "" // asked again at once, by time
			select {
			case rl.events <- peerEvent{member: name, forget: true}:
			case <-ctx.Done():
				return
			}
			continue
		}
		if q.Has(api.PeerReplay) && errors.As(err, &se) && se.Code == http.StatusBadRequest && strings.Contains(se.Msg, strconv.Quote(api.PeerReplay)) {
			legacy = true // asked again at once, without
			continue
		}
		// A stream that broke before its backlog was out asks for it
		// again; it is shown as it comes.
		before, now, backlog = before+now, 0, !delivered
		if newest > 0 {
			from = later(from, time.UnixMilli(newest).Add(-followResumeSlack))
		}
		if v := q.Get(api.PeerAfter); v != "" {
			// The reason is shown in heartbeats: not the position (the
			// request's URL in it), which can be long.
			err = errors.New(strings.ReplaceAll(err.Error(), v, "…"))
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
	if ev.resume != "" {
		rl.resume[ev.member] = ev.resume
	}
	if ev.forget {
		delete(rl.resume, ev.member)
	}
	switch {
	case ev.err != nil:
		rl.missing[ev.member] = ev.err.Error()
		delete(rl.waiting, ev.member)
	case ev.ready:
		delete(rl.missing, ev.member)
		delete(rl.waiting, ev.member)
	case ev.rec != nil:
		delete(rl.missing, ev.member)
		rl.newest[ev.member] = max(rl.newest[ev.member], ev.rec.Time)
	}
	return ev.rec
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
// records and, with a relay, every member's), newest Limit in time order
// with every record since the follow began, a heartbeat, then records as
// they are stored, once each. cut counts records the backlog left out,
// reported in Dropped. With pos (a member's stream to its relay), the
// store's position after the backlog, every heartbeat carries the position
// after the records sent (pos moved past each), and one is sent after
// every followResumeEvery records too.
func (s *Server) streamFlows(ctx context.Context, c *caller, w http.ResponseWriter, sub *flowstore.Subscription, recent []flow.Record, cut uint64, rl *followRelay, pos *flowstore.Cursor) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	seen := flow.NewSeenUIDs(followSeen)
	dropped := func() uint64 {
		if rl == nil {
			return cut + sub.Dropped()
		}
		return cut + sub.Dropped() + rl.droppedTotal()
	}
	send := func(fr api.FlowFrame) bool {
		fr.Dropped = dropped()
		return enc.Encode(fr) == nil && rc.Flush() == nil
	}
	unmarked := 0 // records sent since the last position
	heartbeat := func() bool {
		fr := api.FlowFrame{Heartbeat: true}
		if rl != nil {
			fr.Servers, fr.Missing = rl.status(s.cfg.Name)
		}
		if pos != nil {
			fr.Resume, unmarked = resumeToken(pos), 0
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
		// The newest Limit, and every record since the follow began
		// (members replay those: they are not the backlog's to cut).
		since := flow.Millis(rl.began)
		from := sort.Search(len(uniq), func(i int) bool { return uniq[i].Time >= since })
		uniq = uniq[min(len(uniq)-lim, from):]
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
			if seen.Add(rec.Metadata.UID) && !send(api.FlowFrame{Record: &rec.Record}) {
				return
			}
			if pos != nil {
				pos.Take(rec.Pos)
				if unmarked++; unmarked >= followResumeEvery && !heartbeat() {
					return
				}
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
			// or expires, or its account is removed (a certificate the
			// revocation list does not hold), within a heartbeat.
			if s.credentialEnded(c) || s.accountEnded(ctx, c) || !heartbeat() {
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

// accountEnded says whether the account an administrator's call began
// with is no longer: removed, or its name made again, or not confirmed:
// the account is read with quorum (ctx may allow the answer's reads to be
// stale, and one member's copy may not hold the removal), and a store
// without quorum ends the stream, as it refuses a new one.
func (s *Server) accountEnded(ctx context.Context, c *caller) bool {
	if c.Kind != identity.KindAdmin {
		return false
	}
	var rec adminRecord
	err := getJSON(store.NoStale(ctx), s.st, prefixAdmin+c.Name, &rec)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return true
	case errors.Is(err, store.ErrUnavailable):
		s.log.Warn("stream of an administrator ended: the account cannot be read with quorum", "admin", c.Name, "err", err)
		return true
	}
	return err == nil && sameAccount(c, rec) != nil
}

// limit is how many backlog records a relayed stream sends (0: all).
func (rl *followRelay) limit() int {
	if rl == nil {
		return 0
	}
	return rl.f.Limit
}
