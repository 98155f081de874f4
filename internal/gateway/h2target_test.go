package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http2"
)

// TestHTTP2TargetForms: HTTP/2 carries the target in :authority and
// :path, and :path is origin-form, or "*" for OPTIONS (RFC 9113 section
// 8.3.1). A :path that names a scheme and host of its own, or a host
// header beside :authority naming another host, is a request two readers
// take to different places: the gateway routes on :authority, while an
// intermediary, a log or a backend framework that reads the other names
// another host. The gateway refuses them (400) before any route is
// chosen, and the backend serves none.
func TestHTTP2TargetForms(t *testing.T) {
	var log servedLog
	hosts := map[string]string{}
	var mu sync.Mutex
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r)
		mu.Lock()
		hosts[r.Header.Get("X-Request-Id")] = r.Host + " " + r.URL.String()
		mu.Unlock()
		fmt.Fprintf(w, "served %s", r.URL.Path)
	})})
	f := newFixtureWith(t, pathYAML, map[string]string{"static": sock, "shop": sock, "legacy": sock})
	sqli := "/search?q=" + url.QueryEscape("1' UNION SELECT password FROM users--")
	for _, c := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"absolute :path to another host", []string{":method", "GET", ":scheme", "https", ":authority", "other.example", ":path", "https://shop.example.org" + sqli}, "400"},
		{"absolute :path to the routed host", []string{":method", "GET", ":scheme", "https", ":authority", "shop.example.org", ":path", "https://other.example/static/x"}, "400"},
		{"absolute :path without a path", []string{":method", "GET", ":scheme", "https", ":authority", "shop.example.org", ":path", "https://other.example"}, "400"},
		{"asterisk for GET", []string{":method", "GET", ":scheme", "https", ":authority", "shop.example.org", ":path", "*"}, "400"},
		{"host header naming another host", []string{":method", "GET", ":scheme", "https", ":authority", "other.example", ":path", sqli, "host", "shop.example.org"}, "400"},
		{"two host headers", []string{":method", "GET", ":scheme", "https", ":authority", "other.example", ":path", "/x", "host", "other.example", "host", "shop.example.org"}, "400"},
	} {
		_, fr := f.h2Conn()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, BlockFragment: headerBlock(c.fields...)})
		if got := h2Status(t, fr); got != c.want && got != "reset" {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	t.Log("what HTTP/2 allows still passes: origin-form, and a host header that agrees with :authority")
	for _, c := range [][]string{
		{":method", "GET", ":scheme", "https", ":authority", "other.example", ":path", "/x"},
		{":method", "GET", ":scheme", "https", ":authority", "Other.Example:443", ":path", "/x", "host", "other.example:443"},
	} {
		_, fr := f.h2Conn()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, BlockFragment: headerBlock(c...)})
		if got := h2Status(t, fr); got != "200" {
			t.Errorf("%v: %s, want 200", c, got)
		}
	}
	for _, l := range log.all() {
		if !strings.HasPrefix(l, "GET /x ") {
			t.Errorf("the backend served %q", l)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, h := range hosts {
		if !strings.HasPrefix(h, "other.example") {
			t.Errorf("request %s reached the backend as %q", id, h)
		}
	}
}
