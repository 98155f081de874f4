package mesh

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// idleMessage is larger than a small copy buffer: each copy that carries
// it in one read moves to a large buffer.
const idleMessage = 4 * smallBuf

// openEchoed opens a stream to db on sess, as a caller that an intention
// allows, sends one idleMessage and reads its echo.
func openEchoed(t testing.TB, sess *yamux.Session, i int) net.Conn {
	t.Helper()
	st, err := sess.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = st.SetDeadline(time.Now().Add(testkit.WaitLimit))
	var id [connIDLen]byte
	binary.BigEndian.PutUint64(id[:], uint64(i)+1)
	hdr, err := AppendRequest(nil, Request{Service: "db", Port: 5432, ConnID: fmt.Sprintf("%x", id)}, headerV2)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte{byte(i)}, idleMessage)
	if _, err := st.Write(append(hdr, msg...)); err != nil {
		t.Fatalf("stream %d: %v", i, err)
	}
	if resp, err := ReadResponse(st, headerV2); err != nil || !resp.Allowed() {
		t.Fatalf("stream %d: %+v, %v", i, resp, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("stream %d: echo: %v", i, err)
	}
	_ = st.SetDeadline(time.Time{})
	return st
}

// waitNoCopyBuffers waits until no copy holds a buffer.
func waitNoCopyBuffers(t testing.TB, what string) {
	t.Helper()
	testkit.WaitFor(t, what, func() bool { return copyBufs[0].Load() == 0 && copyBufs[1].Load() == 0 })
}

// TestIdleStreamsHoldNoCopyBuffers: a caller that an intention allows
// opens stream after stream, sends one message larger than a small copy
// buffer on each and reads it back, then leaves them all open and idle.
// The destination's copies, both directions of every stream, hold no
// buffer once the message is delivered (each held half a megabyte, for
// as long as its stream lived); the streams still carry a request and its
// answer, and a bulk transfer through the same node moves meanwhile.
func TestIdleStreamsHoldNoCopyBuffers(t *testing.T) {
	p := bufferPair(t)
	gateway, _ := p.a.ids.Certificate("gateway")
	sess := dialTunnel(t, p.b.m.Addr().String(), gateway, "db")

	const streams = 64
	open := make([]net.Conn, streams)
	for i := range open {
		open[i] = openEchoed(t, sess, i)
	}
	waitNoCopyBuffers(t, "node-b's copies of idle streams to give their buffers back")

	if err := bulk(p.a.local(t, "gateway", "db"), 8<<20); err != nil {
		t.Fatalf("bulk beside the idle streams: %v", err)
	}
	for i, st := range open {
		_ = st.SetDeadline(time.Now().Add(testkit.WaitLimit))
		msg := []byte(fmt.Sprintf("ping %d", i))
		if _, err := st.Write(msg); err != nil {
			t.Fatalf("stream %d, after idling: %v", i, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(st, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("stream %d, after idling: read %q, %v", i, got, err)
		}
	}
	waitNoCopyBuffers(t, "the copies to give their buffers back again")
	for _, st := range open {
		_ = st.Close()
	}
}

// BenchmarkIdleStreamMemory measures what an idle stream holds in a
// process running the destination agent, the caller's end of the tunnel
// and the app: heap and goroutine stacks after a collection, per stream,
// with 1,000 streams open that each carried one message larger than a
// small copy buffer. Of the stacks, the agent's are two copies' per
// stream; the app runs one goroutine per connection.
func BenchmarkIdleStreamMemory(b *testing.B) {
	f := newFixture(b)
	app := startApp(b, echo)
	pol := func(c *Config) { c.Policy = mustPolicy(b, bufferPolicy) }
	node := f.newAgent(b, "node-b", []Service{{Name: "db", Port: 5432, AppAddr: app}}, pol)
	gateway := f.issue(b, "gateway", time.Hour)
	const streams = 1000
	var heap, stacks, goroutines float64
	for b.Loop() {
		sess := dialTunnel(b, node.m.Addr().String(), gateway, "db")
		before, g0 := memNow()
		open := make([]net.Conn, streams)
		for i := range open {
			open[i] = openEchoed(b, sess, i)
		}
		waitNoCopyBuffers(b, "the copies to give their buffers back")
		after, g1 := memNow()
		heap += float64(after.HeapInuse) - float64(before.HeapInuse)
		stacks += float64(after.StackInuse) - float64(before.StackInuse)
		goroutines += float64(g1 - g0)
		for _, st := range open {
			_ = st.Close()
		}
		_ = sess.Close()
	}
	n := float64(b.N) * streams
	b.ReportMetric(heap/n, "heap-B/stream")
	b.ReportMetric(stacks/n, "stack-B/stream")
	b.ReportMetric(goroutines/n, "goroutines/stream")
}

// memNow is the memory in use after a collection, and the goroutines.
func memNow() (runtime.MemStats, int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms, runtime.NumGoroutine()
}

// TestIdleConnectionsHoldNoCopyBuffers: the same through the source's
// agent, whose copies carry an app's connections into streams and the
// destination's answers back: no copy of either agent holds a buffer
// once each connection's message is delivered and it idles.
func TestIdleConnectionsHoldNoCopyBuffers(t *testing.T) {
	p := bufferPair(t)
	addr := p.a.local(t, "gateway", "db")
	const conns = 32
	open := make([]net.Conn, conns)
	for i := range open {
		c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		msg := bytes.Repeat([]byte{byte(i)}, idleMessage)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("connection %d: echo: %v", i, err)
		}
		open[i] = c
	}
	waitNoCopyBuffers(t, "both agents' copies of idle connections to give their buffers back")
	for i, c := range open {
		msg := []byte(fmt.Sprintf("ping %d", i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("connection %d, after idling: read %q, %v", i, got, err)
		}
	}
	waitNoCopyBuffers(t, "the copies to give their buffers back again")
}

// TestCallerStreamsAreBounded: a caller that an intention allows holds
// as many streams open as node-b lets one caller hold; its next stream is
// refused, overloaded, and counted, while another caller is served and the
// first gets a stream again once one of its own closes.
func TestCallerStreamsAreBounded(t *testing.T) {
	f := newFixture(t)
	app := startApp(t, echo)
	pol := func(c *Config) { c.Policy = mustPolicy(t, bufferPolicy) }
	const limit = 8
	b := f.newAgent(t, "node-b", []Service{
		{Name: "db", Port: 5432, AppAddr: app},
		{Name: "api", Port: 8080, AppAddr: app},
	}, pol, func(c *Config) { c.callerStreams = limit })
	gateway, frontend := f.issue(t, "gateway", time.Hour), f.issue(t, "frontend", time.Hour)
	sess := dialTunnel(t, b.m.Addr().String(), gateway, "db")
	open := make([]net.Conn, limit)
	for i := range open {
		open[i] = openEchoed(t, sess, i)
	}
	refused := func(sess *yamux.Session, svc string, port int) (Response, error) {
		st, err := sess.Open(context.Background())
		if err != nil {
			return Response{}, err
		}
		defer st.Close()
		_ = st.SetDeadline(time.Now().Add(testkit.WaitLimit))
		hdr, err := AppendRequest(nil, Request{Service: svc, Port: port, ConnID: "00000000000000000000000000000099"[:2*connIDLen]}, headerV2)
		if err != nil {
			return Response{}, err
		}
		if _, err := st.Write(hdr); err != nil {
			return Response{}, err
		}
		return ReadResponse(st, headerV2)
	}
	resp, err := refused(sess, "db", 5432)
	if err != nil || resp.Allowed() || resp.Code != flow.ReasonOverloaded {
		t.Fatalf("a stream past %d from one caller: %+v, %v; want refused, %s", limit, resp, err, flow.ReasonOverloaded)
	}
	if n := b.m.Stats().CallerStreamsShed; n != 1 {
		t.Fatalf("CallerStreamsShed = %d, want 1", n)
	}
	b.flows.waitFor(t, "the refusal's record", func(r flow.Record) bool {
		return r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonOverloaded && r.Verdict() == flow.VerdictDeny && r.SrcEndpoint.SvcName == "gateway"
	})
	other := dialTunnel(t, b.m.Addr().String(), frontend, "api")
	if resp, err := refused(other, "api", 8080); err != nil || !resp.Allowed() {
		t.Fatalf("another caller: %+v, %v; want admitted", resp, err)
	}
	_ = open[0].Close()
	testkit.WaitFor(t, "a stream of the first caller to be admitted once one of its own closed", func() bool {
		resp, err := refused(sess, "db", 5432)
		return err == nil && resp.Allowed()
	})
}
