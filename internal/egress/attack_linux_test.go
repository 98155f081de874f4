//go:build linux

package egress

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
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

// rawHello is a TLS 1.2 ClientHello record naming names in one
// server_name extension, with empty extensions of the types extra.
func rawHello(names []string, extra ...uint16) []byte {
	u16 := binary.BigEndian.AppendUint16
	var exts []byte
	if names != nil {
		var list []byte
		for _, n := range names {
			list = append(u16(append(list, 0), uint16(len(n))), n...)
		}
		exts = append(u16(u16(u16(exts, 0), uint16(len(list)+2)), uint16(len(list))), list...)
	}
	for _, e := range extra {
		exts = u16(u16(exts, e), 0)
	}
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)                              // random
	body = append(body, 0)                                                // session id
	body = u16(u16(body, 2), tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256) // cipher suites
	body = append(body, 1, 0)                                             // compression: null
	body = append(u16(body, uint16(len(exts))), exts...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append(u16([]byte{0x16, 3, 1}, uint16(len(hs))), hs...)
}

// refusedRaw writes hello through a tunnel to host and asserts the point
// relays nothing back and records an SNI refusal.
func (w *world) refusedRaw(t *testing.T, p *Proxy, host string, hello []byte) {
	t.Helper()
	mark := len(w.recs.Records())
	c := tunnel(t, p, net.JoinHostPort(host, "443"))
	defer c.Close()
	if _, err := c.Write(hello); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("the server answered the ClientHello: % x", b)
	}
	w.waitAfter(t, mark, "the refused ClientHello", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.DstEndpoint.Hostname == host
	})
}

// echConfigList is an ECHConfigList (draft-ietf-tls-esni) of one X25519,
// HKDF-SHA256, AES-128-GCM config whose outer server name is publicName,
// and that config alone.
func echConfigList(pub []byte, publicName string) (list, config []byte) {
	u16 := binary.BigEndian.AppendUint16
	c := []byte{1}                               // config_id
	c = u16(c, 0x0020)                           // DHKEM(X25519, HKDF-SHA256)
	c = append(u16(c, uint16(len(pub))), pub...) // public_key
	c = u16(u16(u16(c, 4), 0x0001), 0x0001)      // HKDF-SHA256, AES-128-GCM
	c = append(c, 0)                             // maximum_name_length
	c = append(append(c, byte(len(publicName))), publicName...)
	c = u16(c, 0) // extensions
	config = append(u16(u16(nil, 0xfe0d), uint16(len(c))), c...)
	return append(u16(nil, uint16(len(config))), config...), config
}

// TestEgressHiddenServerName: a ClientHello whose outer server name is
// the allowed host can carry the real one encrypted (ECH, and the ESNI
// drafts before it), which a server holding the keys for both serves;
// the egress point checked only the outer name.
func TestEgressHiddenServerName(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(`egress:
  - name: payments
    from: [api]
    to: api.example.test
    ports: [443, 8443]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, w.point(t, pol), nil, apiCaller)

	t.Log("ECH: the outer hello names api.example.test, the inner one evil.example.test")
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	list, config := echConfigList(key.PublicKey().Bytes(), "api.example.test")
	cert, roots := serverCert(t, "api.example.test", "evil.example.test")
	var ln net.Listener
	if err := w.internet.Do(func() (err error) {
		ln, err = tls.Listen("tcp", ":8443", &tls.Config{Certificates: []tls.Certificate{cert},
			EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{{Config: config, PrivateKey: key.Bytes(), SendAsRetry: true}}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	mark := len(w.recs.Records())
	c := tunnel(t, p, "api.example.test:8443")
	tc := tls.Client(c, &tls.Config{ServerName: "evil.example.test", RootCAs: roots, MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list})
	if err := tc.Handshake(); err == nil {
		t.Errorf("an encrypted ClientHello reached %s through a tunnel to api.example.test (ECH accepted: %v)", tc.ConnectionState().ServerName, tc.ConnectionState().ECHAccepted)
	}
	w.waitAfter(t, mark, "the refused ECH hello", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.DstEndpoint.Hostname == "api.example.test"
	})

	t.Log("ESNI (draft extension 0xffce) next to an allowed server name")
	w.refusedRaw(t, p, "api.example.test", rawHello([]string{"api.example.test"}, 0xffce))
}

// TestEgressServerNameCaseFolding: a server name with a non-ASCII letter
// that Unicode lower-cases to an ASCII one (U+0130 to "i", the Kelvin sign
// to "k") passed for the allowed name, while the server saw another name.
func TestEgressServerNameCaseFolding(t *testing.T) {
	w, p := attackWorld(t)
	const folded = "ap\u0130.example.test"
	c := tunnel(t, p, "api.example.test:443")
	w.refusedHandshake(t, c, folded, "api.example.test")

	t.Log("on the SNI listener too")
	mark := len(w.recs.Records())
	c, err := net.Dial("tcp", p.Addr("sni").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if err := tls.Client(c, &tls.Config{ServerName: folded, RootCAs: w.roots}).Handshake(); err == nil {
		t.Errorf("the SNI listener let %q through", folded)
	}
	w.waitAfter(t, mark, "the SNI listener's refusal", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.DstEndpoint.Hostname != "api.example.test"
	})

	t.Log("and a CONNECT to such a name is a bad request")
	c, err = net.Dial("tcp", p.Addr("connect").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\nHost: %[1]s:443\r\n\r\n", folded)
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("CONNECT %s: %v %v", folded, resp.Status, err)
	}
}

// TestEgressNumericHost: IPv4 addresses written other than in dotted
// decimal (one number, octal, hexadecimal, fewer parts) are not addresses
// to netip, so they were taken for names, matched by name rules ("*")
// and handed to the resolver, which (getaddrinfo's inet_aton) reads them
// as addresses: an address reached without a network rule.
func TestEgressNumericHost(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(`egress:
  - name: any-name
    from: [api]
    to: "*"
    ports: [443]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, w.point(t, pol), nil, apiCaller)
	for _, host := range []string{"3405803786", "0xcb00710a", "0313.0.0161.012", "203.0.29194", "127.1", "0x7f.1", "198.18.9.3."} {
		c, err := net.Dial("tcp", p.Addr("connect").String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\nHost: %[1]s:443\r\n\r\n", host)
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("CONNECT %s: %v %v, want 400 (not a host name)", host, resp.Status, err)
		}
		c.Close()
	}
}
