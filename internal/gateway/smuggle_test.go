package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Attacks on the gateway's HTTP handling from the internet: request
// smuggling between the gateway and the backend, protocol upgrades,
// trailers, and routing confusions. Backends are real HTTP servers on Unix
// sockets; clients write raw bytes over TLS.

// servedLog is the requests a backend answered, as "METHOD PATH?QUERY
// request-id".
type servedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *servedLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Request-Id"))
}

func (l *servedLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// serveUnix runs srv on a fresh Unix socket until the test ends and
// returns the socket's path.
func serveUnix(t *testing.T, srv *http.Server) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "moat-gw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// dialALPN opens a TLS connection to the gateway offering one protocol.
func (f *fixture) dialALPN(proto string) *tls.Conn {
	f.t.Helper()
	c, err := tls.Dial("tcp", f.gw.Addr().String(), &tls.Config{RootCAs: f.pool, ServerName: "localhost", NextProtos: []string{proto}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c
}

// rawConn opens an HTTP/1.1 connection to the gateway over TLS.
func (f *fixture) rawConn() (*tls.Conn, *bufio.Reader) {
	c := f.dialALPN("http/1.1")
	return c, bufio.NewReader(c)
}

// h2Conn opens an HTTP/2 connection to the gateway that the test drives
// frame by frame.
func (f *fixture) h2Conn() (*tls.Conn, *http2.Framer) {
	tc := f.dialALPN("h2")
	tc.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(tc, tc)
	fr.WriteSettings()
	return tc, fr
}

// headerBlock encodes fields, name and value pairs, as HPACK.
func headerBlock(fields ...string) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := 0; i+1 < len(fields); i += 2 {
		enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return hb.Bytes()
}

// h2Status reads frames until the answer's :status ("reset" for a
// RST_STREAM).
func h2Status(t *testing.T, fr *http2.Framer) string {
	t.Helper()
	status := ""
	dec := hpack.NewDecoder(4096, func(hf hpack.HeaderField) {
		if hf.Name == ":status" {
			status = hf.Value
		}
	})
	for status == "" {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("HTTP/2: %v", err)
		}
		switch fm := fm.(type) {
		case *http2.HeadersFrame:
			dec.Write(fm.HeaderBlockFragment())
		case *http2.GoAwayFrame:
			t.Fatalf("HTTP/2: GOAWAY %v", fm.ErrCode)
		case *http2.RSTStreamFrame:
			status = "reset"
		}
	}
	return status
}

// TestH2CUpgradeNotTunnelled: an "Upgrade: h2c" a backend accepts turns the
// connection into a tunnel the gateway no longer reads, and the client
// speaks HTTP/2 to the backend directly, to any path, past the routes and
// their checks. The gateway forwards no upgrade but WebSocket's.
func TestH2CUpgradeNotTunnelled(t *testing.T) {
	var log servedLog
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		fmt.Fprintf(w, "served %s", r.URL.Path)
	})
	h2s := &http2.Server{}
	// An h2c server that takes the upgrade on "Upgrade: h2c" and
	// HTTP2-Settings, as lenient servers do, whatever Connection lists.
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "h2c" || r.Header.Get("HTTP2-Settings") == "" {
			app.ServeHTTP(w, r)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		brw.Flush()
		h2s.ServeConn(conn, &http2.ServeConnOpts{Handler: app, UpgradeRequest: r})
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})

	c, br := f.rawConn()
	fmt.Fprintf(c, "GET /static/app.js HTTP/1.1\r\nHost: shop.example.org\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Errorf("the gateway passed the backend's 101 to an h2c upgrade")
		// Speak HTTP/2 through the tunnel, as an attacker would.
		c.Write([]byte(http2.ClientPreface))
		fr := http2.NewFramer(c, br)
		fr.WriteSettings()
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "shop.example.org"},
			{":path", "/account?id=" + url.QueryEscape("1' UNION SELECT password FROM users--")}} {
			enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		for {
			fm, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if fm.Header().StreamID == 3 && fm.Header().Flags.Has(http2.FlagDataEndStream) {
				break
			}
		}
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		if resp.StatusCode != 200 || string(body) != "served /static/app.js" {
			t.Errorf("the request without its upgrade: %d %q, want the plain answer", resp.StatusCode, body)
		}
	}
	for _, l := range log.all() {
		if strings.HasPrefix(l, "GET /account") {
			t.Errorf("the backend served a request the gateway never saw: %q", l)
		}
	}
}

// wsAccept is Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// TestUpgradeNeedsWebSocketHandshake: a backend endpoint whose status the
// client chooses (a health check echoing ?code=) answers a WebSocket
// request 101 without a handshake and keeps reading HTTP; a gateway that
// believed the 101 would tunnel the client's next request to the backend
// unseen. A real WebSocket works.
func TestUpgradeNeedsWebSocketHandshake(t *testing.T) {
	var log servedLog
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		switch r.URL.Path {
		case "/static/status":
			var code int
			fmt.Sscan(r.URL.Query().Get("code"), &code)
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.WriteHeader(code)
		case "/static/ws":
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
			brw.Flush()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(brw, buf); err == nil {
				conn.Write(buf)
			}
		default:
			fmt.Fprintf(w, "served %s", r.URL.Path)
		}
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	upgrade := "Host: shop.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n\r\n"

	c, br := f.rawConn()
	io.WriteString(c, "GET /static/status?code=101 HTTP/1.1\r\n"+upgrade)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Errorf("the gateway passed a 101 that completes no handshake")
		fmt.Fprintf(c, "GET /account?id=%s HTTP/1.1\r\nHost: shop.example.org\r\n\r\n", url.QueryEscape("1' UNION SELECT password FROM users--"))
		http.ReadResponse(br, nil)
	} else if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("101 without a handshake: %d, want 502", resp.StatusCode)
	}
	for _, l := range log.all() {
		if strings.HasPrefix(l, "GET /account") {
			t.Errorf("the backend served a request the gateway never saw: %q", l)
		}
	}

	t.Log("a WebSocket handshake completes and carries frames both ways")
	c, br = f.rawConn()
	io.WriteString(c, "GET /static/ws HTTP/1.1\r\n"+upgrade)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("WebSocket: %d %v", resp.StatusCode, resp.Header)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Errorf("echo through the tunnel: %q %v", buf, err)
	}

	t.Log("an upgrade that is not a WebSocket handshake is forwarded as a plain request")
	c, br = f.rawConn()
	io.WriteString(c, "GET /static/status?code=101 HTTP/1.1\r\nHost: shop.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 1337\r\nSec-WebSocket-Key: "+key+"\r\n\r\n")
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("bad version: %v %v, want 502 (the backend's 101 answers no upgrade)", resp, err)
	}
}

// TestRequestTrailersDropped: trailers come after the body, when the WAF
// has judged the request and the client's proxy headers were dropped; a
// backend that merges them into its headers (Tomcat's
// allowedTrailerHeaders, CGI bridges) would read a client's
// X-Forwarded-For or X-Original-URL. None reaches the backend, over
// HTTP/1.1 or HTTP/2.
func TestRequestTrailersDropped(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	be := f.backends["frontend"]

	c, br := f.rawConn()
	fmt.Fprintf(c, "POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Original-URL\r\n\r\n3\r\na=1\r\n0\r\nX-Original-URL: /admin\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chunked POST with trailers: %v %v", resp, err)
	}
	got, body := be.lastRequest()
	if body != "a=1" || len(got.Trailer) != 0 || got.Header.Get("Trailer") != "" {
		t.Errorf("HTTP/1.1: backend got body %q, trailers %v, Trailer header %q", body, got.Trailer, got.Header.Get("Trailer"))
	}

	r := f.req("POST", "/form", io.MultiReader(strings.NewReader("a=2")))
	r.Trailer = http.Header{"X-Forwarded-For": {"10.0.0.1"}, "X-Original-Url": {"/admin"}}
	code, _, resp := f.do(r)
	if code != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/2 POST with trailers: %d %s", code, resp.Proto)
	}
	got, body = be.lastRequest()
	if body != "a=2" || len(got.Trailer) != 0 {
		t.Errorf("HTTP/2: backend got body %q, trailers %v", body, got.Trailer)
	}
}

// TestPathParamsCannotSwitchRoute: Tomcat, Jetty and Spring route
// "/admin;x=1/users" as /admin/users, and IIS, ASP.NET and Express route
// "/ADMIN/users" so. The gateway, reading the segment "admin;x=1" or
// "ADMIN", would send it by the catch-all route past /admin/'s checks; it
// refuses the path instead.
func TestPathParamsCannotSwitchRoute(t *testing.T) {
	f := newFixture(t, plainYAML+noWAF+`services: [api]
routes:
  - name: admin
    path: /admin/
    service: api
    port: 9090
  - name: site
    service: api
    port: 9090
    csrf_off: true
`)
	be := f.backends["api"]
	for _, path := range []string{"/admin;x=1/users", "/admin;/users", "/ADMIN/../admin;jsessionid=1/users", "/x/..;/admin/users",
		"/ADMIN/users", "/Admin/users", "/%41dmin/users", "/ADMIN;x/users"} {
		r := f.req("POST", path, strings.NewReader("role=admin"))
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Cookie", "session=victim")
		code, body, _ := f.do(r)
		if code != http.StatusForbidden {
			t.Errorf("POST %s: %d %q, want 403", path, code, body)
		}
	}
	if n := be.count.Load(); n != 0 {
		got, _ := be.lastRequest()
		t.Errorf("the backend served %d requests, the last %s", n, got.URL.RequestURI())
	}
	t.Log("parameters that leave the route alone pass")
	for _, path := range []string{"/shop;jsessionid=1", "/admin/users;jsessionid=1", "/a;b/c;d", "/About", "/admin/Users", "/ADMINISTRATION"} {
		if code, body, _ := f.do(f.req("GET", path, nil)); code != 200 {
			t.Errorf("GET %s: %d %q", path, code, body)
		}
	}
}

// TestTrailingDotsAndSpacesCannotSwitchRoute: IIS (any server that maps
// paths onto a Windows file system) drops a segment's trailing dots and
// spaces, and Spring MVC's path matcher trimmed whitespace around each
// segment before 4.3.1: "/admin./users", "/admin%20/users" and
// "/static/..%20/search" are /admin/users and /search to them. The gateway,
// reading the segments "admin." and ".. ", would send them by another
// route, past /admin/'s CSRF check or the shop's WAF; it refuses them.
func TestTrailingDotsAndSpacesCannotSwitchRoute(t *testing.T) {
	f := newFixture(t, plainYAML+noWAF+`services: [api]
routes:
  - name: admin
    path: /admin/
    service: api
    port: 9090
  - name: site
    service: api
    port: 9090
    csrf_off: true
`)
	be := f.backends["api"]
	for _, path := range []string{"/admin./users", "/admin../users", "/admin%2E/users", "/admin%20/users", "/admin.%20./users",
		"/admin%09/users", "/%20admin/users", "/x/..%20/admin/users", "/admin.;x/users"} {
		r := f.req("POST", path, strings.NewReader("role=admin"))
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Cookie", "session=victim")
		if code, body, _ := f.do(r); code != http.StatusForbidden {
			t.Errorf("POST %s: %d %q, want 403", path, code, body)
		}
	}
	if n := be.count.Load(); n != 0 {
		got, _ := be.lastRequest()
		t.Errorf("the backend served %d requests, the last %s", n, got.URL.RequestURI())
	}
	t.Log("dots and spaces that leave the route alone pass")
	for _, path := range []string{"/admin/users.", "/admin/users%20", "/about%20us", "/v1.2./x", "/administration."} {
		if code, body, _ := f.do(f.req("GET", path, nil)); code != 200 {
			t.Errorf("GET %s: %d %q", path, code, body)
		}
	}

	t.Log("the shop's WAF is not walked past through the static route")
	log, shop := newLoggedShop(t)
	for _, path := range []string{"/static/..%20/search", "/static/.. /search", "/static/..%09/search"} {
		c, br := shop.rawConn()
		fmt.Fprintf(c, "GET %s?q=%s HTTP/1.1\r\nHost: shop.example.org\r\n\r\n", strings.ReplaceAll(path, " ", "%20"), url.QueryEscape("1' UNION SELECT password FROM users--"))
		resp, err := http.ReadResponse(br, nil)
		if err != nil || (resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusForbidden) {
			t.Errorf("GET %s: %v %v, want a refusal", path, resp, err)
		}
	}
	for _, l := range log.all() {
		if strings.Contains(l, "UNION") {
			t.Errorf("the backend served %q", l)
		}
	}
}

// newLoggedShop is pathYAML's gateway in front of one backend for every
// route that reads each body whole and logs each request it serves.
func newLoggedShop(t *testing.T) (*servedLog, *fixture) {
	log := &servedLog{}
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		log.add(r)
		fmt.Fprintf(w, "served %s", r.URL.Path)
	})})
	return log, newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
}

// TestSmugglingFramesEveryRequest: the framing attacks of request
// smuggling (CL.TE, TE.CL, two lengths, an unknown coding, obs-fold,
// HTTP/1.0 keep-alive, pipelining) against the gateway. Every request the
// backend serves is one the gateway checked and answered under the same
// request ID: nothing rides into the backend inside another's body.
func TestSmugglingFramesEveryRequest(t *testing.T) {
	log, f := newLoggedShop(t)
	evil := "POST /account HTTP/1.1\r\nHost: shop.example.org\r\nOrigin: https://evil.example\r\nCookie: s=victim\r\nContent-Length: 0\r\n\r\n"
	for _, a := range []struct {
		name, raw string
		status    []int // the statuses the gateway answers, in order
	}{
		{"CL.TE", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + evil, []int{200, 403}},
		{"TE.CL", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(evil), evil), []int{200}},
		{"two lengths", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nContent-Length: 0\r\nContent-Length: " + fmt.Sprint(len(evil)) + "\r\n\r\n" + evil, []int{400}},
		{"chunked, identity", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + evil, []int{501}},
		{"identity, chunked", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + evil, []int{501}},
		{"TE with a space", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nTransfer-Encoding : chunked\r\nContent-Length: 0\r\n\r\n" + evil, []int{400}},
		{"obs-fold TE", "POST /static/a HTTP/1.1\r\nHost: shop.example.org\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n" + evil, []int{200, 403}},
		{"HTTP/1.0 keep-alive", "POST /static/a HTTP/1.0\r\nHost: shop.example.org\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n" + evil, []int{200, 403}},
		{"pipelined", "GET /static/a HTTP/1.1\r\nHost: shop.example.org\r\n\r\n" + evil, []int{200, 403}},
	} {
		c, br := f.rawConn()
		c.Write([]byte(a.raw))
		var got []int
		for range a.status {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			got = append(got, resp.StatusCode)
		}
		if !slices.Equal(got, a.status) {
			t.Errorf("%s: answered %v, want %v", a.name, got, a.status)
		}
		c.Close()
	}
	for _, l := range log.all() {
		if strings.HasPrefix(l, "POST /account") {
			t.Errorf("the cross-site POST reached the backend: %q", l)
		}
	}
}

// TestAuthorityIsTheHostRouted: the host the gateway routes on is the
// host the backend gets, however the client names it: an absolute-form
// target beside another Host (RFC 9112 section 3.2.2: the target's host
// wins), or HTTP/2's :authority beside a host header.
func TestAuthorityIsTheHostRouted(t *testing.T) {
	var log servedLog
	hosts := map[string]string{}
	var mu sync.Mutex
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		mu.Lock()
		hosts[r.Header.Get("X-Request-Id")] = r.Host
		mu.Unlock()
		fmt.Fprintf(w, "served %s", r.URL.Path)
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
	sqli := "/search?q=" + url.QueryEscape("1' UNION SELECT password FROM users--")

	c, br := f.rawConn()
	fmt.Fprintf(c, "GET http://shop.example.org%s HTTP/1.1\r\nHost: other.example\r\n\r\n", sqli)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("absolute-form to the shop with Host other.example: %d, want 403 from the shop route's WAF", resp.StatusCode)
	}
	c, br = f.rawConn()
	fmt.Fprintf(c, "GET http://other.example/x HTTP/1.1\r\nHost: shop.example.org\r\n\r\n")
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("absolute-form to another host: %v %v", resp, err)
	}
	if h := hosts[resp.Header.Get("X-Request-Id")]; h != "other.example" {
		t.Errorf("the backend got Host %q for a request routed as other.example", h)
	}

	t.Log("HTTP/2: :authority beside a host header")
	_, fr := f.h2Conn()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
		BlockFragment: headerBlock(":method", "GET", ":scheme", "https", ":authority", "shop.example.org", ":path", sqli, "host", "other.example")})
	status := h2Status(t, fr)
	if status != "403" && status != "400" && status != "reset" {
		t.Errorf(":authority shop.example.org, host other.example: %s, want the shop route's 403 or a refusal", status)
	}
	for _, l := range log.all() {
		if strings.HasPrefix(l, "GET /search") {
			t.Errorf("the backend served the injection by another route: %q", l)
		}
	}
}

// TestHTTP2ContinuationFlood: a header block that never ends (HEADERS
// without END_HEADERS, then CONTINUATION frames without end) is cut once
// it passes limits.max_header_bytes: the gateway closes the connection
// rather than buffer it (CVE-2024-27316's class).
func TestHTTP2ContinuationFlood(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	tc, fr := f.h2Conn()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true,
		BlockFragment: headerBlock(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/")})
	const limit = 64 << 20 // far past the 32 KiB default
	sent := 0
	errc := make(chan error, 1)
	go func() {
		var block bytes.Buffer
		e := hpack.NewEncoder(&block)
		for i := 0; sent < limit; i++ {
			block.Reset()
			e.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("a", 4000), Sensitive: true})
			if err := fr.WriteContinuation(1, false, block.Bytes()); err != nil {
				errc <- err
				return
			}
			sent += block.Len()
		}
		errc <- nil
	}()
	// The server's answer is GOAWAY or a closed connection; then the
	// writer stops at its next write.
	for {
		fm, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if _, ok := fm.(*http2.GoAwayFrame); ok {
			break
		}
	}
	tc.Close()
	if err := <-errc; err == nil {
		t.Errorf("the gateway took %d bytes of one header block", sent)
	}
	if n := f.backends["frontend"].count.Load(); n != 0 {
		t.Errorf("the backend served %d requests", n)
	}
}

// TestConnectNotForwarded: CONNECT, over HTTP/1.1 with a path or over
// HTTP/2 with its stream as body, is answered by the gateway: forwarded,
// its body would reach a backend that reads it as requests of its own.
func TestConnectNotForwarded(t *testing.T) {
	log, f := newLoggedShop(t)
	c, br := f.rawConn()
	fmt.Fprintf(c, "CONNECT /static/x HTTP/1.1\r\nHost: shop.example.org\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("HTTP/1.1 CONNECT with a path: %d, want 501", resp.StatusCode)
	}

	_, fr := f.h2Conn()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndHeaders: true,
		BlockFragment: headerBlock(":method", "CONNECT", ":authority", "shop.example.org:443")})
	fr.WriteData(1, true, []byte("GET /account?id=1%27+UNION+SELECT+1-- HTTP/1.1\r\nHost: shop.example.org\r\n\r\n"))
	status := h2Status(t, fr)
	if status != "501" && status != "reset" {
		t.Errorf("HTTP/2 CONNECT: %s, want 501", status)
	}
	// The marker shows the log is complete up to here.
	if code, _, _ := f.do(func() *http.Request { r := f.req("GET", "/static/marker", nil); r.Host = "shop.example.org"; return r }()); code != 200 {
		t.Fatalf("marker: %d", code)
	}
	for _, l := range log.all() {
		if strings.HasPrefix(l, "CONNECT") || strings.HasPrefix(l, "GET /account") {
			t.Errorf("the backend served %q", l)
		}
	}
}

// TestTraceNotForwarded: TRACE asks the service to echo the request as it
// arrived, the gateway's forwarding headers and the client's cookies and
// credentials with it (cross-site tracing), and servers such as Apache
// answer it by default. The gateway answers it itself, in any letter
// case (frameworks that upper-case methods take "trace" for TRACE), on
// routes with the WAF off too, where CRS's method list does not apply.
func TestTraceNotForwarded(t *testing.T) {
	log, f := newLoggedShop(t)
	for _, raw := range []string{
		"TRACE /static/a HTTP/1.1\r\nHost: shop.example.org\r\nCookie: s=victim\r\n\r\n",
		"trace /static/a HTTP/1.1\r\nHost: shop.example.org\r\n\r\n",
		"TRACE /a HTTP/1.1\r\nHost: other.example\r\n\r\n",
	} {
		c, br := f.rawConn()
		c.Write([]byte(raw))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusNotImplemented || strings.Contains(string(body), "victim") {
			t.Errorf("%q: %d %q, want 501", strings.SplitN(raw, "\r\n", 2)[0], resp.StatusCode, body)
		}
	}
	_, fr := f.h2Conn()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
		BlockFragment: headerBlock(":method", "TRACE", ":scheme", "https", ":authority", "shop.example.org", ":path", "/static/a")})
	if status := h2Status(t, fr); status != "501" {
		t.Errorf("HTTP/2 TRACE: %s, want 501", status)
	}
	if code, _, _ := f.do(func() *http.Request { r := f.req("GET", "/static/marker", nil); r.Host = "shop.example.org"; return r }()); code != 200 {
		t.Fatalf("marker: %d", code)
	}
	for _, l := range log.all() {
		if !strings.HasPrefix(l, "GET /static/marker") {
			t.Errorf("the backend served %q", l)
		}
	}
}
