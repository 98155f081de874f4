package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"moat/internal/testkit"
)

// plainYAML starts a gateway.yaml for tests without the redirect listener
// or rate limits; %s are the cert and key files.
const plainYAML = `listen: 127.0.0.1:0
redirect_listen: "off"
tls:
  cert_file: %s
  key_file: %s
rate_limit:
  off: true
`

// pathYAML is a shop whose static files are served without WAF or CSRF
// checks, whose pages have both, and a catch-all route for every other
// host without a WAF: the layout in which a path or host the gateway reads
// differently from the backend walks past the checks.
const pathYAML = plainYAML + `services: [static, shop, legacy]
routes:
  - name: static
    host: shop.example.org
    path: /static/
    service: static
    port: 80
    waf_off: true
    csrf_off: true
  - name: shop
    host: shop.example.org
    service: shop
    port: 80
  - name: api
    host: shop.example.org
    path: /api/
    service: shop
    port: 80
    encoded_slashes: keep
  - name: files
    host: shop.example.org
    path: /files/
    service: shop
    port: 80
    encoded_slashes: refuse
  - name: legacy
    host: "*"
    service: legacy
    port: 80
    waf_off: true
`

// nginxShop resolves dot segments and %2F as nginx does, and says which
// location answered.
const nginxShop = `
    location /static/ { return 200 "static $uri\n"; }
    location = /account { return 200 "account $request_method $uri\n"; }
    location / { return 200 "page $uri\n"; }
`

func newPathFixture(t *testing.T) (*fixture, *nginx) {
	ngx := startNginx(t, nginxShop)
	socks := map[string]string{"static": ngx.sock, "shop": ngx.sock, "legacy": ngx.sock}
	return newFixtureWith(t, pathYAML, socks), ngx
}

// waitServed sends a marker request through the gateway and returns nginx's
// log once the marker is in it: everything sent before has been logged.
func waitServed(t *testing.T, f *fixture, ngx *nginx) []string {
	t.Helper()
	marker := "/static/marker-" + newRequestID()
	r := f.req("GET", marker, nil)
	r.Host = "shop.example.org"
	if code, body, _ := f.do(r); code != 200 {
		t.Fatalf("marker request: %d %q", code, body)
	}
	deadline := time.Now().Add(testkit.WaitLimit)
	for {
		lines := ngx.served(t)
		if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, marker) }) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not log the marker within %s: %q", testkit.WaitLimit, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPathTraversalAcrossRoutes: a path that the route table reads as
// /static/ but the backend resolves to /account must not carry SQL
// injection or a cross-site POST past the checks of /account's route.
func TestPathTraversalAcrossRoutes(t *testing.T) {
	f, ngx := newPathFixture(t)
	sqli := "?id=" + url.QueryEscape("1' UNION SELECT password FROM users--")
	attacks := []struct {
		name, method, path string
	}{
		{"encoded slash", "GET", "/static/..%2faccount" + sqli},
		{"encoded slash, upper case", "GET", "/static/..%2Faccount" + sqli},
		{"encoded dots", "GET", "/static/%2e%2e/account" + sqli},
		{"all encoded", "GET", "/static/%2E%2E%2Faccount" + sqli},
		{"cross-site POST", "POST", "/static/..%2faccount"},
		{"cross-site POST, encoded dots", "POST", "/static/%2e%2e%2faccount"},
		{"overlong UTF-8 dots", "GET", "/static/%c0%ae%c0%ae/account" + sqli},
		{"overlong UTF-8 slash", "GET", "/static/..%c0%afaccount" + sqli},
		{"three-byte overlong dots", "GET", "/static/%e0%80%ae%e0%80%ae/account" + sqli},
	}
	for _, a := range attacks {
		r := f.req(a.method, a.path, strings.NewReader("email=attacker@evil.example"))
		r.Host = "shop.example.org"
		if a.method == "POST" {
			r.Header.Set("Origin", "https://evil.example")
			r.Header.Set("Cookie", "session=victim")
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		code, body, _ := f.do(r)
		t.Logf("%s %s: %d %q", a.method, a.path, code, strings.TrimSpace(body))
		if code != http.StatusForbidden {
			t.Errorf("%s: %d %q, want 403 (the raw and normalised paths pick different routes)", a.name, code, body)
		}
	}
	for _, l := range waitServed(t, f, ngx) {
		if strings.HasSuffix(l, "-> /account") {
			t.Errorf("nginx served /account: %q", l)
		}
	}
	if k := f.kinds(); len(k) != len(attacks) || slices.ContainsFunc(k, func(s string) bool { return s != KindPath }) {
		t.Errorf("events %v, want one %q event per attack", k, KindPath)
	}

	t.Log("paths that stay inside their route are forwarded in normal form")
	for path, want := range map[string]string{
		"/static//app.js":             "/static/app.js",
		"/static/./img/../app.js":     "/static/app.js",
		"/static/%61pp.js":            "/static/app.js",
		"/static/a%2fb.js":            "/static/a/b.js",
		"/static/x/..%2fapp.js":       "/static/app.js",
		"/static/caf%c3%a9.js?v=1":    "/static/caf%C3%A9.js?v=1",
		"/account/../static/../shop/": "/shop/",
	} {
		r := f.req("GET", path, nil)
		r.Host = "shop.example.org"
		code, body, _ := f.do(r)
		if code != 200 {
			t.Errorf("%s: %d %q", path, code, body)
			continue
		}
		lines := waitServed(t, f, ngx)
		got := lines[len(lines)-2]
		if !strings.HasPrefix(got, "GET "+want+" ") {
			t.Errorf("%s: nginx received %q, want %s", path, got, want)
		}
	}

	t.Log("a path that climbs above the root, or carries what only an attack sends, is refused as one")
	for path, want := range map[string]int{
		"/static/../../etc/passwd": http.StatusForbidden,
		"/static/..;/account":      http.StatusForbidden,
		"/static/a%00.js":          http.StatusForbidden,
		"/static/%c0%ae%c0%ae/x":   http.StatusForbidden,
	} {
		r := f.req("GET", path, nil)
		r.Host = "shop.example.org"
		if code, _, _ := f.do(r); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
}

// TestEncodedSlashesPerRoute: a route may forward %2F as sent, but not
// when a backend decoding it would land on another route; or refuse it.
func TestEncodedSlashesPerRoute(t *testing.T) {
	f, ngx := newPathFixture(t)
	for _, c := range []struct {
		path string
		want int
		got  string // what nginx received, when answered
	}{
		{"/api/projects/group%2frepo/../issues", 200, "/api/projects/issues"},
		{"/api/projects/group%2Frepo", 200, "/api/projects/group%2Frepo"},
		{"/api/projects/group%5Crepo", 200, "/api/projects/group%5Crepo"},
		{"/api/..%2faccount", 403, ""},
		{"/api/x/..%2f..%2f..%2faccount", 403, ""},
		{"/files/report.pdf", 200, "/files/report.pdf"},
		{"/files/a%2fb.pdf", 403, ""},
		{"/files/a\\b.pdf", 403, ""},
	} {
		r := f.req("GET", c.path, nil)
		r.Host = "shop.example.org"
		code, body, _ := f.do(r)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.path, code, body, c.want)
			continue
		}
		if c.got != "" {
			lines := waitServed(t, f, ngx)
			if got := lines[len(lines)-2]; !strings.HasPrefix(got, "GET "+c.got+" ") {
				t.Errorf("%s: nginx received %q, want %s", c.path, got, c.got)
			}
		}
	}
	for _, l := range waitServed(t, f, ngx) {
		if strings.HasSuffix(l, "-> /account") {
			t.Errorf("nginx served /account: %q", l)
		}
	}
}

// TestWAFSeesNormalisedPath: the WAF inspects the path the backend gets.
func TestWAFSeesNormalisedPath(t *testing.T) {
	f, _ := newPathFixture(t)
	r := f.req("GET", "/x/%2e%2e/search?q="+url.QueryEscape("1' UNION SELECT password FROM users--"), nil)
	r.Host = "shop.example.org"
	if code, _, _ := f.do(r); code != http.StatusForbidden {
		t.Errorf("SQLi under a resolved path: %d, want 403", code)
	}
	recs := f.events.all()
	if len(recs) != 1 || recs[0].HTTPRequest.URL.Path != "/search" || recs[0].Unmapped.Route != "shop" {
		t.Errorf("events %+v", recs)
	}
}

// TestTrailingDotHost: "shop.example.org." is shop.example.org, not a
// stranger for the catch-all route.
func TestTrailingDotHost(t *testing.T) {
	f, ngx := newPathFixture(t)
	for _, host := range []string{"shop.example.org.", "SHOP.Example.ORG.", "shop.example.org.:443"} {
		r := f.req("GET", "/search?q="+url.QueryEscape("1' UNION SELECT password FROM users--"), nil)
		r.Host = host
		code, body, _ := f.do(r)
		if code != http.StatusForbidden {
			t.Errorf("Host %q: %d %q, want 403 from the shop route's WAF", host, code, body)
		}
		r = f.req("POST", "/account", strings.NewReader("email=attacker@evil.example"))
		r.Host = host
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Cookie", "session=victim")
		if code, body, _ := f.do(r); code != http.StatusForbidden {
			t.Errorf("Host %q, cross-site POST: %d %q, want 403 from the shop route's CSRF check", host, code, body)
		}
	}
	for _, rec := range f.events.all() {
		if rec.Unmapped.Route != "shop" {
			t.Errorf("event on route %q, want shop", rec.Unmapped.Route)
		}
	}

	t.Log("the backend gets the host in normal form; a same-origin POST from the dotted name passes")
	r := f.req("POST", "/account", strings.NewReader("email=me@example.org"))
	r.Host = "shop.example.org."
	r.Header.Set("Origin", "https://shop.example.org.")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, body, _ := f.do(r); code != 200 || body != "account POST /account\n" {
		t.Fatalf("same-origin POST: %d %q", code, body)
	}
	lines := waitServed(t, f, ngx)
	if got := lines[len(lines)-2]; got != "POST /account shop.example.org -> /account" {
		t.Errorf("nginx logged %q", got)
	}

	t.Log("a host that is not a name is refused")
	r = f.req("GET", "/", nil)
	r.Host = "shop.example.org.."
	if code, _, _ := f.do(r); code != http.StatusBadRequest {
		t.Errorf("Host with two trailing dots: %d, want 400", code)
	}
}

// TestHostPortIsANumber: the gateway routes on the host name alone, so a
// port the client makes up ("shop.example.org:abc", ":+443", ":99999")
// went unread to the service in Host and X-Forwarded-Host, where the
// links, redirects and cache keys it builds from them carry it (web cache
// poisoning by Host port). A port that is not a number from 1 to 65535 is
// refused, over HTTP/1.1, HTTP/2 and on the redirect port; an empty one
// is dropped. A request without a host is refused too.
func TestHostPortIsANumber(t *testing.T) {
	ngx := startNginx(t, nginxShop)
	socks := map[string]string{"static": ngx.sock, "shop": ngx.sock, "legacy": ngx.sock}
	f := newFixtureWith(t, strings.Replace(pathYAML, `redirect_listen: "off"`, "redirect_listen: 127.0.0.1:0", 1), socks)
	bad := []string{"shop.example.org:abc", "shop.example.org:+443", "shop.example.org:99999", "shop.example.org:0",
		"shop.example.org:0443", "shop.example.org:443x", "[::1]:8o", "shop.example.org:-1"}
	for _, host := range bad {
		c, br := f.rawConn()
		fmt.Fprintf(c, "GET /static/x HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("HTTP/1.1 Host %q: %v %v, want 400", host, resp, err)
		}
		_, fr := f.h2Conn()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
			BlockFragment: headerBlock(":method", "GET", ":scheme", "https", ":authority", host, ":path", "/static/x")})
		if status := h2Status(t, fr); status != "400" && status != "reset" {
			t.Errorf("HTTP/2 :authority %q: %s, want 400", host, status)
		}
		rc, err := net.Dial("tcp", f.gw.RedirectAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(rc, "GET /static/x HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		if resp, err := http.ReadResponse(bufio.NewReader(rc), nil); err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("redirect port, Host %q: %v %v, want 400", host, resp, err)
		}
		rc.Close()
	}
	t.Log("HTTP/1.0 without a Host is refused: the service would get its mesh name as Host")
	c, br := f.rawConn()
	io.WriteString(c, "GET /static/x HTTP/1.0\r\n\r\n")
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("HTTP/1.0 without Host: %v %v, want 400", resp, err)
	}

	t.Log("a number passes as sent; an empty port is dropped")
	for _, c := range []struct{ host, want string }{
		{"shop.example.org:8443", "GET /static/y shop.example.org:8443 -> /static/y"},
		{"shop.example.org:", "GET /static/y shop.example.org -> /static/y"},
	} {
		conn, br := f.rawConn()
		fmt.Fprintf(conn, "GET /static/y HTTP/1.1\r\nHost: %s\r\n\r\n", c.host)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("Host %q: %v %v", c.host, resp, err)
		}
		lines := waitServed(t, f, ngx)
		if got := lines[len(lines)-2]; got != c.want {
			t.Errorf("Host %q: nginx logged %q, want %q", c.host, got, c.want)
		}
	}
	for _, l := range ngx.served(t) {
		if strings.Contains(l, "/static/x") {
			t.Errorf("nginx served %q", l)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	for _, c := range []struct {
		in, decode, keep string
		err              bool
	}{
		{in: "", decode: "/", keep: "/"},
		{in: "/", decode: "/", keep: "/"},
		{in: "/a/b", decode: "/a/b", keep: "/a/b"},
		{in: "/a//b///c/", decode: "/a/b/c/", keep: "/a/b/c/"},
		{in: "/a/./b/../c", decode: "/a/c", keep: "/a/c"},
		{in: "/a/b/..", decode: "/a/", keep: "/a/"},
		{in: "/a/b/.", decode: "/a/b/", keep: "/a/b/"},
		{in: "/a/%2e%2E/b", decode: "/b", keep: "/b"},
		{in: "/a/.%2e/b", decode: "/b", keep: "/b"},
		{in: "/a/..%2fb", decode: "/b", keep: "/a/..%2Fb"},
		{in: "/a/..%5Cb", decode: "/b", keep: "/a/..%5Cb"},
		{in: "/a/..\\b", decode: "/b", keep: "/a/..%5Cb"},
		{in: "/%7euser/%41%2d%5f", decode: "/~user/A-_", keep: "/~user/A-_"},
		{in: "/a%20b/%c3%a9", decode: "/a%20b/%C3%A9", keep: "/a%20b/%C3%A9"},
		{in: "/a%252fb", decode: "/a%252fb", keep: "/a%252fb"},
		{in: "/a/b%3Bc", decode: "/a/b%3Bc", keep: "/a/b%3Bc"},
		{in: "/a;b/c;d", decode: "/a;b/c;d", keep: "/a;b/c;d"},
		{in: "/..", err: true},
		{in: "/a/../..", err: true},
		{in: "/%2e%2e/x", err: true},
		{in: "/a/..;/b", err: true},
		{in: "/a/.;x/b", err: true},
		{in: "/a%00b", err: true},
		{in: "/a%", err: true},
		{in: "/a%zz", err: true},
		{in: "a/b", err: true},
		{in: "/a/%c0%ae%c0%ae/b", err: true},
		{in: "/a/%C1%9C", err: true},
		{in: "/a/%e0%80%af", err: true},
		{in: "/a/%F0%80%80%AE", err: true},
		{in: "/a/%E0%A4%85/%F0%9F%98%80", decode: "/a/%E0%A4%85/%F0%9F%98%80", keep: "/a/%E0%A4%85/%F0%9F%98%80"},
	} {
		got, err := normalizePath(c.in, slashDecode)
		if c.err {
			if err == nil {
				t.Errorf("normalizePath(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.decode {
			t.Errorf("normalizePath(%q, decode) = %q, %v; want %q", c.in, got, err, c.decode)
		}
		if got, err := normalizePath(c.in, slashKeep); err != nil || got != c.keep {
			t.Errorf("normalizePath(%q, keep) = %q, %v; want %q", c.in, got, err, c.keep)
		}
		_, err = normalizePath(c.in, slashRefuse)
		if wantErr := c.keep != c.decode; (err != nil) != wantErr {
			t.Errorf("normalizePath(%q, refuse): %v", c.in, err)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/a/..%2fb", "/%2e%2e/", "//a//", "/a/b%3B/..;/",
		"/products", "/api/v1/", "/a;x=1/b", "/.well-known/x", "/a/.", "/a/..", "/a/b.", "/a\\b", "/a b",
		"/~u/x:y@z!$&'()*+,=", "/a//", "/\x00", "/caf\xc3\xa9", "a/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, m := range []string{slashDecode, slashKeep, slashRefuse} {
			if inNormalForm(in) {
				// The shortcut answers only for paths the full reading
				// leaves as they are.
				if full, err := normalizeSegments(in, m); err != nil || full != in {
					t.Fatalf("%s: %q taken as in normal form, which is %q, %v", m, in, full, err)
				}
			}
			out, err := normalizePath(in, m)
			if err != nil {
				continue
			}
			// Normal form is a fixed point: normalising it again changes nothing.
			again, err := normalizePath(out, m)
			if err != nil || again != out {
				t.Fatalf("%s: %q -> %q -> %q, %v", m, in, out, again, err)
			}
			if _, err := url.ParseRequestURI(out); err != nil {
				t.Fatalf("%s: %q -> %q is not a request URI: %v", m, in, out, err)
			}
		}
	})
}

// normalizeHostSpec is normalizeHost as first written, without its
// shortcuts: the reference its answers must match.
func normalizeHostSpec(hostport string) (host string, ok bool) {
	h := hostport
	if sh, port, err := net.SplitHostPort(hostport); err == nil {
		if port != "" && !validPort(port) {
			return "", false
		}
		h = sh
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	if h == "" {
		return "", hostport == ""
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", false
		}
		return a.Unmap().String(), true
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if len(h) == 0 || len(h) > 253 {
		return "", false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return h, true
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"", "localhost", "Shop.Example.org.:443", "shop..example", ".", "a.", "[::1]", "[::1]:8443",
		"::1", "127.0.0.1", "127.0.0.1:80", "127.000.0.1", "1.2.3", "1.2.3.4.", "[1.2.3.4]", "[abc]", "[abc]:1", "fe80::1%eth0",
		"[fe80::1%25eth0]:80", "::ffff:10.0.0.1", "host:", "host:0", "host:+1", "ho st", "xn--bcher-kva.example", "a_b.c",
		"0x7f.1", "1e1", "[]", "]", "[", "localhost:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		host, ok := normalizeHost(in)
		wantHost, wantOK := normalizeHostSpec(in)
		if host != wantHost || ok != wantOK {
			t.Fatalf("normalizeHost(%q) = %q, %v; want %q, %v", in, host, ok, wantHost, wantOK)
		}
	})
}
