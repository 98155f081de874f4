//go:build linux

package egress

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/policy"
	"moat/internal/testkit"
)

// Plain HTTP through a name rule: the servers behind an allowed name serve
// other sites too (virtual hosts, a CDN), chosen by the request's Host.

// vhosts is a plain HTTP server on the internet host's port 80 that serves
// every site it is asked for, as a shared server does, and notes which.
type vhosts struct {
	mu   sync.Mutex
	seen []string // the Host of each request served
}

func (v *vhosts) served() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.seen...)
}

// evilServed reports whether a request for another site than the allowed
// one got through.
func (v *vhosts) evilServed() []string {
	var out []string
	for _, h := range v.served() {
		if !strings.EqualFold(strings.TrimSuffix(h, ":80"), "api.example.test") {
			out = append(out, h)
		}
	}
	return out
}

// siteOf is the site a shared server picks for r when it trusts the
// fields proxies write, as frameworks behind a load balancer are set to
// (Express's "trust proxy", Django's USE_X_FORWARDED_HOST, Rails): the
// first X-Forwarded-Host (or X-Host, X-Original-Host), else a Forwarded
// host=, else a target of the form //host/path read as naming its host,
// else Host.
func siteOf(r *http.Request) string {
	for _, name := range []string{"X-Forwarded-Host", "X-Host", "X-Original-Host", "X-Forwarded-Server"} {
		if v := r.Header.Get(name); v != "" {
			first, _, _ := strings.Cut(v, ",")
			return strings.TrimSpace(first)
		}
	}
	for _, part := range strings.FieldsFunc(r.Header.Get("Forwarded"), func(c rune) bool { return c == ';' || c == ',' }) {
		if k, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "host") {
			return strings.Trim(v, `"`)
		}
	}
	if rest, ok := strings.CutPrefix(r.RequestURI, "//"); ok {
		h, _, _ := strings.Cut(rest, "/")
		return h
	}
	return r.Host
}

func (w *world) vhosts(t *testing.T) *vhosts {
	t.Helper()
	v := &vhosts{}
	var ln net.Listener
	if err := w.internet.Do(func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		site := siteOf(r)
		v.mu.Lock()
		v.seen = append(v.seen, site)
		v.mu.Unlock()
		if r.Header.Get("Upgrade") == "websocket" && r.URL.Path == "/ws" {
			// Switch, then echo whatever comes.
			c, brw, err := rw.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			io.Copy(c, brw)
			return
		}
		if r.Header.Get("Upgrade") != "" {
			rw.WriteHeader(http.StatusUpgradeRequired)
			return
		}
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(rw, "site %s read %d bytes", site, n)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return v
}

const httpIntentions = `egress:
  - name: web
    from: [api]
    to: api.example.test
    ports: [80, 443, 2222]
`

func httpWorld(t *testing.T) (*world, *Proxy, *vhosts) {
	t.Helper()
	w := newWorld(t)
	pol, err := policy.Parse([]byte(httpIntentions))
	if err != nil {
		t.Fatal(err)
	}
	return w, w.proxy(t, pol, w.point(t, pol), nil, apiCaller), w.vhosts(t)
}

// TestEgressPlainHTTPHost: a plain HTTP request through a tunnel to an
// allowed name, naming another site in its Host (or in a later request
// of the connection, or in an absolute target), was relayed unchecked to
// a server that serves that site: the rule's name fronted for any other.
// So was any request framed so that the point and the server could read
// its end differently.
func TestEgressPlainHTTPHost(t *testing.T) {
	w, p, v := httpWorld(t)
	const ok = "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
	const evil = "GET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n"
	smuggled := "GET /x HTTP/1.1\r\nHost: evil.example.test\r\n\r\n"
	for _, c := range []struct{ what, send string }{
		{"Host naming another site", evil},
		{"Host naming another site in upper case", "GET / HTTP/1.1\r\nHost: EVIL.example.test\r\n\r\n"},
		{"another site in a later request of the connection", ok + evil},
		{"another site after a body", "POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 3\r\n\r\nabc" + evil},
		{"another site after a chunked body", "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + evil},
		{"empty lines before the request", "\r\n\r\n" + evil},
		{"an absolute target naming another site", "GET http://evil.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n"},
		{"an absolute target with userinfo", "GET http://api.example.test@evil.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n"},
		{"an absolute target of another scheme", "GET https://evil.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n"},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: api.example.test\r\nHost: evil.example.test\r\n\r\n"},
		{"two Host fields, the allowed one last", "GET / HTTP/1.1\r\nHost: evil.example.test\r\nHost: api.example.test\r\n\r\n"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n"},
		{"no Host in HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
		{"an HTTP/0.9 request", "GET /\r\n"},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: api.example.test@evil.example.test\r\n\r\n"},
		{"Host with a list", "GET / HTTP/1.1\r\nHost: api.example.test, evil.example.test\r\n\r\n"},
		{"Host with another port", "GET / HTTP/1.1\r\nHost: api.example.test:8080\r\n\r\n"},
		{"Host with an empty port", "GET / HTTP/1.1\r\nHost: api.example.test:\r\n\r\n"},
		{"Host with a trailing dot", "GET / HTTP/1.1\r\nHost: api.example.test.\r\n\r\n"},
		{"Host with a NUL", "GET / HTTP/1.1\r\nHost: api.example.test\x00evil\r\n\r\n"},
		{"Host folded onto a second line (obs-fold)", "GET / HTTP/1.1\r\nHost: api.example.test\r\n evil.example.test\r\n\r\n"},
		{"a space before the colon", "GET / HTTP/1.1\r\nHost : evil.example.test\r\nHost: api.example.test\r\n\r\n"},
		{"lines ending in a bare LF", "GET / HTTP/1.1\nHost: evil.example.test\n\n"},
		{"Content-Length and Transfer-Encoding", "POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"a Transfer-Encoding other than chunked", "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"two Transfer-Encodings", "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 0\r\nContent-Length: 50\r\n\r\n" + smuggled},
		{"a signed Content-Length", "POST / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: +50\r\n\r\n" + smuggled},
		{"a GET whose body is a request", "GET / HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 50\r\n\r\n" + smuggled},
		{"a HEAD whose chunked body is a request", "HEAD / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" + smuggled + "\r\n0\r\n\r\n"},
		{"a bad chunk size", "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\nabc\r\n0\r\n\r\n" + smuggled},
		{"a chunk longer than its size", "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n" + smuggled},
		{"a chunk extension with a quote", "POST / HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n3;a=\"x\r\nabc\r\n0\r\n\r\n" + smuggled},
		{"an oversized head", "GET / HTTP/1.1\r\nHost: api.example.test\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 4000)+"\r\n", 9) + "\r\n"},
		{"an oversized request line", "GET /" + strings.Repeat("a", maxHTTPLine) + " HTTP/1.1\r\nHost: api.example.test\r\n\r\n"},
		{"CONNECT inside the connection", "CONNECT evil.example.test:80 HTTP/1.1\r\nHost: api.example.test\r\n\r\n"},
		{"an upgrade to h2c", "GET / HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"},
		{"HTTP/2 with prior knowledge", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"a websocket upgrade after another request", ok + "GET /ws HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"},
		{"X-Forwarded-Host naming another site", "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Forwarded-Host: evil.example.test\r\n\r\n"},
		{"X-Forwarded-Host listing another site after the allowed one", "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Forwarded-Host: api.example.test, evil.example.test\r\n\r\n"},
		{"x-forwarded-host in lower case in a later request", ok + "GET / HTTP/1.1\r\nHost: api.example.test\r\nx-forwarded-host: evil.example.test\r\n\r\n"},
		{"X-Host naming another site", "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Host: evil.example.test\r\n\r\n"},
		{"X-Original-Host naming another site", "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Original-Host: evil.example.test\r\n\r\n"},
		{"X-Forwarded-Server naming another site", "GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Forwarded-Server: evil.example.test\r\n\r\n"},
		{"Forwarded host= naming another site", "GET / HTTP/1.1\r\nHost: api.example.test\r\nForwarded: for=192.0.2.1;host=evil.example.test;proto=http\r\n\r\n"},
		{"Forwarded host= quoted, in a second element", "GET / HTTP/1.1\r\nHost: api.example.test\r\nForwarded: for=192.0.2.1, HOST=\"evil.example.test\"\r\n\r\n"},
		{"Forwarded with an unclosed quote", "GET / HTTP/1.1\r\nHost: api.example.test\r\nForwarded: for=\"x;host=evil.example.test\r\n\r\n"},
		{"a target of the form //host/path", "GET //evil.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n"},
		{"another site after an upgrade the server declined", "GET /no HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + evil},
	} {
		mark := len(w.recs.Records())
		conn := tunnel(t, p, "api.example.test:80")
		if _, err := io.WriteString(conn, c.send); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(conn)
		conn.Close()
		if bytes.Contains(got, []byte("site evil")) || bytes.Contains(got, []byte("site EVIL")) {
			t.Errorf("%s: another site answered: %q", c.what, got)
		}
		if !bytes.Contains(got, []byte("403 Forbidden")) || !bytes.Contains(got, []byte(flow.ReasonHTTPRefused)) {
			t.Errorf("%s: the client was not told of the refusal: %q", c.what, got)
			continue
		}
		rec := w.waitAfter(t, mark, c.what, func(r flow.Record) bool {
			return r.ActivityID == flow.ActivityRefuse && r.DstEndpoint.Hostname == "api.example.test"
		})
		if rec.Unmapped.ReasonCode != flow.ReasonHTTPRefused {
			t.Errorf("%s: recorded %q (%s), want %q", c.what, rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonHTTPRefused)
		}
		t.Logf("%s: %s", c.what, rec.Unmapped.Reason)
	}
	if bad := v.evilServed(); len(bad) > 0 {
		t.Errorf("the shared server served other sites: %q", bad)
	}
}

// TestEgressPlainHTTPPasses: requests to the allowed host pass, several on
// one connection (one after the other, and pipelined), with bodies of
// either framing, a large one among them, and a websocket-style upgrade,
// after which the connection is relayed as it comes.
func TestEgressPlainHTTPPasses(t *testing.T) {
	w, p, v := httpWorld(t)

	t.Log("keep-alive: requests one after the other, in the forms clients write")
	conn := tunnel(t, p, "api.example.test:80")
	br := bufio.NewReader(conn)
	large := bytes.Repeat([]byte("x"), 1<<20)
	for i, req := range []*http.Request{
		mustRequest(t, "GET", "/", "api.example.test", nil, 0),
		mustRequest(t, "GET", "/a?b=c", "API.Example.Test:80", nil, 0),
		mustRequest(t, "POST", "/up", "api.example.test", strings.NewReader("hello"), 5),
		mustRequest(t, "POST", "/chunked", "api.example.test", io.MultiReader(strings.NewReader("chunk one, "), strings.NewReader("chunk two")), -1),
		mustRequest(t, "PUT", "/large", "api.example.test", bytes.NewReader(large), int64(len(large))),
		mustRequest(t, "PUT", "/large-chunked", "api.example.test", io.MultiReader(bytes.NewReader(large)), -1),
	} {
		if err := req.Write(conn); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("request %d (%s %s): %v", i, req.Method, req.URL, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("site %s read %d bytes", req.Host, max(req.ContentLength, 0))
		if req.ContentLength < 0 {
			want = fmt.Sprintf("site %s read ", req.Host)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), want) {
			t.Errorf("request %d: %s %q, want %q", i, resp.Status, body, want)
		}
	}
	conn.Close()

	t.Log("pipelined, with an absolute target naming the host")
	conn = tunnel(t, p, "api.example.test:80")
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n"+
		"POST http://api.example.test/p HTTP/1.1\r\nHost: api.example.test:80\r\nContent-Length: 2\r\n\r\nhi"+
		"GET /last HTTP/1.0\r\nHost: api.example.test\r\n\r\n")
	got, _ := io.ReadAll(conn)
	conn.Close()
	if n := strings.Count(string(got), " 200 OK\r\n"); n != 3 {
		t.Errorf("pipelined requests: %d answers: %q", n, got)
	}

	t.Log("a websocket upgrade: after the 101 the bytes are the site's own")
	conn = tunnel(t, p, "api.example.test:80")
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br = bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	const frames = "GET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n\x81\x05hello"
	io.WriteString(conn, frames)
	echo := make([]byte, len(frames))
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != frames {
		t.Errorf("after the upgrade: %q %v", echo, err)
	}
	conn.Close()

	if bad := v.evilServed(); len(bad) > 0 {
		t.Errorf("other sites served: %q", bad)
	}
	for _, r := range w.recs.Records() {
		if r.ActivityID == flow.ActivityRefuse {
			t.Errorf("refused: %s", r.Unmapped.Reason)
		}
	}
}

func mustRequest(t *testing.T, method, target, host string, body io.Reader, length int64) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, "http://api.example.test"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host, req.ContentLength = host, length
	return req
}

// TestEgressOtherProtocols: a protocol other than HTTP and TLS to an
// allowed name (here an SSH identification line and an SMTP command, to
// an echo server) is relayed as it comes.
func TestEgressOtherProtocols(t *testing.T) {
	w, p, _ := httpWorld(t)
	var ln net.Listener
	if err := w.internet.Do(func() (err error) { ln, err = net.Listen("tcp", ":2222"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	for _, line := range []string{"SSH-2.0-OpenSSH_9.6 Ubuntu-3ubuntu13\r\n", "EHLO client.example.test\r\n", "*1\r\n$4\r\nPING\r\n", "\x00\x01binary"} {
		conn := tunnel(t, p, "api.example.test:2222")
		io.WriteString(conn, line)
		got := make([]byte, len(line))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != line {
			t.Errorf("%q: echoed %q %v", line, got, err)
		}
		conn.Close()
	}
}

// TestEgressSSLv2Hello: a ClientHello in SSLv2's record format (first
// byte 0x80 or above) carries no server name; the point took it for
// another protocol and relayed it.
func TestEgressSSLv2Hello(t *testing.T) {
	w, p := attackWorld(t)
	// A v2 CLIENT-HELLO asking for TLS 1.0 with one cipher spec.
	body := []byte{1, 3, 1, 0, 3, 0, 0, 0, 16, 0, 0, 0x2f}
	body = append(body, bytes.Repeat([]byte{0xaa}, 16)...)
	hello := append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
	w.refusedRaw(t, p, "api.example.test", hello)
}

// TestEgressIdleTimeout: a relayed tunnel on which nothing moves was kept
// open for good. It is closed after the idle timeout and recorded so.
func TestEgressIdleTimeout(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(httpIntentions))
	if err != nil {
		t.Fatal(err)
	}
	pt := w.point(t, pol)
	// Long enough that a loaded host's pause between the tunnel's answer
	// and the client's first bytes is not taken for idleness.
	pt.cfg.IdleTimeout = time.Second
	p := w.proxy(t, pol, pt, nil, apiCaller)
	w.vhosts(t)
	for _, c := range []struct {
		what string
		use  func(net.Conn) error
	}{
		{"a TLS tunnel", func(c net.Conn) error {
			return tls.Client(c, &tls.Config{ServerName: "api.example.test", RootCAs: w.roots}).Handshake()
		}},
		{"a plain HTTP connection", func(c net.Conn) error {
			_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n")
			if err == nil {
				_, err = http.ReadResponse(bufio.NewReader(c), nil)
			}
			return err
		}},
		{"a tunnel nothing was sent through", func(net.Conn) error { return nil }},
	} {
		port := "443"
		if c.what == "a plain HTTP connection" {
			port = "80"
		}
		mark := len(w.recs.Records())
		conn := tunnel(t, p, "api.example.test:"+port)
		if err := c.use(conn); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		rec := w.waitAfter(t, mark, c.what+" closed", func(r flow.Record) bool {
			return r.ActivityID == flow.ActivityClose && r.DstEndpoint.Hostname == "api.example.test"
		})
		if rec.Unmapped.ReasonCode != flow.ReasonIdleTimeout {
			t.Errorf("%s: closed with %q (%s), want %q", c.what, rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonIdleTimeout)
		}
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Errorf("%s: the client's end: %v", c.what, err)
		}
		conn.Close()
	}
}

// TestEgressIdleOneWay: a tunnel on which bytes move one way only (a
// download while the client sends nothing, then an upload the server
// does not answer) is busy, not idle, for the whole of several idle
// timeouts. Each step is driven by the test, with no pause between.
func TestEgressIdleOneWay(t *testing.T) {
	w := newWorld(t)
	pol, err := policy.Parse([]byte(httpIntentions))
	if err != nil {
		t.Fatal(err)
	}
	pt := w.point(t, pol)
	const idle = 1500 * time.Millisecond
	pt.cfg.IdleTimeout = idle
	p := w.proxy(t, pol, pt, nil, apiCaller)
	var ln net.Listener
	if err := w.internet.Do(func() (err error) { ln, err = net.Listen("tcp", ":2222"); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// The server writes a chunk for each tick, then reads chunks, telling
	// of each.
	tick, got, gone := make(chan bool), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(gone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		chunk := make([]byte, 1024)
		for <-tick {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
		for {
			if _, err := io.ReadFull(c, chunk); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	conn := tunnel(t, p, "api.example.test:2222")
	chunk := make([]byte, 1024)
	start := time.Now()
	for time.Since(start) < 2*idle+idle/2 {
		tick <- true
		if _, err := io.ReadFull(conn, chunk); err != nil {
			t.Fatalf("a download running %v (idle timeout %v) was cut: %v", time.Since(start), idle, err)
		}
	}
	tick <- false
	t.Log("downloaded for more than two idle timeouts; now an upload")
	start = time.Now()
	for time.Since(start) < 2*idle+idle/2 {
		if _, err := conn.Write(chunk); err != nil {
			t.Fatalf("an upload running %v (idle timeout %v) was cut: %v", time.Since(start), idle, err)
		}
		select {
		case <-got:
		case <-gone:
			t.Fatalf("an upload running %v (idle timeout %v) was cut", time.Since(start), idle)
		case <-time.After(testkit.WaitLimit):
			t.Fatalf("an upload running %v (idle timeout %v) was cut: the server stopped getting it", time.Since(start), idle)
		}
	}
	conn.Close()
	rec := wait(t, w.recs, "the tunnel's end", func(r flow.Record) bool {
		return r.ActivityID == flow.ActivityClose && r.DstEndpoint.Port == 2222
	})
	if rec.Unmapped.ReasonCode == flow.ReasonIdleTimeout {
		t.Errorf("a busy tunnel was closed as idle: %s", rec.Unmapped.Reason)
	}
}
