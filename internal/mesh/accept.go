package mesh

import (
	"errors"
	"net"
	"time"
)

// AcceptRetrying is ln.Accept riding out failures that pass: out of file
// descriptors (EMFILE, ENFILE; a flood of connections that never finish
// their handshake brings it about), a connection aborted before it was
// accepted. It waits, 5 ms doubling to 1 s, and tries again, calling
// failed (when not nil) with each failure. The error it returns is ln's
// closing (net.ErrClosed).
//
// A loop that returned at the first such failure would stop serving the
// port for good while the listener stays open, and the kernel would go on
// queueing connections nobody accepts: one client's flood would end the
// service for everyone.
func AcceptRetrying(ln net.Listener, failed func(error)) (net.Conn, error) {
	var wait time.Duration
	for {
		c, err := ln.Accept()
		if err == nil || errors.Is(err, net.ErrClosed) {
			return c, err
		}
		if failed != nil {
			failed(err)
		}
		wait = min(max(2*wait, 5*time.Millisecond), time.Second)
		time.Sleep(wait)
	}
}
