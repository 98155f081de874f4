//go:build linux

package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/netlab"
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

// rawHello is a TLS 1.2 ClientHello record naming names (host_name) in
// one server_name extension, with empty extensions of the types extra.
func rawHello(names []string, extra ...uint16) []byte {
	var list []byte
	for _, n := range names {
		list = serverNameEntry(list, 0, n)
	}
	if names == nil {
		list = nil
	}
	return rawHelloList(list, extra...)
}

// serverNameEntry appends an entry of a server_name list to b.
func serverNameEntry(b []byte, typ byte, name string) []byte {
	return append(binary.BigEndian.AppendUint16(append(b, typ), uint16(len(name))), name...)
}

// rawHelloList is rawHello with the server_name list given.
func rawHelloList(list []byte, extra ...uint16) []byte {
	u16 := binary.BigEndian.AppendUint16
	var exts []byte
	if list != nil {
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
	w.handshakes(t, &tls.Config{Certificates: []tls.Certificate{cert},
		EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{{Config: config, PrivateKey: key.Bytes(), SendAsRetry: true}}})
	mark := len(w.recs.Records())
	c := tunnel(t, p, "api.example.test:8443")
	tc := tls.Client(c, &tls.Config{ServerName: "evil.example.test", RootCAs: roots, MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list})
	if err := tc.Handshake(); err == nil {
		t.Errorf("an encrypted ClientHello reached %s through a tunnel to api.example.test (ECH accepted: %v)", tc.ConnectionState().ServerName, tc.ConnectionState().ECHAccepted)
	}
	w.waitAfter(t, mark, "the refused ECH hello", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.DstEndpoint.Hostname == "api.example.test"
	})

	t.Log("the SNI listener refuses it too, and says why")
	mark = len(w.recs.Records())
	c, err = net.Dial("tcp", p.Addr("sni").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if err := tls.Client(c, &tls.Config{ServerName: "evil.example.test", RootCAs: roots, MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list}).Handshake(); err == nil {
		t.Error("the SNI listener let an encrypted ClientHello through")
	}
	w.waitAfter(t, mark, "the SNI listener's refusal", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && strings.Contains(r.Unmapped.Reason, "encrypted server name")
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

// fragmentConn sends the first record written to it (a ClientHello) as
// records of at most n bytes of it, each in its own write.
type fragmentConn struct {
	net.Conn
	n    int
	done bool
}

func (c *fragmentConn) Write(b []byte) (int, error) {
	if c.done || len(b) < 5 || b[0] != 0x16 {
		return c.Conn.Write(b)
	}
	c.done = true
	body := b[5:]
	for len(body) > 0 {
		k := min(c.n, len(body))
		rec := append([]byte{b[0], b[1], b[2], byte(k >> 8), byte(k)}, body[:k]...)
		if _, err := c.Conn.Write(rec); err != nil {
			return 0, err
		}
		body = body[k:]
	}
	return len(b), nil
}

// TestEgressHelloForms: ClientHellos an attacker shapes to slip another
// server name past the check, refused, and a fragmented one naming the
// allowed host, which passes (the check reads the whole hello).
func TestEgressHelloForms(t *testing.T) {
	w, p := attackWorld(t)

	t.Log("a ClientHello split across records, each in its own TCP segment")
	c := tunnel(t, p, "api.example.test:443")
	w.refusedHandshake(t, &fragmentConn{Conn: c, n: 7}, "evil.example.test", "api.example.test")
	c = tunnel(t, p, "api.example.test:443")
	tc := tls.Client(&fragmentConn{Conn: c, n: 7}, &tls.Config{ServerName: "api.example.test", RootCAs: w.roots})
	if err := tc.Handshake(); err != nil {
		t.Errorf("a fragmented ClientHello naming the allowed host: %v", err)
	}

	t.Log("no server name to an allowed name")
	c = tunnel(t, p, "api.example.test:443")
	mark := len(w.recs.Records())
	if err := tls.Client(c, &tls.Config{InsecureSkipVerify: true}).Handshake(); err == nil {
		t.Error("a ClientHello without a server name went through")
	}
	w.waitAfter(t, mark, "the hello without a name", func(r flow.Record) bool { return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch })

	t.Log("two server names, the allowed one first or last")
	w.refusedRaw(t, p, "api.example.test", rawHello([]string{"api.example.test", "evil.example.test"}))
	w.refusedRaw(t, p, "api.example.test", rawHello([]string{"evil.example.test", "api.example.test"}))

	t.Log("a name of another type next to the allowed host name, which some servers may read")
	for _, list := range [][]byte{
		serverNameEntry(serverNameEntry(nil, 1, "evil.example.test"), 0, "api.example.test"),
		serverNameEntry(serverNameEntry(nil, 0, "api.example.test"), 1, "evil.example.test"),
		serverNameEntry(nil, 1, "evil.example.test"),
	} {
		w.refusedRaw(t, p, "api.example.test", rawHelloList(list))
	}

	t.Log("a second ClientHello, naming another host, in the first one's record")
	first, second := rawHello([]string{"api.example.test"}), rawHello([]string{"evil.example.test"})
	both := append(append([]byte(nil), first[5:]...), second[5:]...)
	w.refusedRaw(t, p, "api.example.test", append([]byte{0x16, 3, 1, byte(len(both) >> 8), byte(len(both))}, both...))

	t.Log("the ClientHello sent with the CONNECT request, before the proxy's answer")
	mark = len(w.recs.Records())
	c, err := net.Dial("tcp", p.Addr("connect").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	req := []byte("CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n")
	if _, err := c.Write(append(req, rawHello([]string{"evil.example.test"})...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	if b, _ := io.ReadAll(br); len(b) != 0 {
		t.Errorf("the server answered the early ClientHello: % x", b)
	}
	w.waitAfter(t, mark, "the early hello", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.TLS != nil && r.TLS.SNI == "evil.example.test"
	})
}

// TestEgressConnectForms: CONNECT requests written to reach something
// other than what a rule allows, or to wear the proxy down, refused.
func TestEgressConnectForms(t *testing.T) {
	w, p := attackWorld(t)
	for _, c := range []struct {
		what, req string
		status    int
	}{
		{"userinfo naming the allowed host", "CONNECT api.example.test:443@evil.example.test:443 HTTP/1.1\r\n\r\n", http.StatusForbidden},
		{"Host header naming the allowed host", "CONNECT evil.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n", http.StatusForbidden},
		{"an allowed name on a port no rule names", "CONNECT api.example.test:8443 HTTP/1.1\r\n\r\n", http.StatusForbidden},
		{"the allowed name's address", "CONNECT " + w.internet.Addr.String() + ":443 HTTP/1.1\r\n\r\n", http.StatusForbidden},
		{"the address as mapped IPv6", "CONNECT [::ffff:" + w.internet.Addr.String() + "]:443 HTTP/1.1\r\n\r\n", http.StatusForbidden},
		{"the metadata address", "CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n", http.StatusForbidden},
		{"an address with a zone", "CONNECT [fe80::1%25lo]:443 HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"a percent-encoded name", "CONNECT api%2eexample.test:443 HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"port 0", "CONNECT api.example.test:0 HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"port 65536+443", "CONNECT api.example.test:65979 HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"a negative port", "CONNECT api.example.test:-443 HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"no port", "CONNECT api.example.test HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"a URL", "CONNECT https://api.example.test:443/ HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		{"a plain proxy request", "GET http://evil.example.test/ HTTP/1.1\r\nHost: evil.example.test\r\n\r\n", http.StatusMethodNotAllowed},
		{"an oversized head", "CONNECT api.example.test:443 HTTP/1.1\r\nX: " + strings.Repeat("a", maxRequest) + "\r\n\r\n", http.StatusBadRequest},
	} {
		conn, err := net.Dial("tcp", p.Addr("connect").String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(testkit.WaitLimit))
		io.WriteString(conn, c.req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != c.status {
			t.Errorf("%s: %v %v, want %d", c.what, resp, err, c.status)
		}
		conn.Close()
	}
	if rec := w.recs.Records(); len(rec) == 0 {
		t.Error("no refusal recorded")
	}
	for _, r := range w.recs.Records() {
		if r.ActivityID != flow.ActivityRefuse && r.Unmapped != nil && r.Unmapped.Kind == "egress" {
			t.Errorf("an egress connection was made: %s", r.Message)
		}
	}
}

const searchChildEnv = "MOAT_EGRESS_SEARCH_RESOLV_CONF"

// TestEgressSearchDomain: a name under an allowed wildcard that does not
// resolve was tried again with the node's search domains appended
// (resolv.conf's search), so the point reached a host of another domain
// than the rule's. The node's resolv.conf is replaced for a child process
// in a mount namespace of its own.
func TestEgressSearchDomain(t *testing.T) {
	if path := os.Getenv(searchChildEnv); path != "" {
		if err := syscall.Mount(path, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		w, p := attackWorld(t)
		if body, err := w.get(p, "nothere.v6.example.test"); err == nil {
			t.Errorf("an unresolved allowed name reached another domain's host: %q", body)
		}
		wait(t, w.recs, "the unresolved name", func(r flow.Record) bool {
			return r.Unmapped.ReasonCode == flow.ReasonEgressResolve && r.DstEndpoint.Hostname == "nothere.v6.example.test"
		})
		for _, r := range w.recs.Records() {
			if r.ActivityID == flow.ActivityOpen {
				t.Errorf("a connection was made: %s to %s", r.Message, r.DstEndpoint.IP)
			}
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("mount and network namespaces need root (CI runs as root)")
	}
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver 192.0.2.53\nsearch corp.test\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testkit.WaitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestEgressSearchDomain$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), searchChildEnv+"="+conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%v\n%s", err, out)
	}
}

// renameConn rewrites the server name from into to in every write after
// the first (the second ClientHello after a HelloRetryRequest).
type renameConn struct {
	net.Conn
	from, to string
	writes   int
}

func (c *renameConn) Write(b []byte) (int, error) {
	if c.writes++; c.writes > 1 {
		b = bytes.ReplaceAll(b, []byte(c.from), []byte(c.to))
	}
	return c.Conn.Write(b)
}

// TestEgressRetriedHello: a server that answers the ClientHello with a
// HelloRetryRequest gets a second ClientHello, which the egress point
// relayed unchecked: it could name another server than the first.
func TestEgressRetriedHello(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(`egress:
  - name: payments
    from: [api]
    to: api.example.test
    ports: [8443]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, w.point(t, pol), nil, apiCaller)
	cert, roots := serverCert(t, "api.example.test", "evi.example.test")
	// P-256 only: clients offering X25519 key shares are asked again.
	w.handshakes(t, &tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: []tls.CurveID{tls.CurveP256}})
	t.Log("a retried hello naming the allowed host passes")
	c := tunnel(t, p, "api.example.test:8443")
	if err := tls.Client(c, &tls.Config{ServerName: "api.example.test", RootCAs: roots}).Handshake(); err != nil {
		t.Errorf("a handshake with a HelloRetryRequest: %v", err)
	}
	t.Log("a retried hello naming another host is refused")
	mark := len(w.recs.Records())
	c = tunnel(t, p, "api.example.test:8443")
	if err := tls.Client(&renameConn{Conn: c, from: "api.example.test", to: "evi.example.test"}, &tls.Config{ServerName: "api.example.test", RootCAs: roots}).Handshake(); err == nil {
		t.Error("a second ClientHello naming another host went through")
	}
	w.waitAfter(t, mark, "the refused second hello", func(r flow.Record) bool {
		return r.Unmapped.ReasonCode == flow.ReasonSNIMismatch && r.TLS != nil && r.TLS.SNI == "evi.example.test"
	})
}

// handshakes serves TLS with cfg on the internet host's port 8443 until
// the test ends: each connection's handshake, then its close.
func (w *world) handshakes(t *testing.T, cfg *tls.Config) {
	t.Helper()
	var ln net.Listener
	if err := w.internet.Do(func() (err error) {
		ln, err = tls.Listen("tcp", ":8443", cfg)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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
}

// TestEgressOwnAddress: an allowed name that resolves to the egress
// node's own address (an outside address, of no internal range) led the
// point to connect to the node itself, over loopback, which the firewall
// admits: a listener of that node (a backend bound to 0.0.0.0, another
// service's port) that the network cannot reach was reached through the
// egress path, from any node whose traffic leaves through it.
func TestEgressOwnAddress(t *testing.T) {
	w, p := attackWorld(t)
	var ln net.Listener
	if err := w.node.Do(func() (err error) { ln, err = net.Listen("tcp", "0.0.0.0:443"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Write([]byte("backend"))
			c.Close()
		}
	}()
	mark := len(w.recs.Records())
	c, err := net.Dial("tcp", p.Addr("connect").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	fmt.Fprintf(c, "CONNECT self.v6.example.test:443 HTTP/1.1\r\nHost: self.v6.example.test:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		t.Errorf("CONNECT to a name of the node's own address: %s, want a refusal", resp.Status)
	}
	rec := w.waitAfter(t, mark, "the refusal", func(r flow.Record) bool {
		return r.ActivityID == flow.ActivityRefuse && r.DstEndpoint.Hostname == "self.v6.example.test"
	})
	if rec.Unmapped.ReasonCode != flow.ReasonEgressInternal {
		t.Errorf("refused with %q (%s), want %q", rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonEgressInternal)
	}
	select {
	case <-accepted:
		t.Error("the node's own listener took a connection from the egress point")
	default:
	}
}

// TestEgressNetworkRuleToItself: a network rule wide enough to hold the
// egress node (every address, or a private network its own address is
// in) led the point to connect to the node itself, by loopback, the
// unspecified address or its own address written as the target: the
// point is the agent, whose uid the host firewall admits to every app
// port, so a service reached another service's app port round its
// intentions, and any listener of the node the network cannot reach. A
// rule of loopback addresses alone still reaches the node's loopback: the
// operator named it.
func TestEgressNetworkRuleToItself(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(`egress:
  - name: anywhere4
    from: [api]
    to: 0.0.0.0/0
    ports: [443, 8080]
  - name: anywhere6
    from: [api]
    to: ::/0
    ports: [8080]
  - name: local
    from: [api]
    to: 127.0.0.1/32
    ports: [9090]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, w.point(t, pol), nil, apiCaller)
	var ln net.Listener
	if err := w.node.Do(func() (err error) { ln, err = net.Listen("tcp", "[::]:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Write([]byte("backend"))
			c.Close()
		}
	}()
	for _, target := range []string{"127.0.0.1:8080", "127.0.0.2:8080", "0.0.0.0:8080", "[::1]:8080", "[::]:8080", "[::ffff:127.0.0.1]:8080",
		netip.AddrPortFrom(w.node.Addr, 8080).String(), netip.AddrPortFrom(netip.AddrFrom16(w.node.Addr.As16()), 8080).String()} {
		mark := len(w.recs.Records())
		c, err := net.Dial("tcp", p.Addr("connect").String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("CONNECT %s: %v", target, err)
		}
		if resp.StatusCode == http.StatusOK {
			t.Errorf("CONNECT %s, the node itself, under a network rule: %s, want a refusal", target, resp.Status)
			continue
		}
		rec := w.waitAfter(t, mark, "the refusal of "+target, func(r flow.Record) bool { return r.ActivityID == flow.ActivityRefuse })
		if rec.Unmapped.ReasonCode != flow.ReasonEgressInternal {
			t.Errorf("CONNECT %s: refused with %q (%s), want %q", target, rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonEgressInternal)
		}
	}
	select {
	case <-accepted:
		t.Error("the node's own listener took a connection from the egress point")
	default:
	}
	// The rule still reaches other hosts by address: the tunnel is
	// admitted once the point has connected.
	tunnel(t, p, netip.AddrPortFrom(w.internet.Addr, 443).String())
	var local net.Listener
	if err := w.node.Do(func() (err error) { local, err = net.Listen("tcp", "127.0.0.1:9090"); return err }); err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	tunnel(t, p, "127.0.0.1:9090")
}

// TestEgressNetworkRuleMetadata: a network rule of every address
// (0.0.0.0/0, legal and warned about) reached the cloud's metadata
// service at its link-local address, and with it the egress node's cloud
// credentials. A link-local address is reached only by a rule of
// link-local addresses alone: the operator named it.
func TestEgressNetworkRuleMetadata(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(`egress:
  - name: anywhere
    from: [api]
    to: 0.0.0.0/0
    ports: [80]
  - name: metadata
    from: [api]
    to: 169.254.169.254/32
    ports: [81]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, w.point(t, pol), nil, apiCaller)
	for _, step := range []struct {
		h    *netlab.Host
		args []string
	}{
		{w.internet, []string{"ip", "addr", "add", "169.254.169.254/32", "dev", "eth0"}},
		{w.node, []string{"ip", "route", "add", "169.254.169.254/32", "dev", "eth0"}},
	} {
		if out, err := step.h.Command(context.Background(), step.args[0], step.args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", step.args, err, out)
		}
	}
	accepted := make(chan struct{}, 4)
	for _, port := range []string{"80", "81"} {
		var ln net.Listener
		if err := w.internet.Do(func() (err error) { ln, err = net.Listen("tcp", "169.254.169.254:"+port); return err }); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if port == "80" {
					accepted <- struct{}{}
				}
				c.Close()
			}
		}()
	}
	mark := len(w.recs.Records())
	c, err := net.Dial("tcp", p.Addr("connect").String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	fmt.Fprintf(c, "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		t.Errorf("CONNECT to the metadata address under 0.0.0.0/0: %s, want a refusal", resp.Status)
	} else {
		rec := w.waitAfter(t, mark, "the refusal", func(r flow.Record) bool { return r.ActivityID == flow.ActivityRefuse })
		if rec.Unmapped.ReasonCode != flow.ReasonEgressInternal {
			t.Errorf("refused with %q (%s), want %q", rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonEgressInternal)
		}
	}
	select {
	case <-accepted:
		t.Error("the metadata service took a connection from the egress point")
	default:
	}
	// The rule that names it reaches it.
	tunnel(t, p, "169.254.169.254:81")
}

// TestEgressRuleRemoved: a connection the point relayed under a rule
// outlived the rule: once the operator removed it, the service kept
// talking to the host over the connection it held, for as long as bytes
// moved on it. When the intentions change, what they no longer allow is
// closed and recorded.
func TestEgressRuleRemoved(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	var inForce atomic.Pointer[policy.Table]
	inForce.Store(pol)
	current := func() *policy.Table { return inForce.Load() }
	pt, err := NewPoint(PointConfig{
		Node: "node", TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"), Policy: current,
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dial(w.node, nil)(ctx, network, netip.AddrPortFrom(w.internet.Addr, 53).String())
		}},
		Pin: w.fw.Pin, Dial: dial(w.node, firewall.Control), Flows: w.recs, DialTimeout: testkit.WaitLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := w.proxy(t, pol, pt, nil, apiCaller)
	c := tunnel(t, p, "api.example.test:443")
	tc := tls.Client(c, &tls.Config{ServerName: "api.example.test", RootCAs: w.roots})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	get := func() error {
		fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("the allowed host: %v", err)
	}
	mark := len(w.recs.Records())
	// The rule is removed; another service's rules stay.
	other, err := policy.Parse([]byte(strings.Replace(intentions, "from: [api]\n    to: api.example.test", "from: [billing]\n    to: api.example.test", 1)))
	if err != nil {
		t.Fatal(err)
	}
	inForce.Store(other)
	pt.Recheck(context.Background())
	if err := get(); err == nil {
		t.Error("the service still reaches the host over a connection opened under a rule removed since")
	}
	rec := w.waitAfter(t, mark, "the cut", func(r flow.Record) bool { return r.ActivityID == flow.ActivityClose })
	if rec.Unmapped.ReasonCode != flow.ReasonPolicyChanged || rec.FirewallRule.Name != "payments" {
		t.Errorf("the cut recorded with %q (%s), rule %+v", rec.Unmapped.ReasonCode, rec.Unmapped.Reason, rec.FirewallRule)
	}
	// A connection the rules still allow is left alone.
	inForce.Store(pol)
	c2 := tunnel(t, p, "api.example.test:443")
	tc2 := tls.Client(c2, &tls.Config{ServerName: "api.example.test", RootCAs: w.roots})
	if err := tc2.Handshake(); err != nil {
		t.Fatal(err)
	}
	pt.Recheck(context.Background())
	tc, br = tc2, bufio.NewReader(tc2)
	if err := get(); err != nil {
		t.Errorf("a connection the rules allow was cut: %v", err)
	}
}

// TestEgressRuleNameMoved: a connection the point relayed to an address
// its rule's name resolved to outlived the name: once the name was moved
// to another server (the old one retired, or taken over) or removed, and
// the intentions changed, Recheck decided by the rule alone, and the
// service kept talking to the old address. Recheck now resolves the names
// again: a connection whose name no longer resolves to its address is
// closed, as is one whose name no longer resolves at all (fail closed),
// each recorded; one whose name still resolves to its address is left
// alone.
func TestEgressRuleNameMoved(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(intentions))
	if err != nil {
		t.Fatal(err)
	}
	pt := w.point(t, pol)
	p := w.proxy(t, pol, pt, nil, apiCaller)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	// open connects to api.example.test through the point and returns
	// what makes a request on the connection and says who answered.
	open := func() func() (string, error) {
		c := tunnel(t, p, "api.example.test:443")
		t.Cleanup(func() { c.Close() })
		tc := tls.Client(c, &tls.Config{ServerName: "api.example.test", RootCAs: w.roots})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(tc)
		return func() (string, error) {
			fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
	}
	cut := func(mark int, want string) {
		t.Helper()
		rec := w.waitAfter(t, mark, "the cut", func(r flow.Record) bool { return r.ActivityID == flow.ActivityClose })
		if rec.Unmapped.ReasonCode != flow.ReasonPolicyChanged || !strings.Contains(rec.Unmapped.Reason, want) {
			t.Errorf("the cut recorded with %q (%s), want %q saying %q", rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonPolicyChanged, want)
		}
	}

	old := open()
	if got, err := old(); err != nil || !strings.HasPrefix(got, "internet says hi") {
		t.Fatalf("the allowed host: %q, %v", got, err)
	}
	pt.Recheck(ctx)
	if got, err := old(); err != nil || !strings.HasPrefix(got, "internet says hi") {
		t.Fatalf("after a recheck, the name still resolving to its address: %q, %v", got, err)
	}

	t.Log("the name moves to another server; the connection to the old one is cut")
	w.setName("api.example.test.", w.evil.Addr)
	mark := len(w.recs.Records())
	pt.Recheck(ctx)
	cut(mark, "now resolves to ["+w.evil.Addr.String()+"]")
	if got, err := old(); err == nil {
		t.Errorf("the service still reaches the old address of a name moved since: %q", got)
	}

	t.Log("the name no longer resolves; a connection to it is cut")
	moved := open()
	if got, err := moved(); err != nil || !strings.HasPrefix(got, "evil says hi") {
		t.Fatalf("the name's new address: %q, %v", got, err)
	}
	w.setName("api.example.test.", netip.Addr{})
	mark = len(w.recs.Records())
	pt.Recheck(ctx)
	cut(mark, "no longer resolves outside")
	if got, err := moved(); err == nil {
		t.Errorf("the service still reaches the address of a name that no longer resolves: %q", got)
	}
}
