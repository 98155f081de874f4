package mesh

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"moat/internal/testkit"
)

// keptAlive opens a yamux client with the tunnels' configuration over a
// batchConn on a TCP connection to 127.0.0.1, its keepAlive pinging after
// every 10 ms of silence and waiting 200 ms for an answer, and returns the
// session and the accepted end of the connection.
func keptAlive(t *testing.T) (*yamux.Session, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = peer.Close() })
	bc := &batchConn{Conn: raw}
	cfg := muxConfig()
	cfg.ConnectionWriteTimeout = 200 * time.Millisecond
	sess, err := yamux.Client(bc, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepAlive(sess, &bc.reads, 10*time.Millisecond)
	}()
	t.Cleanup(func() {
		_ = sess.Close()
		<-done
	})
	return sess, peer
}

// A tunnel whose peer has gone silent (its socket open, nothing answered)
// is closed by keepAlive. The tunnels' go-yamux keep-alive is off (it
// re-armed a timer per frame received), so without keepAlive such a
// tunnel would stay open, and its streams with it.
func TestKeepAliveClosesSilentTunnel(t *testing.T) {
	if muxConfig().EnableKeepAlive {
		t.Fatal("go-yamux's keep-alive is on: it re-arms a timer for every frame received")
	}
	sess, _ := keptAlive(t)
	t.Log("the peer reads and answers nothing")
	select {
	case <-sess.CloseChan():
	case <-time.After(testkit.WaitLimit):
		t.Fatal("a tunnel whose peer answers no ping stayed open")
	}
}

// A peer that answers keeps its tunnel, silent as it is otherwise.
func TestKeepAliveSparesAnsweringTunnel(t *testing.T) {
	sess, peer := keptAlive(t)
	reads := &countingReads{Conn: peer}
	srv, err := yamux.Server(reads, muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	t.Log("the peer answers pings and carries no stream")
	testkit.WaitFor(t, "the peer to have answered ten pings", func() bool { return reads.n.Load() >= 10 })
	if sess.IsClosed() {
		t.Fatal("keepAlive closed a tunnel whose peer answers")
	}
}

// countingReads counts the reads of a connection.
type countingReads struct {
	net.Conn
	n atomic.Int64
}

func (c *countingReads) Read(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Read(p)
}
