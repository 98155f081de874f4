package mesh

import (
	"errors"
	"io"
	"net"
	"sync"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// pipe joins a and b until both directions end and returns the bytes read
// from a and from b. When one side stops writing (EOF), the other side's
// write half is closed and the opposite direction keeps flowing (half-close);
// on an error both sides are closed. Both are closed when pipe returns.
func pipe(a, b net.Conn) (fromA, fromB int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fromB = copyHalf(a, b)
	}()
	fromA = copyHalf(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return fromA, fromB
}

func copyHalf(dst, src net.Conn) int64 {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				_ = src.Close()
				_ = dst.Close()
				return n
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				closeWrite(dst)
			} else {
				_ = src.Close()
				_ = dst.Close()
			}
			return n
		}
	}
}

// closeWrite ends dst's write half: TCP's shutdown, or a yamux stream's
// Close (which sends FIN and keeps reading).
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
