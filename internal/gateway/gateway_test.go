package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"moat/internal/testkit"
)

const noWAF = "waf:\n  disabled: true\n"

func TestProxyHeadersAndHSTS(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	r := f.req("GET", "/api/items?x=1", nil)
	r.Header.Set("X-Request-ID", "client-chosen")
	r.Header.Set("X-Forwarded-For", "6.6.6.6")
	code, body, resp := f.do(r)
	if code != 200 || body != "ok GET /api/items" {
		t.Fatalf("got %d %q", code, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("negotiated %s, want HTTP/2", resp.Proto)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "max-age=31536000" {
		t.Errorf("HSTS %q", hsts)
	}
	id := resp.Header.Get("X-Request-ID")
	if len(id) != 32 {
		t.Errorf("request id %q", id)
	}
	got, _ := f.backends["api"].lastRequest()
	if v := got.Header.Get("X-Request-ID"); v != id {
		t.Errorf("backend X-Request-ID %q, client saw %q", v, id)
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q: an untrusted peer's header must be replaced", v)
	}
	if v := got.Header.Get("Forwarded"); v != "" {
		t.Errorf("client's Forwarded header reached the backend: %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Proto"); v != "https" {
		t.Errorf("X-Forwarded-Proto %q", v)
	}
	if f.backends["frontend"].count.Load() != 0 {
		t.Error("/api/ request reached the frontend")
	}
	t.Log("HTTP/1.1 works too, and hop-by-hop headers stop at the gateway")
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"}}}
	r = f.req("GET", "/", nil)
	r.Header.Set("Connection", "X-Secret-Hop")
	r.Header.Set("X-Secret-Hop", "drop me")
	r.Header.Set("Keep-Alive", "timeout=5")
	r.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	resp, err := h1.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.1: %s %d", resp.Proto, resp.StatusCode)
	}
	got, _ = f.backends["frontend"].lastRequest()
	for _, h := range []string{"X-Secret-Hop", "Keep-Alive", "Proxy-Authorization"} {
		if got.Header.Get(h) != "" {
			t.Errorf("hop-by-hop header %s reached the backend", h)
		}
	}
}

func TestTLSRefusesOldVersionsAndCBC(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	addr := f.gw.Addr().String()
	for _, c := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.1", &tls.Config{MaxVersion: tls.VersionTLS11}},
		{"TLS 1.0", &tls.Config{MaxVersion: tls.VersionTLS10}},
		{"CBC on 1.2", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}}},
	} {
		c.cfg.RootCAs, c.cfg.ServerName = f.pool, "localhost"
		conn, err := tls.Dial("tcp", addr, c.cfg)
		if err == nil {
			conn.Close()
			t.Errorf("%s: handshake succeeded, want refusal", c.name)
		}
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: f.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2 AEAD: %v", err)
	}
	cs := conn.ConnectionState()
	conn.Close()
	t.Logf("TLS 1.2 negotiated %s", tls.CipherSuiteName(cs.CipherSuite))
	if !strings.Contains(tls.CipherSuiteName(cs.CipherSuite), "GCM") && !strings.Contains(tls.CipherSuiteName(cs.CipherSuite), "CHACHA20") {
		t.Errorf("non-AEAD suite %s", tls.CipherSuiteName(cs.CipherSuite))
	}
}

func TestRedirect(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	_, port, _ := net.SplitHostPort(f.gw.Addr().String())
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	raddr := "http://" + f.gw.RedirectAddr().String()
	req, _ := http.NewRequest("GET", raddr+"/shop/cart?id=3", nil)
	req.Host = "app.example"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("status %d, want 308", resp.StatusCode)
	}
	if loc, want := resp.Header.Get("Location"), "https://app.example:"+port+"/shop/cart?id=3"; loc != want {
		t.Errorf("Location %q, want %q", loc, want)
	}
	if f.backends["frontend"].count.Load() != 0 {
		t.Error("plain HTTP request reached a backend")
	}
	// A host that is not a host name gets no redirect.
	conn, err := net.Dial("tcp", f.gw.RedirectAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET / HTTP/1.1\r\nHost: evil.example/@x\r\n\r\n"))
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("odd Host: status %d, want 400", resp.StatusCode)
	}
}

// TestRedirectStaysOnRoutedHosts: the plain-HTTP redirect leads only to
// the HTTPS side of a host the gateway routes, however the request line
// is written: an opaque target ("http:.evil.example/x") would otherwise
// continue the host name in Location.
func TestRedirectStaysOnRoutedHosts(t *testing.T) {
	f := newFixture(t, `listen: 127.0.0.1:0
redirect_listen: 127.0.0.1:0
redirect_port: 443
tls:
  cert_file: %s
  key_file: %s
services: [frontend]
routes:
  - host: app.example
    service: frontend
    port: 8080
`+noWAF)
	for _, c := range []struct {
		line, host string
		want       int
		location   string
	}{
		{"/shop?id=3", "app.example", 308, "https://app.example/shop?id=3"},
		{"//evil.example/x", "app.example", 308, "https://app.example//evil.example/x"},
		{"http://app.example/x", "other.example", 308, "https://app.example/x"},
		{"http:.evil.example/x", "app.example", 400, ""},
		{"http:evil.example", "app.example", 400, ""},
		{"/x", "evil.example", 404, ""},
		{"http://evil.example/x", "app.example", 404, ""},
	} {
		conn, err := net.Dial("tcp", f.gw.RedirectAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", c.line, c.host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", c.line, err)
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode != c.want || loc != c.location {
			t.Errorf("GET %s, Host %s: %d Location %q, want %d %q", c.line, c.host, resp.StatusCode, loc, c.want, c.location)
		}
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"rate_limit:\n  rps: 1\n  burst: 2\n")
	for i := range 2 {
		if code, _, _ := f.do(f.req("GET", "/", nil)); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	code, body, resp := f.do(f.req("GET", "/", nil))
	if code != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("third request: %d Retry-After %q", code, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, resp.Header.Get("X-Request-ID")) {
		t.Errorf("refusal body %q lacks the request id", body)
	}
	if n := f.backends["frontend"].count.Load(); n != 2 {
		t.Errorf("backend saw %d requests, want 2", n)
	}
	t.Log("a second later one token is back")
	f.advance(time.Second)
	if code, _, _ := f.do(f.req("GET", "/", nil)); code != 200 {
		t.Errorf("after refill: %d", code)
	}
	if code, _, _ := f.do(f.req("GET", "/", nil)); code != 429 {
		t.Errorf("after refill, second: %d", code)
	}
	if k := f.kinds(); !slices.Equal(k, []string{KindRateLimit, KindRateLimit}) {
		t.Errorf("events %v", k)
	}
	rec := f.events.all()[0]
	if rec.ClassUID != 4002 || rec.HTTPResponse.Code != 429 || rec.Unmapped.Route != "frontend" || rec.SrcEndpoint.IP != "127.0.0.1" {
		t.Errorf("event %+v", rec)
	}
}

func TestCSRF(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n    allowed_origins: [\"https://app.example\"]\n", 1) + noWAF
	f := newFixture(t, yaml)
	cases := []struct {
		name, method, origin, referer, cookie string
		want                                  int
	}{
		{"GET needs nothing", "GET", "", "", "s=1", 200},
		{"allowed origin", "POST", "https://app.example", "", "s=1", 200},
		{"origin case", "PUT", "HTTPS://APP.EXAMPLE", "", "", 200},
		{"foreign origin", "POST", "https://evil.example", "", "", 403},
		{"foreign origin DELETE", "DELETE", "https://evil.example", "", "", 403},
		{"referer allowed", "PATCH", "", "https://app.example/page?q=1", "s=1", 200},
		{"referer foreign", "POST", "", "https://evil.example/x", "", 403},
		{"http scheme is another origin", "POST", "http://app.example", "", "", 403},
		{"neither, with cookies", "POST", "", "", "s=1", 403},
		{"neither, no cookies", "POST", "", "", "", 200},
		{"null origin", "POST", "null", "", "", 403},
		{"unknown method", "PROPPATCH", "https://evil.example", "", "s=1", 403},
		{"method in lower case", "post", "https://evil.example", "", "s=1", 403},
		{"method not in the list", "PURGE", "https://evil.example", "", "", 403},
		{"another port", "POST", "https://app.example:8443", "", "s=1", 403},
		{"the default port written out", "POST", "https://app.example:443", "", "s=1", 200},
		{"referer on a look-alike host", "POST", "", "https://app.example.evil.example/x", "s=1", 403},
		{"referer with the site as user info", "POST", "", "https://app.example@evil.example/x", "s=1", 403},
		{"referer over http", "POST", "", "http://app.example/x", "s=1", 403},
		{"null origin with a foreign referer", "POST", "null", "https://evil.example/x", "s=1", 403},
	}
	t.Log("a route may opt out (bearer-token APIs)")
	defer func() {
		f.write(strings.Replace(yaml, noWAF, "  - name: tokens\n    service: api\n    port: 9090\n    path: /tokens/\n    csrf_off: true\n"+noWAF, 1))
		if err := f.gw.Reload(); err != nil {
			t.Fatal(err)
		}
		r := f.req("POST", "/tokens/x", strings.NewReader("a=1"))
		r.Header.Set("Origin", "https://evil.example")
		if code, _, _ := f.do(r); code != 200 {
			t.Errorf("csrf_off route: %d", code)
		}
	}()
	for _, c := range cases {
		r := f.req(c.method, "/api/orders", strings.NewReader("a=1"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.referer != "" {
			r.Header.Set("Referer", c.referer)
		}
		if c.cookie != "" {
			r.Header.Set("Cookie", c.cookie)
		}
		if code, _, _ := f.do(r); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
	n := 0
	for _, k := range f.kinds() {
		if k == KindCSRF {
			n++
		}
	}
	if n != 14 {
		t.Errorf("%d csrf events, want 14", n)
	}
}

// TestCSRFBrowserSignals: where a browser gives no Origin to judge, or two,
// the request is not taken for the site's own.
func TestCSRFBrowserSignals(t *testing.T) {
	f := newFixture(t, strings.Replace(baseYAML, "    path: /api/\n", "    path: /api/\n    allowed_origins: [\"https://app.example\"]\n", 1)+noWAF)
	for _, c := range []struct {
		name    string
		headers [][2]string
		want    int
	}{
		// A page of the site sandboxed into an opaque origin (user content
		// served with CSP sandbox) sends Origin "null" and the site as
		// Referer; the browser says the context is cross-site.
		{"sandboxed page of the site", [][2]string{{"Origin", "null"}, {"Referer", "https://app.example/uploads/x.html"}, {"Sec-Fetch-Site", "cross-site"}, {"Cookie", "s=1"}}, 403},
		{"no Origin, cross-site", [][2]string{{"Sec-Fetch-Site", "cross-site"}}, 403},
		{"no Origin, same-site subdomain", [][2]string{{"Referer", "https://app.example/"}, {"Sec-Fetch-Site", "same-site"}, {"Cookie", "s=1"}}, 403},
		{"two Origins", [][2]string{{"Origin", "https://app.example"}, {"Origin", "https://evil.example"}}, 403},
		{"Referer of the site, same-origin context", [][2]string{{"Origin", "null"}, {"Referer", "https://app.example/form"}, {"Sec-Fetch-Site", "same-origin"}, {"Cookie", "s=1"}}, 200},
		{"allowed Origin", [][2]string{{"Origin", "https://app.example"}, {"Sec-Fetch-Site", "cross-site"}, {"Cookie", "s=1"}}, 200},
	} {
		r := f.req("POST", "/api/orders", strings.NewReader("a=1"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, h := range c.headers {
			r.Header.Add(h[0], h[1])
		}
		if code, body, _ := f.do(r); code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.want)
		}
	}
	t.Log("without a port in Host, or with the default one, the site's own origin is allowed")
	f.write(baseYAML + noWAF)
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"shop.example.org", "shop.example.org:443"} {
		r := f.req("POST", "/", strings.NewReader("a=1"))
		r.Host = host
		r.Header.Set("Origin", "https://shop.example.org")
		r.Header.Set("Cookie", "s=1")
		if code, body, _ := f.do(r); code != 200 {
			t.Errorf("Host %q, own origin: %d %q", host, code, body)
		}
	}
}

func TestIPListsAndTrustedProxies(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"trusted_proxies: [127.0.0.1]\nip_deny: [203.0.113.0/24, \"2001:db8::/32\"]\n")
	cases := []struct {
		xff      string
		want     int
		wantSeen string
	}{
		{"", 200, "127.0.0.1"},
		{"198.51.100.7", 200, "198.51.100.7, 127.0.0.1"},
		{"203.0.113.9", 403, ""},
		{"203.0.113.9, 198.51.100.7", 200, "203.0.113.9, 198.51.100.7, 127.0.0.1"}, // the client is the rightmost untrusted hop
		{"198.51.100.7, 203.0.113.9", 403, ""},
		{"2001:db8::1", 403, ""},
		{"2001:db8::1%eth0", 403, ""}, // a zone does not take the address out of the list
		// Proxies that write the client's port (Azure Application
		// Gateway, IIS ARR): the address is the client all the same.
		{"203.0.113.9:51234", 403, ""},
		{"[2001:db8::1]:443", 403, ""},
		{"[2001:db8::1]", 403, ""},
		{"198.51.100.7:51234", 200, "198.51.100.7:51234, 127.0.0.1"},
		// A client the trusted proxy names unreadably is not the proxy:
		// the lists cannot judge it, so it is refused.
		{"not-an-ip", 403, ""},
		{"203.0.113.9, unknown", 403, ""},
	}
	for _, c := range cases {
		r := f.req("GET", "/", nil)
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		code, _, _ := f.do(r)
		if code != c.want {
			t.Errorf("XFF %q: %d, want %d", c.xff, code, c.want)
			continue
		}
		if code == 200 {
			got, _ := f.backends["frontend"].lastRequest()
			if v := got.Header.Get("X-Forwarded-For"); v != c.wantSeen {
				t.Errorf("XFF %q: backend saw %q, want %q", c.xff, v, c.wantSeen)
			}
		}
	}
	recs := f.events.all()
	if len(recs) != 9 || recs[0].Unmapped.Kind != KindIPDeny || recs[0].SrcEndpoint.IP != "203.0.113.9" || recs[3].SrcEndpoint.IP != "2001:db8::1" ||
		recs[4].SrcEndpoint.IP != "203.0.113.9" || recs[5].SrcEndpoint.IP != "2001:db8::1" || !strings.Contains(recs[7].Message, "unreadable") {
		t.Errorf("events %+v", recs)
	}

	t.Log("a trusted proxy that names the client only in Forwarded, which the gateway does not read, is refused too")
	r := f.req("GET", "/", nil)
	r.Header.Set("Forwarded", "for=203.0.113.9")
	if code, _, _ := f.do(r); code != http.StatusForbidden {
		t.Errorf("Forwarded alone from a trusted proxy: %d, want 403", code)
	}

	t.Log("without IP lists, a client named unreadably is counted as its proxy")
	f.write(baseYAML + noWAF + "trusted_proxies: [127.0.0.1]\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	r = f.req("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "not-an-ip")
	if code, _, _ := f.do(r); code != 200 {
		t.Errorf("unreadable XFF without IP lists: %d, want 200", code)
	}

	t.Log("without trusted_proxies the header is ignored")
	f.write(baseYAML + noWAF + "ip_deny: [203.0.113.0/24]\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	r = f.req("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if code, _, _ := f.do(r); code != 200 {
		t.Errorf("untrusted peer's XFF was believed: %d", code)
	}

	t.Log("an allow list admits only its members; a reload applies it")
	f.write(baseYAML + noWAF + "ip_allow: [10.0.0.0/8]\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := f.do(f.req("GET", "/", nil)); code != 403 {
		t.Errorf("127.0.0.1 outside the allow list: %d", code)
	}
}

func TestSlowloris(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"limits:\n  read_header_timeout: 1s\n  max_conns_per_ip: 64\n")
	addr := f.gw.Addr().String()
	const slow = 20
	var conns []*tls.Conn
	for range slow {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: f.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n"))
		conns = append(conns, c)
	}
	t.Logf("%d connections are sending headers slowly", slow)
	for _, c := range conns {
		c.Write([]byte("X-a: b\r\n"))
	}
	if code, _, _ := f.do(f.req("GET", "/", nil)); code != 200 {
		t.Fatalf("normal client: %d", code)
	}
	t.Log("the server drops the slow connections after read_header_timeout")
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(testkit.WaitLimit)) // a guard: the server's timeout is 1s
		buf := make([]byte, 512)
		var err error
		for err == nil {
			_, err = c.Read(buf)
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("slow connection %d still open after %s", i, testkit.WaitLimit)
		}
	}
	if n := f.backends["frontend"].count.Load(); n != 1 {
		t.Errorf("backend saw %d requests, want 1", n)
	}
}

func TestConnCapPerIP(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"limits:\n  max_conns_per_ip: 2\n")
	addr := f.gw.Addr().String()
	cfg := &tls.Config{RootCAs: f.pool, ServerName: "localhost"}
	for range 2 {
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if c, err := tls.Dial("tcp", addr, cfg); err == nil {
		c.Close()
		t.Fatal("third connection from one IP was accepted")
	}
	// The refusal's event is written after the connection is closed, so
	// the client may see the close first: wait for it, within a bound.
	waitFor(t, "the refusal's event", func() bool { return len(f.kinds()) > 0 })
	if k := f.kinds(); len(k) != 1 || k[0] != KindRateLimit {
		t.Errorf("events %v", k)
	}
}

// TestRedirectConnCapPerIP: the plain-HTTP port caps connections per
// client as the HTTPS one does; without it one client holding idle
// keep-alive connections there takes the file descriptors both share.
func TestRedirectConnCapPerIP(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"limits:\n  max_conns_per_ip: 2\n")
	addr := f.gw.RedirectAddr().String()
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusPermanentRedirect {
			t.Fatalf("redirect: %v %v", resp, err)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Fatalf("a third connection from one client was served: %d", resp.StatusCode)
	}
	waitFor(t, "the refusal's event", func() bool { return len(f.kinds()) > 0 })
	if rec := f.events.all()[0]; rec.Unmapped.Kind != KindRateLimit || rec.DstEndpoint.Port != f.gw.RedirectAddr().(*net.TCPAddr).Port {
		t.Errorf("event %+v at %+v", rec.Unmapped, rec.DstEndpoint)
	}
	t.Log("the HTTPS port counts its own connections")
	if code, _, _ := f.do(f.req("GET", "/", nil)); code != 200 {
		t.Errorf("HTTPS while the plain port is at its cap: %d", code)
	}
}

func TestHotReload(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	if code, _, _ := f.do(f.req("GET", "/new/x", nil)); code != 200 || f.backends["frontend"].count.Load() != 1 {
		t.Fatalf("before: %d", code)
	}
	t.Log("a good change is picked up from the file")
	good := baseYAML + "  - name: new\n    service: api\n    port: 9090\n    path: /new/\n" + noWAF
	f.write(good)
	waitFor(t, "the changed file to be applied", func() bool {
		f.do(f.req("GET", "/new/x", nil))
		return f.backends["api"].count.Load() > 0
	})
	t.Log("a bad change is refused and the running config keeps serving")
	for _, bad := range []string{
		strings.Replace(good, "service: api\n    port: 9090\n    path: /new/", "service: billing\n    port: 9090\n    path: /new/", 1),
		good + "ip_deny: [300.1.1.1]\n",
		good + "bogus: 1\n",
		"routes: [",
	} {
		f.write(bad)
		err := f.gw.Reload()
		if err == nil {
			t.Fatalf("bad file accepted:\n%s", bad)
		}
		t.Logf("refused: %v", err)
		before := f.backends["api"].count.Load()
		if code, _, _ := f.do(f.req("GET", "/new/x", nil)); code != 200 || f.backends["api"].count.Load() != before+1 {
			t.Fatalf("after a bad reload the old routes stopped: %d", code)
		}
	}
}

func TestCertReload(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	serial := func() string {
		c, err := tls.Dial("tcp", f.gw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old := serial()
	// A connection opened before the swap keeps working after it.
	keep, err := tls.Dial("tcp", f.gw.Addr().String(), &tls.Config{RootCAs: f.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	dir := t.TempDir()
	c2, k2, _ := writeCert(t, dir, "gw2")
	for _, p := range [][2]string{{c2, f.certFile}, {k2, f.keyFile}} {
		b, _ := os.ReadFile(p[0])
		os.WriteFile(p[1]+".tmp", b, 0o600)
		os.Rename(p[1]+".tmp", p[1])
	}
	waitFor(t, "the new certificate to be served", func() bool { return serial() != old })
	keep.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(keep), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("connection opened before the reload: %v", err)
	}
	t.Log("a broken certificate file is not loaded; the current one stays")
	// The swap above wrote the certificate and the key one after the
	// other, and a reload between the two may already have failed: wait
	// for a failure after the broken file, not for any.
	failed := func() int { return strings.Count(f.log.String(), "certificate reload failed") }
	before := failed()
	os.WriteFile(f.certFile, []byte("garbage"), 0o600)
	waitFor(t, "the broken file to be refused", func() bool { return failed() > before })
	if s := serial(); s == old {
		t.Fatal("went back to the old certificate")
	}
}

// TestGetCertificateHook: a caller-supplied certificate source (moat's CA
// later) replaces the PEM files, which are then not needed.
func TestGetCertificateHook(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir, "hook")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	name := dir + "/gw.yaml"
	os.WriteFile(name, []byte("listen: 127.0.0.1:0\nredirect_listen: \"off\"\nservices: [web]\nwaf:\n  disabled: true\nroutes:\n  - service: web\n    port: 80\n"), 0o600)
	be := newBackend(t)
	calls := 0
	g, err := New(Config{
		File: name,
		Dial: func(ctx context.Context, service string, port int) (net.Conn, error) {
			return net.Dial("tcp", be.srv.Listener.Addr().String())
		},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { calls++; return &cert, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := c.Get("https://" + g.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || calls == 0 || g.RedirectAddr() != nil {
		t.Errorf("status %d, hook calls %d, redirect %v", resp.StatusCode, calls, g.RedirectAddr())
	}

	t.Log("without the hook the file must name a certificate")
	if _, err := New(Config{File: name, Dial: func(context.Context, string, int) (net.Conn, error) { return nil, nil }}); err == nil || !strings.Contains(err.Error(), "tls.cert_file: required") {
		t.Errorf("no certificate source: %v", err)
	}
}

// TestIPv4MappedListEntries: a list entry written "::ffff:a.b.c.d" means the
// IPv4 address, in the deny and allow lists and among trusted proxies.
func TestIPv4MappedListEntries(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"ip_deny: [\"::ffff:127.0.0.1\"]\n")
	if code, _, _ := f.do(f.req("GET", "/", nil)); code != http.StatusForbidden {
		t.Errorf("ip_deny ::ffff:127.0.0.1: %d, want 403", code)
	}
	for _, c := range []struct {
		yaml string
		want int
	}{
		{"ip_deny: [\"::ffff:127.0.0.0/104\"]\n", 403},
		{"ip_deny: [\"::FFFF:7f00:1\"]\n", 403},
		{"ip_allow: [\"::ffff:127.0.0.1\"]\n", 200},
		{"ip_allow: [\"::ffff:10.0.0.0/104\"]\n", 403},
	} {
		f.write(baseYAML + noWAF + c.yaml)
		if err := f.gw.Reload(); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := f.do(f.req("GET", "/", nil)); code != c.want {
			t.Errorf("%s: %d, want %d", strings.TrimSpace(c.yaml), code, c.want)
		}
	}

	t.Log("a trusted proxy written mapped is trusted")
	f.write(baseYAML + noWAF + "trusted_proxies: [\"::ffff:127.0.0.1\"]\nip_deny: [\"::ffff:203.0.113.0/120\"]\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	r := f.req("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if code, _, _ := f.do(r); code != http.StatusForbidden {
		t.Errorf("denied client behind a mapped trusted proxy: %d, want 403", code)
	}
	r = f.req("GET", "/", nil)
	r.Header.Set("X-Forwarded-For", "::ffff:198.51.100.7")
	if code, _, _ := f.do(r); code != 200 {
		t.Fatalf("client behind a mapped trusted proxy: %d", code)
	}
	got, _ := f.backends["frontend"].lastRequest()
	if v := got.Header.Get("X-Real-IP"); v != "198.51.100.7" {
		t.Errorf("X-Real-IP %q, want the client's IPv4 address", v)
	}

	t.Log("a mapped entry shorter than /96 names no IPv4 range and is refused")
	f.write(baseYAML + noWAF + "ip_deny: [\"::ffff:1.2.3.4/64\"]\n")
	if err := f.gw.Reload(); err == nil || !strings.Contains(err.Error(), "ip_deny[0]") {
		t.Errorf("reload with ::ffff:1.2.3.4/64: %v", err)
	}
}

// TestClientCertificateHeadersStripped: a backend set up behind a proxy
// that terminates TLS takes the client's certificate, and whether it was
// verified, from a header the proxy writes (Tomcat's SSLValve reads
// ssl_client_cert, IIS's ARR X-ARR-ClientCert, apps behind Envoy
// X-Forwarded-Client-Cert, behind Traefik X-Forwarded-Tls-Client-Cert,
// behind nginx X-SSL-Client-Cert and -Verify). The gateway asks clients
// for no certificate, so every such header is a client's own: a
// certificate it names, or "SUCCESS", would log the client in as whoever
// the certificate names. None reaches the backend, in any spelling.
func TestClientCertificateHeadersStripped(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	forged := "-----BEGIN CERTIFICATE-----MIIforged-----END CERTIFICATE-----"
	r := f.req("GET", "/api/items", nil)
	for _, h := range []string{"X-Forwarded-Client-Cert", "X-ARR-ClientCert", "X-Forwarded-Tls-Client-Cert",
		"X-Forwarded-Tls-Client-Cert-Info", "X-SSL-Client-Cert", "X-SSL-Cert", "X-Client-Cert", "Ssl-Client-Cert",
		"X-SSL-Client-Verify", "X-Client-Verify", "Ssl-Client-Verify", "X-SSL-Client-S-DN", "X-SSL-Client-DN",
		"X-Client-DN", "X-Amzn-Mtls-Clientcert", "X-Amzn-Mtls-Clientcert-Leaf"} {
		r.Header.Set(h, forged)
	}
	r.Header["ssl_client_cert"] = []string{forged}
	r.Header["SSL_CLIENT_VERIFY"] = []string{forged}
	if code, body, _ := f.do(r); code != 200 {
		t.Fatalf("%d %q", code, body)
	}
	got, _ := f.backends["api"].lastRequest()
	for name, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, "forged") {
				t.Errorf("backend received %s: %s", name, v)
			}
		}
	}
}

// TestClientIdentityHeadersStripped: headers a backend may believe about
// the client's address or the URL come from the gateway, never the client.
func TestClientIdentityHeadersStripped(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	spoofed := []string{"X-Real-IP", "True-Client-IP", "X-Client-IP", "Client-IP", "X-Cluster-Client-IP",
		"CF-Connecting-IP", "Fastly-Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr",
		"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-Uri", "X-Forwarded-Prefix",
		"X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Scheme", "X-Forwarded-Ssl",
		"X-Original-Host", "X-Host", "X-Original-Forwarded-For"}
	for _, proto := range []string{"HTTP/2.0", "HTTP/1.1"} {
		c := f.client
		if proto == "HTTP/1.1" {
			c = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"}}}
		}
		r := f.req("GET", "/api/items", nil)
		for _, h := range spoofed {
			r.Header.Set(h, "6.6.6.6")
		}
		r.Header.Set("X-Original-URL", "/admin")
		r.Header.Set("X-Rewrite-URL", "/admin")
		// Servers that map headers to CGI variables read X_Real_IP as X-Real-IP.
		r.Header["X_Real_IP"] = []string{"6.6.6.6"}
		r.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != proto {
			t.Fatalf("%s: %d over %s", proto, resp.StatusCode, resp.Proto)
		}
		got, _ := f.backends["api"].lastRequest()
		for name, vs := range got.Header {
			for _, v := range vs {
				if strings.Contains(v, "6.6.6.6") || strings.Contains(v, "/admin") {
					t.Errorf("%s: backend received %s: %s", proto, name, v)
				}
			}
		}
		if v := got.Header.Get("X-Real-IP"); v != "127.0.0.1" {
			t.Errorf("%s: X-Real-IP %q, want the client address the gateway decided", proto, v)
		}
	}

	t.Log("a client naming the gateway's own headers hop-by-hop does not take them off")
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"}}}
	r := f.req("GET", "/api/items", nil)
	r.Header.Set("Connection", "X-Real-IP, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Request-ID, Host")
	resp, err := h1.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, _ := f.backends["api"].lastRequest()
	for h, want := range map[string]string{"X-Real-IP": "127.0.0.1", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https",
		"X-Request-ID": resp.Header.Get("X-Request-ID")} {
		if v := got.Header.Get(h); v != want {
			t.Errorf("Connection naming %s: the backend got %q, want %q", h, v, want)
		}
	}
	if got.Host == "" || got.Header.Get("X-Forwarded-Host") != got.Host {
		t.Errorf("Connection naming Host: Host %q, X-Forwarded-Host %q", got.Host, got.Header.Get("X-Forwarded-Host"))
	}
}

// TestHeaderSizeLimits: one huge header, or very many small ones, over
// HTTP/1.1 and HTTP/2, is refused before any backend sees it.
func TestHeaderSizeLimits(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF)
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"}}}
	for _, c := range []struct {
		name   string
		client *http.Client
		set    func(h http.Header)
	}{
		{"one 64 KiB header, HTTP/1.1", h1, func(h http.Header) { h.Set("X-Big", strings.Repeat("a", 64<<10)) }},
		{"4000 small headers, HTTP/1.1", h1, func(h http.Header) {
			for i := range 4000 {
				h.Set(fmt.Sprintf("X-H%d", i), "a")
			}
		}},
		{"one 64 KiB header, HTTP/2", f.client, func(h http.Header) { h.Set("X-Big", strings.Repeat("a", 64<<10)) }},
		{"4000 small headers, HTTP/2", f.client, func(h http.Header) {
			for i := range 4000 {
				h.Set(fmt.Sprintf("X-H%d", i), "a")
			}
		}},
	} {
		r := f.req("GET", "/", nil)
		c.set(r.Header)
		resp, err := c.client.Do(r)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s: %d, want 431 or a refused stream", c.name, resp.StatusCode)
			}
		}
	}
	if n := f.backends["frontend"].count.Load(); n != 0 {
		t.Errorf("the backend served %d requests", n)
	}
}

// TestCSRFWebSocketHandshake: a WebSocket handshake is a GET, but one that
// opens a channel with the user's cookies: a page on another site that
// opens a WebSocket to the site reads and writes as the user
// (cross-site WebSocket hijacking). Browsers send Origin on every
// handshake; the gateway judges it as it judges an unsafe method's.
func TestCSRFWebSocketHandshake(t *testing.T) {
	var log servedLog
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
		brw.Flush()
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
	handshake := func(origin, cookie string) int {
		t.Helper()
		c, br := f.rawConn()
		req := "GET /chat HTTP/1.1\r\nHost: shop.example.org\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		if origin != "" {
			req += "Origin: " + origin + "\r\n"
		}
		if cookie != "" {
			req += "Cookie: " + cookie + "\r\n"
		}
		io.WriteString(c, req+"\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	for _, c := range []struct {
		name, origin, cookie string
		want                 int
	}{
		{"another site", "https://evil.example", "session=victim", http.StatusForbidden},
		{"an opaque origin", "null", "session=victim", http.StatusForbidden},
		{"no Origin, with cookies", "", "session=victim", http.StatusForbidden},
		{"the site itself", "https://shop.example.org", "session=victim", http.StatusSwitchingProtocols},
		{"no Origin, no cookies (not a browser)", "", "", http.StatusSwitchingProtocols},
	} {
		if got := handshake(c.origin, c.cookie); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if n := len(log.all()); n != 2 {
		t.Errorf("the service took %d handshakes, want 2", n)
	}
	t.Log("a plain GET from another site passes, as ever")
	r := f.req("GET", "/chat", nil)
	r.Host = "shop.example.org"
	r.Header.Set("Origin", "https://evil.example")
	if code, _, _ := f.do(r); code == http.StatusForbidden {
		t.Errorf("plain cross-site GET: %d", code)
	}
}
