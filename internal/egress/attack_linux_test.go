//go:build linux

package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/policy"
	"moat/internal/testkit"
)

// Attacks on the egress path by a service of the mesh that wants to reach
// a host no rule allows through an allowed one.

// tunnel opens a CONNECT tunnel to target through p and returns it once
// the proxy admitted it.
func tunnel(t *testing.T, p *Proxy, target string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr("connect").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK || br.Buffered() != 0 {
		t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	return c
}

// prefixConn writes prefix before the first bytes written to it.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Write(b []byte) (int, error) {
	if p := c.prefix; p != nil {
		c.prefix = nil
		if _, err := c.Conn.Write(p); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

func attackWorld(t *testing.T) (*world, *Proxy) {
	t.Helper()
	w := newWorld(t)
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	return w, w.proxy(t, pol, w.point(t, pol), nil, apiCaller)
}

// waitAfter waits as wait does for a record past the first mark.
func (w *world) waitAfter(t *testing.T, mark int, what string, match func(flow.Record) bool) flow.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	n := 0
	r, err := w.recs.Wait(ctx, func(r flow.Record) bool { n++; return n > mark && r.Unmapped != nil && match(r) })
	if err != nil {
		t.Fatalf("no record of %s", what)
	}
	return r
}

// refusedHandshake asserts that a TLS handshake naming sni through c fails
// and that the egress point recorded an SNI refusal for host.
func (w *world) refusedHandshake(t *testing.T, c net.Conn, sni, host string) {
	t.Helper()
	mark := len(w.recs.Records())
	tc := tls.Client(c, &tls.Config{ServerName: sni, RootCAs: w.roots})
	if err := tc.Handshake(); err == nil {
		t.Errorf("a handshake naming %q went through a tunnel to %s (to %s)", sni, host, tc.ConnectionState().PeerCertificates[0].DNSNames)
	}
	w.waitAfter(t, mark, "the refused ClientHello", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.DstEndpoint.Hostname == host
	})
}

// TestEgressRecordBeforeHello: a TLS record other than a handshake (here
// a warning alert, which TLS 1.2 servers drop and read on) ahead of the
// ClientHello made the egress point take the stream for another protocol
// and relay it unchecked, so the hello after it could name any server
// behind the allowed name's addresses.
func TestEgressRecordBeforeHello(t *testing.T) {
	w, p := attackWorld(t)
	for _, rec := range [][]byte{
		{0x15, 0x03, 0x01, 0x00, 0x02, 0x01, 0x5a}, // alert: warning, user_canceled
		{0x14, 0x03, 0x01, 0x00, 0x01, 0x01},       // change_cipher_spec
		{0x17, 0x03, 0x03, 0x00, 0x00},             // empty application data
	} {
		c := tunnel(t, p, "api.example.test:443")
		w.refusedHandshake(t, &prefixConn{Conn: c, prefix: rec}, "evil.example.test", "api.example.test")
		c.Close()
	}
}
