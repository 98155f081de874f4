package mesh

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"golang.org/x/sys/unix"

	"moat/internal/testkit"
)

// tcpPair is a connected pair of loopback TCP connections.
func tcpPair(t *testing.T) (src *net.TCPConn, peer *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	p, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { s.Close(); p.Close() })
	return s.(*net.TCPConn), p.(*net.TCPConn)
}

// streamPair is a yamux stream and the stream at its other end.
func streamPair(t *testing.T) (dst, far net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	client, err := yamux.Client(a, muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := yamux.Server(b, muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		s, _ := server.AcceptStream()
		accepted <- s
	}()
	st, err := client.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("x")); err != nil { // the SYN
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept stream failed")
	}
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return st, s
}

type copyResult struct {
	rerr, werr error
	ok         bool
}

func startCopy(c *copier, src net.Conn) chan copyResult {
	done := make(chan copyResult, 1)
	go func() {
		rerr, werr, ok := c.fromSocket(src)
		done <- copyResult{rerr, werr, ok}
	}()
	return done
}

func waitCopy(t *testing.T, done chan copyResult) copyResult {
	t.Helper()
	var r copyResult
	testkit.WaitFor(t, "the copy to end", func() bool {
		select {
		case r = <-done:
			return true
		default:
			return false
		}
	})
	if !r.ok {
		t.Fatal("fromSocket did not copy a TCP connection into a stream")
	}
	return r
}

// tcpState is the kernel's state of c's connection.
func tcpState(t *testing.T, c *net.TCPConn) uint8 {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
		t.Fatal(err, ierr)
	}
	return info.State
}

// pollOnce has the runtime's poller take what the kernel has announced
// for every socket so far: a goroutine waits on a socket of its own, which
// only the poller can wake, and the poller takes announcements in the
// order they came.
func pollOnce(t *testing.T) {
	r, w := tcpPair(t)
	got := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		got <- err
	}()
	testkit.WaitFor(t, "the reader to wait on the poller", func() bool {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		return strings.Contains(b.String(), "mesh.pollOnce.func1")
	})
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// Request/response traffic: each message is one read; reads that find the
// socket empty are rare (Go's own Read makes one such read per message).
func TestCopyFromSocketReadsEachMessageOnce(t *testing.T) {
	src, peer := tcpPair(t)
	dst, far := streamPair(t)
	var count atomic.Int64
	c := newCopier(dst, &count)
	defer c.release()
	c.sock.probe = time.Hour
	done := startCopy(c, src)
	const n = 100
	msg := bytes.Repeat([]byte("m"), 700)
	got := make([]byte, len(msg))
	for i := 0; i < n; i++ {
		if _, err := peer.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(far, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	_ = peer.Close()
	r := waitCopy(t, done)
	if !errors.Is(r.rerr, io.EOF) || r.werr != nil {
		t.Fatalf("copy ended with %v, %v; want EOF", r.rerr, r.werr)
	}
	// The poller may wake a reader for nothing now and then (an
	// announcement taken after the read it was for), so a few empty reads
	// are the host's; one per message is the cost this copy removes.
	if c.sock.empty > n/10 || c.sock.reads != n+1+c.sock.empty {
		t.Fatalf("%d reads for %d messages and the EOF, %d of them finding nothing; want %d and at most %d", c.sock.reads, n, c.sock.empty, n+1, n/10)
	}
	if count.Load() != n*int64(len(msg)) {
		t.Fatalf("counted %d bytes, want %d", count.Load(), n*len(msg))
	}
}

// Data and the FIN behind it, announced together before the copy reads:
// the read that takes the data says more is to come, and the copy ends.
func TestCopyFromSocketSeesFINBehindData(t *testing.T) {
	src, peer := tcpPair(t)
	dst, far := streamPair(t)
	var count atomic.Int64
	c := newCopier(dst, &count)
	defer c.release()
	c.sock.probe = time.Hour
	if _, err := peer.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	_ = peer.Close()
	testkit.WaitFor(t, "the FIN to arrive", func() bool { return tcpState(t, src) == unix.BPF_TCP_CLOSE_WAIT })
	pollOnce(t)
	done := startCopy(c, src)
	got := make([]byte, len("last words"))
	if _, err := io.ReadFull(far, got); err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v", got, err)
	}
	if r := waitCopy(t, done); !errors.Is(r.rerr, io.EOF) {
		t.Fatalf("copy ended with %v, want EOF", r.rerr)
	}
}

// Data and a reset behind it, announced together before the copy reads:
// nothing tells the read that took the data of the reset, and the wait
// after it is bounded, so the copy still learns of it.
func TestCopyFromSocketSeesResetBehindData(t *testing.T) {
	src, peer := tcpPair(t)
	dst, far := streamPair(t)
	var count atomic.Int64
	c := newCopier(dst, &count)
	defer c.release()
	c.sock.probe = 10 * time.Millisecond
	if _, err := peer.Write([]byte("then reset")); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetLinger(0)
	_ = peer.Close()
	testkit.WaitFor(t, "the reset to arrive", func() bool { return tcpState(t, src) == unix.BPF_TCP_CLOSE })
	pollOnce(t)
	done := startCopy(c, src)
	got := make([]byte, len("then reset"))
	if _, err := io.ReadFull(far, got); err != nil || string(got) != "then reset" {
		t.Fatalf("read %q, %v", got, err)
	}
	r := waitCopy(t, done)
	if r.rerr == nil || errors.Is(r.rerr, io.EOF) {
		t.Fatalf("copy ended with %v, want the reset", r.rerr)
	}
}

// An app's upload waits for window (the destination's app reads nothing)
// inside fromSocket, holding the app's socket: stopping the agent closes
// the stream before the socket, so it does not wait for the destination.
func TestCloseWhileUploadWaitsForWindow(t *testing.T) {
	f := newFixture(t)
	hold := make(chan struct{})
	defer close(hold)
	app := startApp(t, func(net.Conn) { <-hold })
	f.newAgent(t, "node-b", []Service{{Name: "api", Port: 8080, AppAddr: app}})
	a := f.newAgent(t, "node-a", []Service{{Name: "frontend", Port: 3000, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}}})
	c, err := net.Dial("tcp", a.local(t, "frontend", "api"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	testkit.WaitFor(t, "the upload to wait for window inside fromSocket", func() bool {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		for _, g := range strings.Split(b.String(), "\n\n") {
			if strings.Contains(g, "yamux/v5.(*Stream).write") && strings.Contains(g, "(*copier).fromSocket") {
				return true
			}
		}
		return false
	})
	closed := make(chan struct{})
	go func() {
		_ = a.m.Close()
		close(closed)
	}()
	testkit.WaitFor(t, "Close to return", func() bool {
		select {
		case <-closed:
			return true
		default:
			return false
		}
	})
}
