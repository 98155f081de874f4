package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// bufferPolicy lets frontend call api, whose app never reads, and
// gateway call db, whose app echoes.
const bufferPolicy = `default: deny
rules:
  - name: frontend-to-api
    from: [frontend]
    to: api
    ports: [8080]
  - name: gateway-to-db
    from: [gateway]
    to: db
    ports: [5432]
`

// testBuffer is node-b's stream buffer in these tests: eight streams'
// windows.
const testBuffer = 8 * streamWindow

// bufferPair is node-b, with api's app accepting and never reading, and
// db's echoing, under a stream buffer of testBuffer; and node-a, with
// frontend and gateway.
func bufferPair(t *testing.T) *pair {
	t.Helper()
	f := newFixture(t)
	stop := make(chan struct{})
	stall := startApp(t, func(c net.Conn) { <-stop })
	t.Cleanup(func() { close(stop) }) // before startApp's, which waits for the handlers
	app := startApp(t, echo)
	pol := func(c *Config) { c.Policy = mustPolicy(t, bufferPolicy) }
	b := f.newAgent(t, "node-b", []Service{
		{Name: "api", Port: 8080, AppAddr: stall},
		{Name: "db", Port: 5432, AppAddr: app},
	}, pol, func(c *Config) { c.StreamBuffer = testBuffer })
	a := f.newAgent(t, "node-a", []Service{
		{Name: "frontend", Port: 3000, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}},
		{Name: "gateway", Port: 3001, AppAddr: app, Upstreams: []Upstream{{Service: "db", Port: 5432}}},
	}, pol)
	return &pair{f: f, a: a, b: b}
}

// dialTunnel opens a tunnel to the mesh port at addr as cert would.
func dialTunnel(t testing.TB, addr string, cert *tls.Certificate, sni string) *yamux.Session {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{
		InsecureSkipVerify: true, ServerName: sni, Certificates: []tls.Certificate{*cert},
		MinVersion: tls.VersionTLS13, NextProtos: []string{alpnTunnelV2},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Time{})
	sess, err := yamux.Client(c, muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// bulk sends n bytes (a multiple of 256 KiB) of a pattern through addr,
// reading the echo as it goes, and reports whether all came back
// unchanged.
func bulk(addr string, n int) error {
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	sent, got := sha256.New(), sha256.New()
	errc := make(chan error, 1)
	go func() {
		chunk := make([]byte, 256<<10)
		for i := 0; i < n; i += len(chunk) {
			for j := range chunk {
				chunk[j] = byte(i/len(chunk) + j)
			}
			sent.Write(chunk)
			if _, err := c.Write(chunk); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.(*net.TCPConn).CloseWrite()
	}()
	m, err := io.Copy(got, c)
	if werr := <-errc; werr != nil {
		return fmt.Errorf("writing: %w", werr)
	}
	if err != nil {
		return fmt.Errorf("reading after %d bytes: %w", m, err)
	}
	if m != int64(n) {
		return fmt.Errorf("%d bytes echoed, %d sent", m, n)
	}
	if !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		return fmt.Errorf("the echo differs from what was sent")
	}
	return nil
}

// TestStalledStreamsHoldNoMoreThanTheBuffer: a caller that an intention
// allows opens stream after stream to an app that accepts and never
// reads, and fills each stream's window. Node-b holds no more of what
// they sent than its stream buffer: past it, the attacker's streams are
// reset, newest first, and counted, while an honest caller of another
// service, from another source, moves four buffers' worth through the
// same node meanwhile, and none of its streams is shed.
func TestStalledStreamsHoldNoMoreThanTheBuffer(t *testing.T) {
	p := bufferPair(t)
	frontend, _ := p.a.ids.Certificate("frontend")
	sess := dialTunnel(t, p.b.m.Addr().String(), frontend, "api")

	// Thirty-two streams pushing at once, each able to hold a window and
	// a copy buffer: six times the buffer.
	const attackers = 32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened, reset atomic.Int64
	push := func(i int) error {
		st, err := sess.Open(context.Background())
		if err != nil {
			return err
		}
		defer st.Close()
		opened.Add(1)
		var id [connIDLen]byte
		binary.BigEndian.PutUint64(id[:], uint64(i))
		hdr, err := AppendRequest(nil, Request{Service: "api", Port: 8080, ConnID: fmt.Sprintf("%x", id)}, headerV2)
		if err != nil {
			return err
		}
		if _, err := st.Write(hdr); err != nil {
			return err
		}
		resp, err := ReadResponse(st, headerV2)
		if err != nil {
			reset.Add(1) // shed before its answer: open another
			return nil
		}
		if !resp.Allowed() {
			return fmt.Errorf("refused: %s", resp.Reason)
		}
		chunk := make([]byte, 64<<10)
		for {
			if _, err := st.Write(chunk); err != nil {
				reset.Add(1)
				return nil // shed: open another
			}
		}
	}
	var attackErr atomic.Value
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; ; n += attackers {
				select {
				case <-stop:
					return
				default:
				}
				if err := push(n); err != nil {
					select {
					case <-stop:
					default:
						attackErr.Store(err)
					}
					return
				}
			}
		}()
	}
	t.Cleanup(func() { sess.Close(); wg.Wait() })
	defer close(stop)

	testkit.WaitFor(t, "node-b shedding the attacker's streams", func() bool {
		return p.b.m.Stats().BufferShed >= attackers
	})
	// The honest caller's bytes cross node-b's stream buffer while the
	// attack goes on.
	if err := bulk(p.a.local(t, "gateway", "db"), 32<<20); err != nil {
		t.Fatalf("honest bulk transfer during the attack: %v", err)
	}
	if err, _ := attackErr.Load().(error); err != nil {
		t.Fatalf("attacker: %v", err)
	}
	st := p.b.m.Stats()
	t.Logf("attacker opened %d streams, %d reset; node-b shed %d, holds %d, held at most %d of %d", opened.Load(), reset.Load(), st.BufferShed, st.StreamBuffered, st.StreamBufferPeak, testBuffer)
	if st.StreamBufferPeak > testBuffer {
		t.Errorf("node-b's streams held %d bytes, past the buffer's %d", st.StreamBufferPeak, testBuffer)
	}
	if st.StreamBufferPeak < testBuffer/2 {
		t.Errorf("node-b's streams held at most %d bytes: the attack never filled the buffer", st.StreamBufferPeak)
	}
	if st.Cut != 0 {
		t.Errorf("%d streams counted as cut by a change; shedding is counted apart", st.Cut)
	}
	rec := p.b.flows.waitFor(t, "the record of a shed stream", func(r flow.Record) bool {
		return r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonOverloaded && r.ActivityID == flow.ActivityReset
	})
	if rec.SrcEndpoint.SvcName != "frontend" || rec.Verdict() != flow.VerdictAllow {
		t.Errorf("shed stream recorded from %q, verdict %s; want frontend's, allowed as it was", rec.SrcEndpoint.SvcName, rec.Verdict())
	}
	p.b.flows.mu.Lock()
	defer p.b.flows.mu.Unlock()
	for _, r := range p.b.flows.all {
		if r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonOverloaded && r.SrcEndpoint.SvcName != "frontend" {
			t.Errorf("a stream of %q shed", r.SrcEndpoint.SvcName)
		}
	}
}

// TestBulkAndIdleStreamsWithinTheBufferAreKept: one source holding two
// hundred quiet connections (a gateway's WebSockets) and moving a bulk
// transfer of eight buffers' worth on another, through an app that reads,
// never comes near the stream buffer: nothing is shed, and every quiet
// connection still answers afterwards.
func TestBulkAndIdleStreamsWithinTheBufferAreKept(t *testing.T) {
	p := bufferPair(t)
	addr := p.a.local(t, "gateway", "db")
	const idle = 200
	conns := make([]*lineConn, 0, idle)
	for i := range idle {
		c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		bc := &lineConn{c}
		if err := bc.ping(fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, bc)
	}
	if err := bulk(addr, 64<<20); err != nil {
		t.Fatalf("bulk transfer beside %d idle connections: %v", idle, err)
	}
	for i, bc := range conns {
		if err := bc.ping(fmt.Sprintf("still there %d", i)); err != nil {
			t.Fatalf("idle connection %d after the transfer: %v", i, err)
		}
	}
	st := p.b.m.Stats()
	if st.BufferShed != 0 {
		t.Errorf("%d streams shed within the buffer", st.BufferShed)
	}
	if st.StreamBufferPeak == 0 || st.StreamBufferPeak > testBuffer {
		t.Errorf("node-b's streams held at most %d bytes (buffer %d)", st.StreamBufferPeak, testBuffer)
	}
}

// lineConn is a connection to an echo.
type lineConn struct{ c net.Conn }

// ping writes a line and reads it back.
func (b *lineConn) ping(msg string) error {
	_ = b.c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := io.WriteString(b.c, msg+"\n"); err != nil {
		return err
	}
	got := make([]byte, len(msg)+1)
	if _, err := io.ReadFull(b.c, got); err != nil {
		return err
	}
	if string(got) != msg+"\n" {
		return fmt.Errorf("echoed %q, sent %q", got, msg)
	}
	return nil
}

// TestTinyFramesAreChargedTheirMemory: a data frame of one byte holds a
// buffer slot besides its byte; the ledger charges it so, and a source
// sending a window of tiny frames is shed long before its bytes alone
// would reach the budget. The frames pass through meteredConn as a
// session would read them.
func TestTinyFramesAreChargedTheirMemory(t *testing.T) {
	var shed []bufSourceKey
	b := newStreamBudget(MinStreamBuffer, func(k bufSourceKey) { shed = append(shed, k) })
	honest := b.tunnel(bufSourceKey{peer: "spiffe://example.org/svc/gateway"})
	attacker := b.tunnel(bufSourceKey{peer: "spiffe://example.org/svc/frontend"})
	frame := func(typ byte, flags uint16, id, length uint32) []byte {
		h := make([]byte, yamuxHeaderLen, yamuxHeaderLen+int(length))
		h[1] = typ
		binary.BigEndian.PutUint16(h[2:], flags)
		binary.BigEndian.PutUint32(h[4:], id)
		binary.BigEndian.PutUint32(h[8:], length)
		return append(h, make([]byte, length)...)
	}
	hc := &meteredConn{t: honest}
	hc.scan(frame(typeWindowUpdate, flagSYN, 1, 0))
	hc.scan(frame(typeData, 0, 1, largeBuf))
	if now, _ := b.held(); now != frameCost(largeBuf) || frameCost(largeBuf) != 512<<10+frameOverhead {
		t.Fatalf("a full frame held %d, charged %d", frameCost(largeBuf), now)
	}
	ac := &meteredConn{t: attacker}
	ac.scan(frame(typeWindowUpdate, flagSYN, 1, 0))
	// One byte at a time, split anywhere, as reads return them.
	var tiny []byte
	for range 1000 {
		tiny = append(tiny, frame(typeData, 0, 1, 1)...)
	}
	for i := 0; i < len(tiny); i += 7 {
		ac.scan(tiny[i:min(i+7, len(tiny))])
	}
	if got, want := b.heldBy(attacker.src.key), int64(1000*(1+frameOverhead)); got != want {
		t.Fatalf("1000 one-byte frames charged %d, want %d", got, want)
	}
	// A second attacker stream filling the rest of the buffer in tiny
	// frames is shed, and the honest one kept.
	ac.scan(frame(typeWindowUpdate, flagSYN, 3, 0))
	for range MinStreamBuffer / (1 + frameOverhead) {
		ac.scan(frame(typeData, 0, 3, 1))
	}
	if len(shed) == 0 {
		t.Fatal("nothing shed past the buffer")
	}
	for _, k := range shed {
		if !strings.HasSuffix(k.peer, "/frontend") {
			t.Errorf("shed a stream of %s", k.peer)
		}
	}
	if got := b.heldBy(honest.src.key); got != frameCost(largeBuf) {
		t.Errorf("the honest stream holds %d after the shedding, want %d", got, frameCost(largeBuf))
	}
	if now, peak := b.held(); peak > MinStreamBuffer || now > MinStreamBuffer {
		t.Errorf("held %d, at most %d, past the buffer's %d", now, peak, MinStreamBuffer)
	}
	// The first attacker stream (older) goes after the newer one.
	if e := attacker.streams[1]; e.wasShed && !attacker.streams[3].wasShed {
		t.Error("the older stream was shed before the newer")
	}
}
