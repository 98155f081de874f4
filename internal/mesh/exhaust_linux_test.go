package mesh

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"

	"moat/internal/testkit"
)

// A workload holding an SVID that no intention lets reach node-b still
// completes the handshake at node-b's mesh port (streams are decided one
// by one). It attacks from 127.0.0.2, while node-a's honest callers come
// from 127.0.0.1: Linux routes all of 127/8 to loopback.

const attackerIP = "127.0.0.2"

// attackPair is newPair with node-b's header and dial deadline at an
// hour, so that what an attacker holds stays held for the whole test
// unless a bound lets it go.
func attackPair(t *testing.T) *pair {
	t.Helper()
	f := newFixture(t)
	app := startApp(t, echo)
	b := f.newAgent(t, "node-b", []Service{
		{Name: "api", Port: 8080, AppAddr: app},
		{Name: "db", Port: 5432, AppAddr: app},
		{Name: "legacy", Port: 9000, AppAddr: app},
	}, func(c *Config) { c.DialTimeout = time.Hour })
	a := f.newAgent(t, "node-a", []Service{
		{Name: "frontend", Port: 3000, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}},
		{Name: "batch", Port: 3002, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}},
	})
	return &pair{f: f, a: a, b: b}
}

// attackerTunnel completes a handshake with node-b from attackerIP as
// cert, and reads the byte that says the tunnel is taken.
func attackerTunnel(t *testing.T, p *pair, cert *tls.Certificate) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIP)}, Timeout: testkit.WaitLimit}
	c, err := tls.DialWithDialer(d, "tcp", p.b.m.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, ServerName: "api", Certificates: []tls.Certificate{*cert},
		MinVersion: tls.VersionTLS13, NextProtos: []string{alpnTunnelV2},
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// TestSilentStreamsAreBoundedPerSource: streams that never send their
// tunnel header each hold a goroutine at the destination until the
// header deadline. A source may hold maxHeaderWaitsPerSource of them;
// the next is reset at once, and an honest caller from another address
// still gets through.
func TestSilentStreamsAreBoundedPerSource(t *testing.T) {
	p := attackPair(t)
	batch, _ := p.a.ids.Certificate("batch") // no intention lets batch reach node-b
	c, err := attackerTunnel(t, p, batch)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := yamux.Client(c, muxConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	open := func() net.Conn {
		st, err := sess.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// In steps, so that node-b takes each stream before the next arrive
	// (yamux resets a stream that finds its accept backlog full).
	const step = 64
	for held := 0; held < maxHeaderWaitsPerSource; held += step {
		for range step {
			open()
		}
		testkit.WaitFor(t, "node-b taking the silent streams", func() bool {
			return p.b.m.Stats().StreamsIn+p.b.m.Stats().StreamsShed >= int64(held+step)
		})
	}
	if got := p.b.m.Stats().StreamsShed; got != 0 {
		t.Fatalf("%d of the first %d silent streams shed", got, maxHeaderWaitsPerSource)
	}
	st := open()
	_ = st.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
	_, err = st.Read(make([]byte, 1))
	if ne := net.Error(nil); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("stream %d past the bound is held (read: %v)", maxHeaderWaitsPerSource+1, err)
	}
	if got := p.b.m.Stats().StreamsShed; got != 1 {
		t.Errorf("%d streams shed, want 1", got)
	}
	if got, err := call(p.a.local(t, "frontend", "api"), "still served"); err != nil || got != "still served" {
		t.Fatalf("honest caller during the flood: %q, %v", got, err)
	}
}

// TestTunnelsAreBoundedPerSource: every tunnel holds a descriptor and its
// session's goroutines at the destination for as long as the peer keeps
// it. A source may hold maxTunnelsPerSource; the next is closed once its
// handshake ends, before any stream, and an honest caller from another
// address still opens its own. A tunnel given back makes room.
func TestTunnelsAreBoundedPerSource(t *testing.T) {
	p := attackPair(t)
	batch, _ := p.a.ids.Certificate("batch")
	var held []*tls.Conn
	for i := range maxTunnelsPerSource {
		c, err := attackerTunnel(t, p, batch)
		if err != nil {
			t.Fatalf("tunnel %d: %v", i+1, err)
		}
		held = append(held, c)
	}
	if _, err := attackerTunnel(t, p, batch); err == nil {
		t.Fatalf("tunnel %d past the bound taken", maxTunnelsPerSource+1)
	}
	if got := p.b.m.Stats().TunnelsShed; got != 1 {
		t.Errorf("%d tunnels shed, want 1", got)
	}
	if got, err := call(p.a.local(t, "frontend", "api"), "still served"); err != nil || got != "still served" {
		t.Fatalf("honest caller during the flood: %q, %v", got, err)
	}
	held[0].Close()
	testkit.WaitFor(t, "a tunnel in the place of the one closed", func() bool {
		c, err := attackerTunnel(t, p, batch)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestMalformedFramesEndOnlyTheirTunnel: yamux frames no agent writes (an
// unknown version, an unknown type, a stream's data past the window it
// was given) end the tunnel that carried them, at once, and nothing else:
// an honest caller is still served.
func TestMalformedFramesEndOnlyTheirTunnel(t *testing.T) {
	p := attackPair(t)
	frontend, _ := p.a.ids.Certificate("frontend") // allowed to api:8080
	frame := func(version, typ byte, flags uint16, stream, length uint32) []byte {
		b := []byte{version, typ, byte(flags >> 8), byte(flags), 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], stream)
		binary.BigEndian.PutUint32(b[8:], length)
		return b
	}
	const syn = 1
	for name, f := range map[string][]byte{
		"unknown version":       frame(9, 0, syn, 1, 0),
		"unknown type":          frame(0, 7, syn, 1, 0),
		"data past the window":  frame(0, 0, syn, 1, 1<<31),
		"data past the maximum": frame(0, 0, syn, 1, 1<<32-1),
	} {
		c, err := attackerTunnel(t, p, frontend)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		if _, err := c.Write(f); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Whatever the destination answers (a go-away), the tunnel ends.
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s: the tunnel is still open", name)
			}
		}
	}
	if got, err := call(p.a.local(t, "frontend", "api"), "still served"); err != nil || got != "still served" {
		t.Fatalf("honest caller after the malformed frames: %q, %v", got, err)
	}
}
