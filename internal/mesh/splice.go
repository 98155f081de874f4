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
const (
	smallBuf = tlsRecord - yamuxHeaderLen
	largeBuf = 32*tlsRecord - yamuxHeaderLen
)

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBuf); return &b }}
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
	pool := &smallBufs
	bp := pool.Get().(*[]byte)
	defer func() { pool.Put(bp) }()
	buf := *bp
	for {
		nr, rerr := src.Read(buf)
		if nr == len(buf) && pool == &smallBufs {
			large := largeBufs.Get().(*[]byte)
			copy(*large, buf[:nr])
			pool.Put(bp)
			pool, bp, buf = &largeBufs, large, *large
		}
		if nr > 0 && pool == &largeBufs {
			// Bulk. A read of a tunnel's stream may have queued a window
			// update to its sender; let the session's send loop take
			// it before this goroutine's write, which holds the agent's
			// one thread for as long as the kernel copies the frame
			// into the app's socket (half a millisecond and more) while
			// the sender waits.
			runtime.Gosched()
		}
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			count.Add(int64(nw))
			if werr != nil {
				_ = src.Close()
				_ = dst.Close()
				return
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				closeWrite(dst)
			} else {
				_ = src.Close()
				_ = dst.Close()
			}
			return
		}
	}
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
