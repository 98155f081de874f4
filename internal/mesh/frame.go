package mesh

import (
	"net"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"
)

const (
	// yamuxHeaderLen is a yamux frame header's size: version(1) type(1)
	// flags(2) stream(4) length(4).
	yamuxHeaderLen = 12
	// tlsRecord is the most plaintext one TLS record carries.
	tlsRecord = 16 << 10
	// gatherMax is how much a frameConn gathers before the session's send
	// loop writes it, whatever more the session holds: it bounds a
	// tunnel's buffer.
	gatherMax = 256 << 10
	// batchKeep is the most a buffer of frameConn or batchConn keeps
	// between writes; a larger one is let go. A batchConn gathering more
	// (bulk's full frames) takes its buffer from bigBatches, so that a
	// transfer does not allocate one per frame and an idle tunnel keeps
	// none.
	batchKeep = 128 << 10
	// bigBatch is the size of bigBatches' buffers: the records of a full
	// frame behind as much as a frameConn gathers.
	bigBatch = gatherMax + largeBuf + yamuxHeaderLen + ((gatherMax+largeBuf)/tlsRecord+3)*recordOverhead
	// recordOverhead is what TLS 1.3 adds to a record: its header, the
	// content type and AES-GCM's tag.
	recordOverhead = 5 + 1 + 16
	// bigRead is the size of bigReads' buffers: the records of a full
	// frame, and its header.
	bigRead = largeBuf + yamuxHeaderLen + (largeBuf/tlsRecord+2)*recordOverhead
	// minReadAhead is the least a read filling what TLS asked for must
	// have returned to start reading ahead: a TLS record's worth.
	minReadAhead = tlsRecord
	// streamWindow is a stream's yamux window: two full frames (see
	// muxConfig).
	streamWindow = 2 * largeBuf
	// typeWindowUpdate is the yamux frame type of a window update (and of
	// a stream's SYN, ACK, FIN and RST, which carry flags).
	typeWindowUpdate = 1
	// closeFlush bounds how long Close spends sending what was gathered.
	closeFlush = time.Second
)

// frameConn sits between a yamux session and its TLS connection; only the
// session's send loop writes to it, one whole frame (header and body) per
// call.
//
// A large frame (bulk), or a bare window update (what a bulk sender waits
// for), is written at once: its TLS records (a full frame is thirty-two)
// leave in one system call through the batchConn under the TLS
// connection, behind the small frames gathered before it. Small frames
// (requests, responses, a stream's opening and closing) are gathered while
// the session holds more frames for its send loop, and the send loop writes
// the batch itself when it holds none: before it writes a batch it yields
// once to the goroutines already runnable, so that the streams whose apps
// spoke in the same poll of the network queue their frames, which join
// the batch. A batch goes out as few TLS records in one system call instead
// of a record and a system call each; a frame alone waits only for the
// yield, and no goroutine is woken to write it.
type frameConn struct {
	net.Conn            // the TLS connection
	raw      *batchConn // under it

	wmu sync.Mutex // serializes writes to the TLS connection

	// The send loop's alone:
	yielded bool // since the last batch was taken

	mu       sync.Mutex // guards the fields below
	gathered []byte
	spare    []byte
	queued   func() int // how many frames the session holds for its send loop
	err      error      // the first write error; every later Write returns it
	closed   bool
}

// newFrameConn returns a frameConn over tc (TLS over raw). Until follow
// names its session, each small frame is written after one yield.
func newFrameConn(tc net.Conn, raw *batchConn) *frameConn {
	return &frameConn{Conn: tc, raw: raw}
}

// follow gathers small frames while sess holds more for its send loop.
// go-yamux exports no count of them: its send queue, a buffered channel,
// is read by reflection, which tolerates no other type (pinned by
// TestFrameConnFollowsSendQueue).
func (c *frameConn) follow(sess *yamux.Session) {
	q := reflect.ValueOf(sess).Elem().FieldByName("sendCh")
	if q.Kind() != reflect.Chan {
		// Renamed or retyped by an upgrade: small frames go out after
		// one yield each, as before follow, rather than the agent
		// failing (and TestFrameConnFollowsSendQueue fails).
		return
	}
	c.mu.Lock()
	c.queued = q.Len
	c.mu.Unlock()
}

func (c *frameConn) Write(p []byte) (int, error) {
	if len(p) >= tlsRecord || isWindowGrant(p) {
		return c.writeLarge(p)
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	if c.gathered == nil {
		c.gathered = make([]byte, 0, 2*tlsRecord)
	}
	c.gathered = append(c.gathered, p...)
	full, queued := len(c.gathered) >= gatherMax, c.queued
	c.mu.Unlock()
	if !full {
		if queued != nil && queued() > 0 {
			return len(p), nil
		}
		if !c.yielded {
			c.yielded = true
			runtime.Gosched()
			if queued != nil && queued() > 0 {
				return len(p), nil
			}
		}
	}
	c.yielded = false
	c.wmu.Lock()
	defer c.wmu.Unlock()
	batch, err := c.take()
	if err == nil && batch != nil {
		_, err = c.write(nil, batch)
		c.putBack(batch)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// isWindowGrant reports whether frame is a bare window update: a
// receiver granting its sender more room, sent after it read half its
// window. The sender of a bulk transfer waits for it, so it leaves at
// once, not after the yield; a stream's opening and closing frames (flags
// set) are gathered as before.
func isWindowGrant(frame []byte) bool {
	return len(frame) == yamuxHeaderLen && frame[1] == typeWindowUpdate && frame[2] == 0 && frame[3] == 0
}

// writeLarge writes a large frame at once, behind what was gathered before
// it, in one system call: the frame is not copied again.
func (c *frameConn) writeLarge(p []byte) (int, error) {
	c.yielded = false
	c.wmu.Lock()
	defer c.wmu.Unlock()
	before, err := c.take()
	if err != nil {
		return 0, err
	}
	n, err := c.write(before, p)
	c.putBack(before)
	return n, err
}

// take returns what was gathered, for a writer holding wmu, or the
// first write error.
func (c *frameConn) take() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch, err := c.gathered, c.err
	if len(batch) == 0 {
		return nil, err
	}
	c.gathered, c.spare = c.spare, nil
	return batch, err
}

// putBack keeps a written batch's buffer for the next one.
func (c *frameConn) putBack(batch []byte) {
	if batch == nil || cap(batch) > batchKeep {
		return
	}
	c.mu.Lock()
	c.spare = batch[:0]
	c.mu.Unlock()
}

// write sends first and then p through TLS, their records in one system
// call, and returns how much of p was written. wmu is held.
func (c *frameConn) write(first, p []byte) (int, error) {
	c.raw.hold(len(first) + len(p))
	var n int
	_, err := c.Conn.Write(first)
	if err == nil {
		n, err = c.Conn.Write(p)
	}
	if ferr := c.raw.flush(); err == nil {
		err = ferr
	}
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
		// The session learns of it from its reads, too.
		_ = c.Conn.Close()
	}
	return n, err
}

// Close sends what is still gathered (for at most closeFlush) unless a
// write is under way (a stuck peer: the close breaks it) and closes the
// TLS connection.
func (c *frameConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.Conn.Close()
	}
	c.closed = true
	c.mu.Unlock()
	if c.wmu.TryLock() {
		if rest, err := c.take(); err == nil && rest != nil {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
			_, _ = c.write(nil, rest)
		}
		c.wmu.Unlock()
	}
	return c.Conn.Close()
}

// batchConn is the TCP connection under a tunnel's TLS. Between hold and
// flush, what TLS writes is gathered and then sent in one write; at other
// times (the handshake, alerts) writes go straight through.
type batchConn struct {
	net.Conn
	mu      sync.Mutex // guards the fields below
	holding bool
	buf     []byte  // what was gathered since hold
	keep    []byte  // buf's own buffer, while buf is big's
	big     *[]byte // from bigBatches, between hold and flush

	// reads counts Read's calls, for keepAlive: whether anything
	// arrived in a while.
	reads atomic.Int64

	// Read's alone (TLS serializes its reads):
	ahead              *[]byte // from bigReads, while bulk arrives
	aheadPos, aheadEnd int     // what of ahead is still to be read
	aheadErr           error   // what the read that filled ahead returned
}

// bigBatches holds the buffers of batchConns gathering more than
// batchKeep: one per tunnel in bulk at a time, and none once the
// collector has found them unused.
var bigBatches = sync.Pool{New: func() any { b := make([]byte, 0, bigBatch); return &b }}

// bigReads holds the buffers of batchConns reading ahead: one per tunnel
// receiving bulk at a time, and none once the collector has found them
// unused.
var bigReads = sync.Pool{New: func() any { b := make([]byte, bigRead); return &b }}

// Read reads for TLS, which asks for what its record buffer has room for
// (a record and a little more). A read that fills that room is taken as
// bulk arriving: the next ones read up to a full frame's records ahead into
// a buffer of bigReads and hand them out from there, one system call where
// there was one per record. A read ahead that returns no more than TLS asked for
// ends it and lets the buffer go, so a tunnel carrying requests and
// responses, or none, holds no buffer.
func (c *batchConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	if c.ahead == nil {
		n, err := c.Conn.Read(p)
		if n == len(p) && n >= minReadAhead && err == nil {
			c.ahead = bigReads.Get().(*[]byte)
		}
		return n, err
	}
	if c.aheadPos == c.aheadEnd {
		n, err := c.Conn.Read(*c.ahead)
		if n <= len(p) {
			copy(p, (*c.ahead)[:n])
			_ = c.drop()
			return n, err
		}
		c.aheadPos, c.aheadEnd, c.aheadErr = 0, n, err
	}
	n := copy(p, (*c.ahead)[c.aheadPos:c.aheadEnd])
	c.aheadPos += n
	if c.aheadPos == c.aheadEnd && c.aheadErr != nil {
		return n, c.drop()
	}
	return n, nil
}

// drop lets the read-ahead buffer go (all of it was read) and returns the
// error the read that filled it met, if any.
func (c *batchConn) drop() error {
	err := c.aheadErr
	bigReads.Put(c.ahead)
	c.ahead, c.aheadPos, c.aheadEnd, c.aheadErr = nil, 0, 0, nil
	return err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.holding {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// hold gathers what TLS writes from now until flush, with room for the
// records of n bytes of plaintext.
func (c *batchConn) hold(n int) {
	size := n + (n/tlsRecord+2)*recordOverhead
	c.mu.Lock()
	c.holding = true
	switch {
	case size <= cap(c.buf):
	case size <= batchKeep:
		c.buf = make([]byte, 0, min(max(size, 2*cap(c.buf)), batchKeep))
	case size <= bigBatch:
		c.big = bigBatches.Get().(*[]byte)
		c.keep, c.buf = c.buf, (*c.big)[:0]
	default: // larger than any frameConn writes; let go after
		c.buf = make([]byte, 0, size)
	}
	c.mu.Unlock()
}

// flush sends what was gathered since hold.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	var err error
	if len(c.buf) > 0 {
		_, err = c.Conn.Write(c.buf)
	}
	switch {
	case c.big != nil:
		*c.big = c.buf[:0]
		bigBatches.Put(c.big)
		c.big, c.buf, c.keep = nil, c.keep, nil
	case cap(c.buf) > batchKeep:
		c.buf = nil
	default:
		c.buf = c.buf[:0]
	}
	return err
}
