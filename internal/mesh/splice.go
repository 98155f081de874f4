package mesh

import (
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
)

// A connection's copy starts with a small buffer, which holds a TLS
// record's worth; the first read that fills it moves the copy to a large
// one, so bulk transfers take few system calls while request/response
// traffic (most connections) holds 16 KB per direction, not 512. Both leave
// room for a yamux header, so that what one read returns leaves the tunnel
// as one frame of whole TLS records: one record, or thirty-two, written to
// the tunnel's socket in one system call (frame.go). In bulk, every system
// call and every hand-off between the agent's goroutines and between the
// processes sharing the host's cores is paid once per 512 KB: the source
// agent's CPU per byte carried is about a sixth lower than with 256 KB
// frames, and no lower with 1 MB ones, which would hold twice the memory per transfer and
// keep the other streams of a tunnel waiting twice as long behind a frame.
//
// A copy holds a buffer only while it has data to move: it waits for data
// without one (fromSocket, fromStream) and gives it back to its pool once
// what it read is delivered and nothing more is known to be waiting, so
// the buffers in use are those of the transfers busy now, not those of
// every connection open. A copy that moved to large buffers takes a large
// one each time data comes, for as long as it lives.
const (
	smallBuf = tlsRecord - yamuxHeaderLen
	largeBuf = 32*tlsRecord - yamuxHeaderLen
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBuf); return &b }}

	// copyBufs counts the buffers copies hold now, small and large.
	copyBufs [2]atomic.Int64
)

// pipe joins a and b until both directions end, counting the bytes read
// from a into fromA and from b into fromB as they pass. When one side stops
// writing (EOF), the other side's write half is closed and the opposite
// direction keeps flowing (half-close); on an error both sides are closed.
// Both are closed when pipe returns.
func pipe(a, b net.Conn, fromA, fromB *atomic.Int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(a, b, fromB)
	}()
	copyHalf(b, a, fromA)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
}

// copyHalf copies src to dst until EOF or an error, adding what it wrote
// to count as it goes.
func copyHalf(dst, src net.Conn, count *atomic.Int64) {
	c := newCopier(dst, count)
	defer c.release()
	rerr, werr, ok := c.fromSocket(src)
	if !ok {
		rerr, werr = c.fromStream(src)
	}
	switch {
	case werr != nil:
		_ = src.Close()
		_ = dst.Close()
	case errors.Is(rerr, io.EOF):
		closeWrite(dst)
	default:
		_ = src.Close()
		_ = dst.Close()
	}
}

// fromStream copies src to dst with src's own Read. From a tunnel's
// stream (inbound or outbound), whose ledger tells what it holds, the copy
// waits for data with a one-byte read, holding no buffer, then reads the
// rest of that frame into a buffer; it keeps the buffer while the stream
// holds more or another frame is on its way (a transfer that is busy) and
// gives it back once what it read is delivered and nothing is. From
// anything else it holds its buffer throughout.
func (c *copier) fromStream(src net.Conn) (rerr, werr error) {
	ms, metered := src.(*meteredStream)
	for {
		var nr int
		if metered && c.bp == nil {
			if nr, rerr = src.Read(c.one[:]); nr == 0 {
				if rerr != nil {
					return rerr, nil
				}
				continue
			}
			c.take()
			(*c.bp)[0] = c.one[0]
			if rest, _ := ms.pending(); rerr == nil && rest > 0 {
				var n int
				n, rerr = src.Read((*c.bp)[1:])
				nr += n
			}
		} else {
			if c.bp == nil {
				c.take()
			}
			nr, rerr = src.Read(*c.bp)
		}
		if nr > 0 {
			if werr = c.deliver(nr); werr != nil {
				return rerr, werr
			}
		}
		if rerr != nil {
			return rerr, nil
		}
		if metered {
			if rest, more := ms.pending(); rest == 0 && !more {
				c.drop()
			}
		}
	}
}

// copier is one direction of a connection's copy: its buffer while it
// has data to move, and where it writes. An idle copy holds no buffer;
// one that moved to large buffers takes a large one whenever data comes,
// until it ends.
type copier struct {
	dst   net.Conn
	count *atomic.Int64
	large bool         // from the first full read of a small buffer
	bp    *[]byte      // nil while idle
	one   [1]byte      // fromStream's wait
	sock  socketReader // fromSocket's
}

func newCopier(dst net.Conn, count *atomic.Int64) *copier {
	return &copier{dst: dst, count: count}
}

// take takes a buffer for data that is there.
func (c *copier) take() {
	if c.large {
		c.bp = largeBufs.Get().(*[]byte)
		copyBufs[1].Add(1)
		return
	}
	c.bp = smallBufs.Get().(*[]byte)
	copyBufs[0].Add(1)
}

// drop gives the buffer back, if the copy holds one.
func (c *copier) drop() {
	switch {
	case c.bp == nil:
		return
	case len(*c.bp) == largeBuf:
		largeBufs.Put(c.bp)
		copyBufs[1].Add(-1)
	default:
		smallBufs.Put(c.bp)
		copyBufs[0].Add(-1)
	}
	c.bp = nil
}

// release gives the buffer back as the copy ends.
func (c *copier) release() { c.drop() }

// deliver writes the nr bytes read into the buffer to dst. A read that
// filled the small buffer moves the copy to a large one.
func (c *copier) deliver(nr int) error {
	buf := *c.bp
	if nr == len(buf) && !c.large {
		c.large = true
		small := c.bp
		c.take()
		copy(*c.bp, buf[:nr])
		smallBufs.Put(small)
		copyBufs[0].Add(-1)
		buf = *c.bp
	}
	if c.large {
		// Bulk. A read of a tunnel's stream may have queued a window
		// update to its sender; let the session's send loop take
		// it before this goroutine's write, which holds the agent's
		// one thread for as long as the kernel copies the frame
		// into the app's socket (half a millisecond and more) while
		// the sender waits.
		runtime.Gosched()
	}
	nw, err := c.dst.Write(buf[:nr])
	c.count.Add(int64(nw))
	return err
}

// closeWrite ends dst's write half: TCP's shutdown, or a yamux stream's
// FIN (it keeps reading).
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
