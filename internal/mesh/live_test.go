package mesh

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/testkit"
)

func TestLargeTransfer(t *testing.T) {
	p := newPair(t)
	const size = 100 << 20
	c, err := net.Dial("tcp", p.a.local(t, "frontend", "api"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		// Random bytes, written in odd-sized pieces; the echo comes back
		// concurrently, so backpressure is exercised both ways.
		chunk := make([]byte, 100_003)
		left := size
		for left > 0 {
			n := min(left, len(chunk))
			if _, err := rand.Read(chunk[:n]); err != nil {
				werr <- err
				return
			}
			sent.Write(chunk[:n])
			if _, err := c.Write(chunk[:n]); err != nil {
				werr <- err
				return
			}
			left -= n
		}
		werr <- c.(*net.TCPConn).CloseWrite()
	}()
	got := sha256.New()
	n, err := io.Copy(got, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(sent.Sum(nil), got.Sum(nil)) {
		t.Fatalf("received %d bytes, identical=%v", n, bytes.Equal(sent.Sum(nil), got.Sum(nil)))
	}
	r := p.b.flows.waitFor(t, "inbound record of the transfer", isFlow(flow.DirectionInbound, "frontend", "api"))
	if r.Traffic.BytesIn != size || r.Traffic.BytesOut != size {
		t.Fatalf("traffic %+v", r.Traffic)
	}
}

// loop makes short requests through addr until stop is closed, counting
// successes and failures.
func loop(addr string, stop <-chan struct{}, ok, failed *atomic.Int64, lastErr *atomic.Value) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		msg := fmt.Sprint("r", i)
		got, err := call(addr, msg)
		if err != nil || got != msg {
			failed.Add(1)
			lastErr.Store(fmt.Sprintf("%q %v", got, err))
			continue
		}
		ok.Add(1)
	}
}

func TestRotationDuringTraffic(t *testing.T) {
	p := newPair(t)
	addr := p.a.local(t, "frontend", "api")
	stop := make(chan struct{})
	var okN, failed atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(addr, stop, &okN, &failed, &lastErr)
		}()
	}
	waitCount := func(min int64) {
		testkit.WaitFor(t, fmt.Sprintf("%d requests answered (failed %d, last error %v)", min, failed.Load(), lastErr.Load()),
			func() bool { return okN.Load() >= min })
	}
	for i := 0; i < 5; i++ {
		waitCount(okN.Load() + 50)
		t.Logf("rotation %d: both services get fresh SVIDs", i+1)
		p.a.ids.set("frontend", p.f.issue(t, "frontend", time.Hour))
		p.b.ids.set("api", p.f.issue(t, "api", time.Hour))
	}
	waitCount(okN.Load() + 50)
	close(stop)
	wg.Wait()
	s := p.a.m.Stats()
	t.Logf("requests ok %d, failed %d, client handshakes %d", okN.Load(), failed.Load(), s.ClientHandshakes)
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed during rotation; last: %v", failed.Load(), lastErr.Load())
	}
	if s.ClientHandshakes < 6 {
		t.Fatalf("rotated SVIDs were not used for new tunnels: %d handshakes", s.ClientHandshakes)
	}
	// Retired tunnels drain and close.
	testkit.WaitFor(t, "retired tunnels to drain and close", func() bool { return p.a.m.Stats().TunnelsOpen <= 1 })
	if n := p.a.m.Stats().TunnelsOpen; n != 1 {
		t.Fatalf("%d tunnels open after draining, want 1", n)
	}
}

// session is a long-lived line-by-line conversation through the mesh.
type session struct {
	c  net.Conn
	br *bufio.Reader
}

func openSession(t *testing.T, addr string) *session {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &session{c: c, br: bufio.NewReader(c)}
	if err := s.ping("hello"); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *session) ping(msg string) error {
	_ = s.c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := fmt.Fprintf(s.c, "%s\n", msg); err != nil {
		return err
	}
	line, err := s.br.ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("got %q", line)
	}
	return nil
}

func TestPolicyChangeCutsOnlyTheDeniedPair(t *testing.T) {
	p := newPair(t)
	front := openSession(t, p.a.local(t, "frontend", "api"))
	gw := openSession(t, p.a.local(t, "gateway", "api"))

	t.Log("new policy: frontend may no longer call api")
	start := time.Now()
	p.b.m.SetPolicy(mustPolicy(t, strings.Replace(testPolicy, "from: [gateway, frontend]", "from: [gateway]", 1)))

	// The cut is an event: the frontend's connection ends. Wait for it
	// with a bounded deadline.
	_ = front.c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
	_, err := front.br.ReadString('\n')
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("frontend's connection still delivers data")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("frontend's connection was not cut")
	}
	t.Logf("frontend → api cut after %v (%v)", elapsed, err)
	r := p.b.flows.waitFor(t, "cut record", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "frontend", "api")(r) && r.ActivityID == activityCut
	})
	if !strings.Contains(r.Unmapped.Reason, "no longer allows frontend → api:8080") || r.Verdict() != flow.VerdictDeny {
		t.Fatalf("cut record %+v", r.Unmapped)
	}
	for i := range 20 {
		if err := gw.ping(fmt.Sprint("still here ", i)); err != nil {
			t.Fatalf("gateway's connection was disturbed: %v", err)
		}
	}
	if got, err := call(p.a.local(t, "frontend", "api"), "again"); err == nil {
		t.Fatalf("new frontend connection allowed: %q", got)
	}
	if s := p.b.m.Stats(); s.Cut != 1 {
		t.Fatalf("cut count %d", s.Cut)
	}
}

func TestRevocationClosesLiveTunnel(t *testing.T) {
	p := newPair(t)
	s := openSession(t, p.a.local(t, "frontend", "api"))
	cert, _ := p.a.ids.Certificate("frontend")
	p.b.trust.Update(nil, revokeSerial(cert))
	_ = s.c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := s.br.ReadString('\n'); err == nil {
		t.Fatal("revoked peer's connection still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("revoked peer's connection was not closed")
	}
	r := p.b.flows.waitFor(t, "cut record", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "frontend", "api")(r) && r.ActivityID == activityCut
	})
	if !strings.Contains(r.Unmapped.Reason, "peer no longer trusted: identity: identity revoked") {
		t.Fatalf("cut reason %q", r.Unmapped.Reason)
	}
	if got, err := call(p.a.local(t, "frontend", "api"), "x"); err == nil {
		t.Fatalf("revoked caller answered %q", got)
	}
}

func TestTunnelRecycledBeforeExpiry(t *testing.T) {
	p := newPair(t)
	addr := p.a.local(t, "frontend", "api")
	if _, err := call(addr, "one"); err != nil {
		t.Fatal(err)
	}
	if _, err := call(addr, "two"); err != nil {
		t.Fatal(err)
	}
	if n := p.a.m.Stats().ClientHandshakes; n != 1 {
		t.Fatalf("handshakes %d before recycling, want 1", n)
	}
	t.Log("node-a's clock moves to 50 minutes into the 1h SVIDs: inside the last fifth")
	p.a.clock.Advance(50 * time.Minute)
	if _, err := call(addr, "three"); err != nil {
		t.Fatal(err)
	}
	if n := p.a.m.Stats().ClientHandshakes; n != 2 {
		t.Fatalf("handshakes %d, want a new tunnel before expiry", n)
	}
}

func TestShutdownLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("traffic", func(t *testing.T) {
		p := newPair(t)
		openSession(t, p.a.local(t, "frontend", "api")) // still open at shutdown
		for i := range 20 {
			if _, err := call(p.a.local(t, "frontend", "api"), fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := call(p.a.local(t, "batch", "api"), "denied"); err == nil {
			t.Fatal("denied call answered")
		}
	})
	deadline := time.Now().Add(testkit.WaitLimit)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after shutdown:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestDestinationMoves(t *testing.T) {
	p := newPair(t)
	addr := p.a.local(t, "frontend", "api")
	if _, err := call(addr, "to node-b"); err != nil {
		t.Fatal(err)
	}
	t.Log("api moves to node-c: the tunnel to node-b drains and closes")
	c := p.f.newAgent(t, "node-c", []Service{{Name: "api", Port: 8080, AppAddr: startApp(t, echo)}})
	if _, err := call(addr, "to node-c"); err != nil {
		t.Fatal(err)
	}
	p.b.flows.waitFor(t, "node-b served the first call", isFlow(flow.DirectionInbound, "frontend", "api"))
	c.flows.waitFor(t, "node-c served the second call", isFlow(flow.DirectionInbound, "frontend", "api"))
	testkit.WaitFor(t, "only the tunnel to node-c open", func() bool { return p.a.m.Stats().TunnelsOpen == 1 })
}

// TestLiveStreamSurvivesSVIDRenewals: a keep-alive connection outlives
// three SVIDs of its caller. Each renewal opens a new tunnel for new
// connections; the old tunnel, whose SVID then expires, keeps carrying the
// stream it has and takes no new one.
func TestLiveStreamSurvivesSVIDRenewals(t *testing.T) {
	p := newPair(t)
	p.a.ids.set("frontend", p.f.issue(t, "frontend", 10*time.Minute))
	s := openSession(t, p.a.local(t, "frontend", "api"))
	for i := 1; i <= 3; i++ {
		t.Logf("renewal %d: a fresh SVID; the previous one expires at node-b", i)
		p.a.ids.set("frontend", p.f.issue(t, "frontend", time.Duration(i+1)*10*time.Minute))
		if got, err := call(p.a.local(t, "frontend", "api"), "new connection"); err != nil || got != "new connection" {
			t.Fatalf("a new connection after renewal %d: %q %v", i, got, err)
		}
		p.b.clock.Advance(10*time.Minute + time.Second)
		p.b.trust.Update(nil, identity.Revocations{}) // a trust change re-checks every tunnel
		if err := s.ping(fmt.Sprint("still here ", i)); err != nil {
			t.Fatalf("the keep-alive connection died after renewal %d: %v", i, err)
		}
	}
	t.Log("the keep-alive connection ends: its tunnel, drained and expired, closes")
	s.c.Close()
	testkit.WaitFor(t, "old tunnels to close", func() bool { return p.a.m.Stats().TunnelsOpen == 1 })
	p.b.flows.waitFor(t, "the keep-alive connection's close record", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "frontend", "api")(r) && r.ActivityID == flow.ActivityClose && r.Traffic.BytesIn > 0 &&
			r.StartTime < p.b.clock.Now().Add(-30*time.Minute).UnixMilli()
	})
}

// TestStreamOnExpiredTunnelRefused: once the SVID a tunnel was opened with
// has expired, a new stream on it is refused with code "expired".
func TestStreamOnExpiredTunnelRefused(t *testing.T) {
	p := newPair(t)
	s := openSession(t, p.a.local(t, "frontend", "api"))
	p.b.clock.Advance(2 * time.Hour)
	p.b.trust.Update(nil, identity.Revocations{})
	if err := s.ping("live"); err != nil {
		t.Fatalf("the live stream was cut by the expiry: %v", err)
	}
	if got, err := call(p.a.local(t, "frontend", "api"), "new"); err == nil {
		t.Fatalf("a new stream on an expired tunnel got %q", got)
	}
	r := p.b.flows.waitFor(t, "refusal", func(r flow.Record) bool {
		return r.ConnectionInfo.DirectionID == flow.DirectionInbound && r.Verdict() == flow.VerdictDeny && r.Unmapped.Kind == ""
	})
	if r.Unmapped.ReasonCode != flow.ReasonExpired {
		t.Fatalf("code %q reason %q", r.Unmapped.ReasonCode, r.Unmapped.Reason)
	}
}

// TestRevokedSVIDCutAfterExpiryAndPrune: a stream on an SVID that merely
// expired lives on, but is cut once its serial is listed, even after the
// expiry; and once the control plane drops the serial of an SVID that
// expired (the list's Pruned covers it), a stream on it is cut though this
// node never saw it listed, while one on an SVID that expired later stays.
func TestRevokedSVIDCutAfterExpiryAndPrune(t *testing.T) {
	p := newPair(t)
	var certs []*tls.Certificate
	var sessions []*session
	for i := 1; i <= 3; i++ {
		c := p.f.issue(t, "frontend", time.Duration(i)*10*time.Minute)
		p.a.ids.set("frontend", c)
		certs = append(certs, c)
		sessions = append(sessions, openSession(t, p.a.local(t, "frontend", "api")))
	}
	p.b.clock.Advance(30*time.Minute + time.Second)
	p.b.trust.Update(nil, identity.Revocations{})
	for i, s := range sessions {
		if err := s.ping("expired"); err != nil {
			t.Fatalf("session %d was cut by its SVID's expiry: %v", i, err)
		}
	}
	closed := func(name string, s *session) {
		t.Helper()
		_ = s.c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		if _, err := s.br.ReadString('\n'); err == nil {
			t.Fatalf("%s: still open", name)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: not closed", name)
		}
	}
	t.Log("the first SVID, expired, is revoked: its stream is cut")
	first := identity.SerialHex(certs[0].Leaf.SerialNumber)
	p.b.trust.Update(nil, identity.Revocations{Version: 1, Serials: []string{first},
		Expires: map[string]time.Time{first: certs[0].Leaf.NotAfter}})
	closed("the revoked, expired SVID's stream", sessions[0])

	t.Log("the second SVID was revoked and pruned from the list before it reached node-b")
	p.b.clock.Advance(48 * time.Hour)
	p.b.trust.Update(nil, identity.Revocations{Version: 3, Pruned: certs[1].Leaf.NotAfter})
	closed("the pruned SVID's stream", sessions[1])
	if err := sessions[2].ping("expired later"); err != nil {
		t.Fatalf("the stream on the SVID that expired after the pruned one was cut: %v", err)
	}
	// A stream is counted as cut once its pipe has ended, which may be
	// after the client has seen it close.
	testkit.WaitFor(t, "two streams counted as cut", func() bool { return p.b.m.Stats().Cut >= 2 })
	if s := p.b.m.Stats(); s.Cut != 2 {
		t.Fatalf("cut count %d, want 2", s.Cut)
	}
}
