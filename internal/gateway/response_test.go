package gateway

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Attacks on what the gateway answers: the service's response headers
// and bodies on their way to the client.

// TestServiceCannotOverrideGatewayHeaders: a service (or an attacker who
// makes it echo headers) answering with its own Strict-Transport-Security
// ("max-age=0", which would end the browser's HSTS policy wherever a cache
// or a client reads the last field or joins them) or X-Request-ID (which
// would point a report at another request than the gateway recorded) has
// them dropped: the client gets the gateway's, once, over HTTP/2 and
// HTTP/1.1. With the gateway's HSTS off, the service's own passes.
func TestServiceCannotOverrideGatewayHeaders(t *testing.T) {
	var log servedLog
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		w.Header().Set("Strict-Transport-Security", "max-age=0")
		w.Header().Set("X-Request-ID", "chosen-by-the-service")
		if r.URL.Query().Get("hints") != "" {
			// 103 Early Hints, after which the proxy clears the
			// answer's headers.
			w.Header().Set("Link", "</app.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
		}
		fmt.Fprint(w, "served")
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
	check := func(proto string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", proto, resp.StatusCode)
		}
		if v := resp.Header.Values("Strict-Transport-Security"); !slices.Equal(v, []string{"max-age=31536000"}) {
			t.Errorf("%s: Strict-Transport-Security %q, want the gateway's alone", proto, v)
		}
		ids := resp.Header.Values("X-Request-Id")
		if len(ids) != 1 || len(ids[0]) != 32 {
			t.Errorf("%s: X-Request-ID %q, want the gateway's alone", proto, ids)
			return
		}
		lines := log.all()
		if want := " " + ids[0]; len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "GET /static/x") || !strings.HasSuffix(lines[len(lines)-1], want) {
			t.Errorf("%s: the service served %q, want %q", proto, lines, want)
		}
	}
	r := f.req("GET", "/static/x", nil)
	r.Host = "shop.example.org"
	_, _, resp := f.do(r)
	if resp.ProtoMajor != 2 {
		t.Fatalf("negotiated %s, want HTTP/2", resp.Proto)
	}
	check("HTTP/2", resp)

	c, br := f.rawConn()
	io.WriteString(c, "GET /static/x HTTP/1.1\r\nHost: shop.example.org\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	check("HTTP/1.1", resp)

	t.Log("a 103 from the service takes nothing of the gateway's headers off the answers")
	r = f.req("GET", "/static/x?hints=1", nil)
	r.Host = "shop.example.org"
	_, _, resp = f.do(r)
	check("HTTP/2 after a 103", resp)
	c, br = f.rawConn()
	io.WriteString(c, "GET /static/x?hints=1 HTTP/1.1\r\nHost: shop.example.org\r\n\r\n")
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusEarlyHints {
		t.Fatalf("HTTP/1.1: %v %v, want the 103 first", resp, err)
	}
	if v := resp.Header.Values("Strict-Transport-Security"); !slices.Equal(v, []string{"max-age=31536000"}) || len(resp.Header.Values("X-Request-Id")) != 1 || resp.Header.Get("Link") == "" {
		t.Errorf("HTTP/1.1 103: %v, want the hints with the gateway's headers alone", resp.Header)
	}
	if resp, err = http.ReadResponse(br, nil); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	check("HTTP/1.1 after a 103", resp)

	t.Log("with the gateway's HSTS off, the service's is the only one and passes")
	f.write(pathYAML + "hsts:\n  disabled: true\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	r = f.req("GET", "/static/x", nil)
	r.Host = "shop.example.org"
	if _, _, resp = f.do(r); !slices.Equal(resp.Header.Values("Strict-Transport-Security"), []string{"max-age=0"}) {
		t.Errorf("HSTS off: Strict-Transport-Security %q, want the service's", resp.Header.Values("Strict-Transport-Security"))
	}
}

// gzipped is s compressed with gzip.
func gzipped(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	w.Close()
	return b.Bytes()
}

// TestCompressedResponsesInspected: with inspect_responses on, a client
// that offers gzip (every browser does) had a service that compresses
// answer a SQL error in gzip, which the response rules read as bytes and
// passed. The gateway asks services for gzip alone and the WAF reads (and
// sends) the body decoded; a body of an inspected type in a coding the
// WAF cannot read is refused, never sent unread.
func TestCompressedResponsesInspected(t *testing.T) {
	const leak = "<html><body>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</body></html>"
	const page = "<html><body>Your order has shipped.</body></html>"
	var mu sync.Mutex
	offered := map[string]string{} // request ID: the Accept-Encoding the service got
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		offered[r.Header.Get("X-Request-Id")] = r.Header.Get("Accept-Encoding")
		mu.Unlock()
		body := page
		if strings.HasSuffix(r.URL.Path, "/leak") {
			body = leak
		}
		w.Header().Set("Content-Type", "text/html")
		switch ae := r.Header.Get("Accept-Encoding"); {
		case strings.HasPrefix(r.URL.Path, "/br/"):
			// A service that answers in a coding of its choice,
			// asked or not (the bytes are not what is tested).
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, body)
		case strings.HasPrefix(r.URL.Path, "/twice/"):
			w.Header().Set("Content-Encoding", "gzip, gzip")
			w.Write(gzipped(string(gzipped(body))))
		case strings.Contains(ae, "br"):
			w.Header().Set("Content-Encoding", "br")
			io.WriteString(w, body)
		case strings.Contains(ae, "gzip"):
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(gzipped(body))
		default:
			io.WriteString(w, body)
		}
	})})
	f := newFixtureWith(t, pathYAML+"waf:\n  inspect_responses: true\n", map[string]string{"static": sock, "shop": sock, "legacy": sock})
	get := func(path, acceptEncoding string) (*http.Response, string) {
		t.Helper()
		c, br := f.rawConn()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: shop.example.org\r\nAccept-Encoding: %s\r\n\r\n", path, acceptEncoding)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, c := range []struct {
		path, accept string
		want         int
	}{
		{"/shop/leak", "gzip", http.StatusForbidden},
		{"/shop/leak", "gzip, deflate, br, zstd", http.StatusForbidden},
		{"/shop/leak", "identity", http.StatusForbidden},
		{"/br/leak", "gzip", http.StatusBadGateway},
		{"/twice/leak", "gzip", http.StatusBadGateway},
		{"/br/page", "gzip", http.StatusBadGateway},
	} {
		resp, body := get(c.path, c.accept)
		if resp.StatusCode != c.want || strings.Contains(body, "SQL") {
			t.Errorf("GET %s, Accept-Encoding %q: %d %q, want %d", c.path, c.accept, resp.StatusCode, body, c.want)
		}
	}
	t.Log("a page passes, decoded, whatever the client offers; the service is offered gzip alone")
	for _, accept := range []string{"gzip", "gzip, deflate, br, zstd", "identity"} {
		resp, body := get("/shop/page", accept)
		if resp.StatusCode != 200 || body != page || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("page, Accept-Encoding %q: %d %v %q", accept, resp.StatusCode, resp.Header, body)
		}
		mu.Lock()
		got := offered[resp.Header.Get("X-Request-Id")]
		mu.Unlock()
		if got != "gzip" {
			t.Errorf("page, Accept-Encoding %q: the service was offered %q, want gzip", accept, got)
		}
	}
}

// TestRefusalsEchoNothing: the gateway's own answers (a refused path,
// origin, host, method or body, a WAF block, a missing route, a failed
// service) carry a status and the request ID, never a byte the client
// chose, as plain text a browser does not sniff for markup.
func TestRefusalsEchoNothing(t *testing.T) {
	f := newFixture(t, strings.Replace(baseYAML, "services: [frontend, api]", "services: [frontend, api, gone]", 1)+
		"  - service: gone\n    port: 1\n    path: /gone/\n    csrf_off: true\n    waf_off: true\n")
	const mark = "<svg onload=alert(1)>"
	esc := url.PathEscape(mark)
	for _, c := range []struct {
		name, raw string
		want      int
	}{
		{"path above the root", "GET /" + esc + "/../../x HTTP/1.1\r\nHost: localhost\r\n\r\n", http.StatusForbidden},
		{"foreign origin", "POST /x HTTP/1.1\r\nHost: localhost\r\nOrigin: https://" + esc + ".example\r\nContent-Length: 0\r\n\r\n", http.StatusForbidden},
		{"WAF block", "GET /?q=" + url.QueryEscape(mark) + " HTTP/1.1\r\nHost: localhost\r\n\r\n", http.StatusForbidden},
		{"bad host", "GET / HTTP/1.1\r\nHost: " + esc + "\r\n\r\n", http.StatusBadRequest},
		{"CONNECT", "CONNECT /" + esc + " HTTP/1.1\r\nHost: localhost\r\n\r\n", http.StatusNotImplemented},
		{"service down", "GET /gone/x HTTP/1.1\r\nHost: localhost\r\nX-Note: " + mark + "\r\n\r\n", http.StatusBadGateway},
	} {
		c2, br := f.rawConn()
		io.WriteString(c2, c.raw)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.want || strings.Contains(string(body), "svg") || strings.Contains(string(body), "%3C") ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(string(body), resp.Header.Get("X-Request-Id")) {
			t.Errorf("%s: %d %v %q", c.name, resp.StatusCode, resp.Header, body)
		}
	}
}
