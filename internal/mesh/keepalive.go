package mesh

import (
	"sync/atomic"
	"time"

	"github.com/libp2p/go-yamux/v5"
)

// keepAliveEvery is how long a tunnel may stay silent before its agent asks
// the peer whether it is still there.
const keepAliveEvery = 30 * time.Second

// keepAlive closes sess once its peer stops answering, and returns when
// sess is closed. After each period in which nothing arrived on the tunnel
// (reads, the count of reads of its socket, did not move) it pings the
// peer; a ping not answered within the session's ConnectionWriteTimeout
// closes the session, and with it every stream it carries.
//
// go-yamux's own keep-alive, which this replaces (muxConfig turns it off),
// asks the same, but re-arms its timer, under a lock, for every frame
// received: on a tunnel carrying requests and responses, a timer reset per
// message in each agent (1.8% and 2.8% of the two agents' CPU profiles
// under wrk, bench/mesh/README.md). Here a busy tunnel costs an atomic add
// per read of its socket.
func keepAlive(sess *yamux.Session, reads *atomic.Int64, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	seen := reads.Load()
	for {
		select {
		case <-sess.CloseChan():
			return
		case <-tick.C:
		}
		if n := reads.Load(); n != seen {
			seen = n
			continue
		}
		if _, err := sess.Ping(); err != nil {
			_ = sess.Close()
			<-sess.CloseChan()
			return
		}
		seen = reads.Load() // the answer itself
	}
}
