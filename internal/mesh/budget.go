package mesh

import (
	"encoding/binary"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/libp2p/go-yamux/v5"
)

// The stream buffer: what the node's inbound streams hold of their
// sources' bytes, received and not yet delivered to their apps, all
// sources together.
//
// A stream's window lets its source send a full window (streamWindow)
// before the destination has read any of it, which is what keeps a bulk
// transfer moving; go-yamux keeps what arrives in the stream's receive
// buffer until the copy to the app reads it. An app that does not read
// (or a connection to it still being made) leaves each of its streams'
// windows full, and a caller that an intention allows may open as many
// streams as it likes: without a bound, each pins a window of the agent's
// memory. go-yamux's MemoryManager hook does not bound it here: it is
// asked for a stream's first 256 KiB and for window growth past the
// initial window, never for the window every stream of this mesh starts
// with, and a refused reservation for an incoming stream ends the
// session's receive loop, taking down the tunnel and every other stream
// on it.
//
// So the destination reads each inbound tunnel's frame headers as they
// arrive, before the session handles them (meteredConn), and charges
// each data frame to its stream: the bytes go-yamux allocates for it (a
// pooled buffer of the next power of two) and frameOverhead for the
// buffer's slot, so that a source sending many tiny frames pays for the
// memory they take, not just for their bytes. A stream's charge is given
// back as its copy reads the frames out of go-yamux, and what a read
// returned stays charged until the copy asks for more (it has then
// written it to the app). Charges are summed per source (the peer's
// verified identity and address: the tunnels of one source count
// together, and honest replicas of the same service elsewhere are other
// sources) and in all. A charge that would take the sum past the budget
// first sheds streams of the source that holds the most, newest first,
// down to seven eighths of the budget, as Envoy's overload manager and
// HTTP/2 servers' connection budgets shed the heaviest user rather than
// whoever asks next: a source holding no more than an equal share of the
// budget among those that hold any is never the one shed. A shed stream
// is reset (its source's writes fail at once), its charge given back
// when it is chosen; an admitted one is recorded as cut, reason
// "overloaded".
type streamBudget struct {
	limit, low int64

	mu      sync.Mutex // guards the fields below and every bufEntry's
	total   int64
	peak    int64
	seq     uint64
	sources map[bufSourceKey]*bufSource

	// shedOne is told of each stream shed, outside mu (the Mesh counts
	// and logs it).
	shedOne func(src bufSourceKey)
}

// DefaultStreamBuffer is Config.StreamBuffer's default: sixty-four
// stalled full windows, or as many slow bulk transfers at once.
const DefaultStreamBuffer = 64 << 20

// streamShare is how much of the stream buffer stands for each stream a
// caller may hold open on the node (callerStreamsOf).
const streamShare = 4 << 10

// callerStreamsOf is how many streams one caller (verified identity and
// address) may hold open on a node whose stream buffer is buffer: one
// for each streamShare of it, 16,384 for the default buffer. An idle
// stream holds no copy buffer and none of the stream buffer, but its two
// copies' goroutines, its go-yamux stream and its app connection's
// descriptor (SECURITY.md says how much): without this bound a caller
// that an intention allows could hold as many as the agent has
// descriptors.
func callerStreamsOf(buffer int64) int { return int(buffer / streamShare) }

// MinStreamBuffer is the least Config.StreamBuffer may be: four streams'
// full windows.
const MinStreamBuffer = 4 << 20

// frameOverhead is what go-yamux holds for a received frame beyond its
// buffer: the slot in the stream's list of buffers (a slice header, in a
// list that grows by doubling) and the allocator's rounding of a tiny
// buffer.
const frameOverhead = 64

// frameCost is what a data frame of n bytes (one at least) holds in its
// stream's receive buffer until the stream reads it all: go-buffer-pool
// allocates the next power of two.
func frameCost(n uint32) int64 {
	return int64(1)<<bits.Len32(n-1) + frameOverhead
}

// bufSourceKey names a source of streams.
type bufSourceKey struct {
	peer string // SPIFFE ID
	addr netip.Addr
}

// unused reports whether nothing of s is left: no tunnel, no stream.
func (s *bufSource) unused() bool {
	return s.tunnels == 0 && len(s.entries) == 0 && s.streams == 0
}

type bufSource struct {
	key     bufSourceKey
	held    int64
	entries map[*bufEntry]struct{}
	tunnels int // live tunnels counting here
	streams int // streams taken (attached) and not yet closed
}

// bufEntry is one inbound stream's account.
type bufEntry struct {
	src     *bufSource
	seq     uint64   // order of opening, node-wide
	frames  []uint32 // sizes of the data frames go-yamux holds, oldest first
	head    int      // frames[head:] are held
	read    uint32   // of frames[head], what was read
	queued  int64    // cost of frames[head:]
	copied  int64    // returned by the last read, not yet written
	shed    func()   // resets the stream; nil until accepted
	dead    bool     // closed or shed: charges nothing more
	wasShed bool     // shed (not closed)
	taken   bool     // counted in src.streams
}

func (e *bufEntry) held() int64 { return e.queued + e.copied }

func newStreamBudget(limit int64, shedOne func(bufSourceKey)) *streamBudget {
	return &streamBudget{limit: limit, low: limit - limit/8, sources: map[bufSourceKey]*bufSource{}, shedOne: shedOne}
}

// tunnel returns the ledger of one inbound tunnel from key.
func (b *streamBudget) tunnel(key bufSourceKey) *tunnelLedger {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sources[key]
	if s == nil {
		s = &bufSource{key: key, entries: map[*bufEntry]struct{}{}}
		b.sources[key] = s
	}
	s.tunnels++
	return &tunnelLedger{b: b, src: s, streams: map[uint32]*bufEntry{}}
}

// held is what the node's streams hold now, and the most they held.
func (b *streamBudget) held() (now, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total, b.peak
}

// heldBy is what the streams of the source key names hold now.
func (b *streamBudget) heldBy(key bufSourceKey) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.sources[key]; s != nil {
		return s.held
	}
	return 0
}

// chargeLocked adds cost to e's account (to its queued frames, or with
// inCopy to what its copy holds), first shedding what the budget needs: it
// returns the streams shed, to reset outside b.mu. When e is among them,
// nothing is charged.
func (b *streamBudget) chargeLocked(e *bufEntry, cost int64, inCopy bool) (shed []*bufEntry) {
	for b.total+cost > b.limit {
		victim := b.victimLocked()
		if victim == nil {
			break
		}
		before := len(shed)
		for b.total+cost > b.low && victim.held > 0 {
			v := newestHolding(victim)
			if v == nil {
				break
			}
			b.dropLocked(v)
			v.wasShed = true
			shed = append(shed, v)
		}
		if e.dead {
			return shed
		}
		if len(shed) == before {
			break
		}
	}
	if inCopy {
		e.copied += cost
	} else {
		e.queued += cost
	}
	e.src.held += cost
	b.total += cost
	b.peak = max(b.peak, b.total)
	return shed
}

// victimLocked is the source holding the most.
func (b *streamBudget) victimLocked() *bufSource {
	var v *bufSource
	for _, s := range b.sources {
		if s.held > 0 && (v == nil || s.held > v.held) {
			v = s
		}
	}
	return v
}

// newestHolding is s's newest stream holding bytes (s holds some).
func newestHolding(s *bufSource) *bufEntry {
	var v *bufEntry
	for e := range s.entries {
		if e.held() > 0 && (v == nil || e.seq > v.seq) {
			v = e
		}
	}
	return v
}

// dropLocked gives e's charge back and closes its account.
func (b *streamBudget) dropLocked(e *bufEntry) {
	if e.dead {
		return
	}
	h := e.held()
	e.src.held -= h
	b.total -= h
	e.queued, e.copied, e.frames, e.head, e.dead = 0, 0, nil, 0, true
	delete(e.src.entries, e)
}

// shedding is a stream chosen to be shed: how, and whose.
type shedding struct {
	reset func() // nil for a stream not taken yet: attach resets it
	src   bufSourceKey
}

// sheddingLocked lists how to shed the streams chosen.
func sheddingLocked(shed []*bufEntry) []shedding {
	var todo []shedding
	for _, e := range shed {
		todo = append(todo, shedding{reset: e.shed, src: e.src.key})
	}
	return todo
}

// runShed resets the streams chosen, each on its own goroutine: a reset
// queues a frame on its tunnel, whose send loop a peer that does not
// read may hold up, and the charge that chose them may have been made by
// another tunnel's receive loop.
func (b *streamBudget) runShed(todo []shedding) {
	for _, s := range todo {
		if s.reset != nil {
			go s.reset()
		}
		if b.shedOne != nil {
			b.shedOne(s.src)
		}
	}
}

// tunnelLedger is one inbound tunnel's part of the budget: its streams'
// accounts by stream ID.
type tunnelLedger struct {
	b       *streamBudget
	src     *bufSource
	streams map[uint32]*bufEntry // guarded by b.mu
	closed  bool
}

// opened starts the account of a stream the peer opens.
func (t *tunnelLedger) opened(id uint32) {
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.closed || t.streams[id] != nil {
		return
	}
	b.seq++
	e := &bufEntry{src: t.src, seq: b.seq}
	t.streams[id] = e
	t.src.entries[e] = struct{}{}
}

// received charges a data frame of n bytes to stream id.
func (t *tunnelLedger) received(id uint32, n uint32) {
	b := t.b
	b.mu.Lock()
	e := t.streams[id]
	if e == nil || e.dead {
		b.mu.Unlock()
		return
	}
	todo := sheddingLocked(b.chargeLocked(e, frameCost(n), false))
	if !e.dead {
		e.frames = append(e.frames, n)
	}
	b.mu.Unlock()
	b.runShed(todo)
}

// forget closes the account of a stream the session dropped by itself
// (a reset it sent, its accept backlog full) before the mesh took it.
func (t *tunnelLedger) forget(id uint32) {
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := t.streams[id]; e != nil && e.shed == nil {
		b.dropLocked(e)
		delete(t.streams, id)
	}
}

// close ends the tunnel's part: the accounts of streams the mesh never
// took are closed; those it took close with them.
func (t *tunnelLedger) close() {
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	for id, e := range t.streams {
		if e.shed == nil {
			b.dropLocked(e)
		}
		delete(t.streams, id)
	}
	if t.src.tunnels--; t.src.unused() {
		delete(b.sources, t.src.key)
	}
}

// attach wraps a stream the session handed over, whose account shed
// resets; it returns nil, having reset the stream, when the stream was
// shed before it was taken.
func (t *tunnelLedger) attach(st *yamux.Stream) *meteredStream {
	ms := &meteredStream{Stream: st, t: t}
	b := t.b
	b.mu.Lock()
	e := t.streams[st.StreamID()]
	if e == nil {
		// Not seen opening: the session is closing (its ledger closed,
		// the stream charged nothing), or the stream was reset.
		b.seq++
		e = &bufEntry{src: t.src, seq: b.seq, dead: true}
	}
	ms.e = e
	dead := e.wasShed
	if !dead {
		e.taken = true
		e.src.streams++
	}
	e.shed = func() { _ = ms.Reset() }
	b.mu.Unlock()
	if dead {
		_ = st.Reset()
		return nil
	}
	return ms
}

// meteredStream is an inbound stream whose reads give its charge back.
type meteredStream struct {
	*yamux.Stream
	t *tunnelLedger
	e *bufEntry
}

func (s *meteredStream) Read(p []byte) (int, error) {
	b := s.t.b
	b.mu.Lock()
	if e := s.e; !e.dead && e.copied > 0 {
		e.src.held -= e.copied
		b.total -= e.copied
		e.copied = 0
	}
	b.mu.Unlock()
	n, err := s.Stream.Read(p)
	if n > 0 {
		b.mu.Lock()
		todo := s.consumedLocked(uint32(n))
		b.mu.Unlock()
		b.runShed(todo)
	}
	return n, err
}

// pending is what the stream holds for its copy: rest, what a read
// returns without waiting (the rest of the frame the last read took part
// of: go-yamux holds a frame whole from the moment any of it can be read,
// and a read takes from one frame), and more, whether a later frame is on
// its way (its header read from the tunnel, its body arriving, or here
// already).
func (s *meteredStream) pending() (rest int, more bool) {
	b := s.t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	e := s.e
	if e.dead || e.head >= len(e.frames) {
		return 0, false
	}
	if e.read > 0 {
		rest = int(e.frames[e.head] - e.read)
	}
	return rest, len(e.frames)-e.head > 1 || e.read == 0
}

// consumedLocked moves n bytes read from the frames held to the copy. A
// frame read in part is still held whole, besides what the copy holds of
// it, so this too may shed.
func (s *meteredStream) consumedLocked(n uint32) []shedding {
	e := s.e
	if e.dead {
		return nil
	}
	read := n
	for n > 0 && e.head < len(e.frames) {
		left := e.frames[e.head] - e.read
		if n < left {
			e.read += n
			break
		}
		n -= left
		c := frameCost(e.frames[e.head])
		e.queued -= c
		e.src.held -= c
		s.t.b.total -= c
		e.head++
		e.read = 0
	}
	if e.head == len(e.frames) {
		e.frames, e.head = e.frames[:0], 0
	} else if e.head > len(e.frames)/2 && e.head >= 64 {
		e.frames = slices.Delete(e.frames, 0, e.head)
		e.head = 0
	}
	return sheddingLocked(s.t.b.chargeLocked(e, int64(read), true))
}

// Close closes the stream and its account: the session drops what
// arrives for it from now on.
func (s *meteredStream) Close() error {
	err := s.Stream.Close()
	s.release()
	return err
}

// Reset resets the stream and closes its account.
func (s *meteredStream) Reset() error {
	err := s.Stream.Reset()
	s.release()
	return err
}

func (s *meteredStream) release() {
	b := s.t.b
	b.mu.Lock()
	b.dropLocked(s.e)
	if s.e.taken {
		s.e.taken = false
		s.e.src.streams--
	}
	if id := s.StreamID(); s.t.streams[id] == s.e {
		delete(s.t.streams, id)
	}
	if src := s.e.src; src.unused() && b.sources[src.key] == src {
		delete(b.sources, src.key)
	}
	b.mu.Unlock()
}

// callerStreams is how many streams s's source has open on this node,
// s among them: taken from their tunnels and not yet closed.
func (s *meteredStream) callerStreams() int {
	b := s.t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return s.e.src.streams
}

// setShed has shed (an admitted connection's cut) reset the stream from
// now on; when the stream was shed already, it runs at once.
func (s *meteredStream) setShed(shed func()) {
	b := s.t.b
	b.mu.Lock()
	was := s.e.wasShed
	s.e.shed = shed
	b.mu.Unlock()
	if was {
		shed()
	}
}

// errShed says why a stream was shed for the stream buffer.
const errShed = "the node's stream buffer was full and this connection's source held the most of it"

// wasShed reports whether c is a stream shed for the stream buffer.
func wasShed(c net.Conn) bool {
	s, ok := c.(*meteredStream)
	if !ok {
		return false
	}
	s.t.b.mu.Lock()
	defer s.t.b.mu.Unlock()
	return s.e.wasShed
}

// isTunnelStream reports whether c is a stream of a tunnel.
func isTunnelStream(c net.Conn) bool {
	switch c.(type) {
	case *yamux.Stream, *meteredStream:
		return true
	}
	return false
}

// meteredConn is an inbound tunnel's connection as its session sees it:
// it reads the frame headers as they pass to the session, charging data
// frames to their streams, and watches the resets the session sends.
type meteredConn struct {
	*frameConn
	t *tunnelLedger

	// Read's alone (the session's receive loop):
	hdr  [yamuxHeaderLen]byte
	have int    // of hdr
	skip uint32 // of the current frame's body, still to pass
}

// yamux frame types and flags (go-yamux's const.go).
const (
	typeData = 0
	flagSYN  = 1
	flagRST  = 8
)

func (c *meteredConn) Read(p []byte) (int, error) {
	n, err := c.frameConn.Read(p)
	c.scan(p[:n])
	return n, err
}

// scan follows the frames in b, the next bytes the session reads.
func (c *meteredConn) scan(b []byte) {
	for len(b) > 0 {
		if c.skip > 0 {
			k := uint32(min(len(b), int(min(c.skip, 1<<30))))
			c.skip -= k
			b = b[k:]
			continue
		}
		k := copy(c.hdr[c.have:], b)
		c.have += k
		b = b[k:]
		if c.have < yamuxHeaderLen {
			return
		}
		c.have = 0
		typ, flags := c.hdr[1], binary.BigEndian.Uint16(c.hdr[2:4])
		id, length := binary.BigEndian.Uint32(c.hdr[4:8]), binary.BigEndian.Uint32(c.hdr[8:12])
		if typ != typeData && typ != typeWindowUpdate {
			continue // ping, go away: the length is no body's
		}
		if flags&flagSYN != 0 {
			c.t.opened(id)
		}
		if typ == typeData {
			c.skip = length
			if length > 0 {
				c.t.received(id, length)
			}
		}
	}
}

// Write passes a frame on (the session's send loop writes one a call),
// noting a reset the session sends for a stream it never handed over.
func (c *meteredConn) Write(p []byte) (int, error) {
	if len(p) == yamuxHeaderLen && p[1] == typeWindowUpdate && binary.BigEndian.Uint16(p[2:4])&flagRST != 0 {
		c.t.forget(binary.BigEndian.Uint32(p[4:8]))
	}
	return c.frameConn.Write(p)
}
