package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"testing"
)

// redirectGet sends GET / for app.example to the plain-HTTP port, with
// X-Forwarded-For xff unless empty.
func (f *fixture) redirectGet(xff string) *http.Response {
	f.t.Helper()
	c, err := net.Dial("tcp", f.gw.RedirectAddr().String())
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	req := "GET /shop HTTP/1.1\r\nHost: app.example\r\n"
	if xff != "" {
		req += "X-Forwarded-For: " + xff + "\r\n"
	}
	fmt.Fprint(c, req+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestRedirectIPLists: the plain-HTTP port judges clients by the IP lists
// as the HTTPS port does, trusted proxies and all: a refused client gets
// 403 and a request ID, never the redirect (which tells it where the site
// is and that it is served), and the refusal is recorded.
func TestRedirectIPLists(t *testing.T) {
	f := newFixture(t, baseYAML+noWAF+"trusted_proxies: [127.0.0.1]\nip_deny: [203.0.113.0/24]\n")
	port := f.gw.RedirectAddr().(*net.TCPAddr).Port
	for _, c := range []struct {
		xff  string
		want int
	}{
		{"", http.StatusPermanentRedirect},
		{"198.51.100.7", http.StatusPermanentRedirect},
		{"203.0.113.9", http.StatusForbidden},
		{"198.51.100.7, 203.0.113.9:4711", http.StatusForbidden},
		{"not-an-ip", http.StatusForbidden}, // the lists cannot judge it
	} {
		resp := f.redirectGet(c.xff)
		if resp.StatusCode != c.want {
			t.Errorf("XFF %q: %d, want %d", c.xff, resp.StatusCode, c.want)
		}
		if c.want == http.StatusForbidden && (resp.Header.Get("Location") != "" || resp.Header.Get("X-Request-ID") == "") {
			t.Errorf("XFF %q: refused with Location %q, X-Request-ID %q", c.xff, resp.Header.Get("Location"), resp.Header.Get("X-Request-ID"))
		}
	}
	recs := f.events.all()
	if len(recs) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(recs), recs)
	}
	for i, ip := range []string{"203.0.113.9", "203.0.113.9", "127.0.0.1"} {
		r := recs[i]
		if r.Unmapped.Kind != KindIPDeny || r.SrcEndpoint.IP != ip || r.DstEndpoint.Port != port ||
			r.HTTPRequest == nil || r.HTTPRequest.URL.Scheme != "http" || r.HTTPResponse.Code != http.StatusForbidden {
			t.Errorf("event %d: %+v from %+v to %+v, request %+v", i, r.Unmapped, r.SrcEndpoint, r.DstEndpoint, r.HTTPRequest)
		}
	}

	t.Log("an allow list admits only its members on the plain port too")
	f.write(baseYAML + noWAF + "ip_allow: [10.0.0.0/8]\n")
	if err := f.gw.Reload(); err != nil {
		t.Fatal(err)
	}
	if resp := f.redirectGet(""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("127.0.0.1 outside the allow list: %d, want 403", resp.StatusCode)
	}
	if n := len(f.events.all()); n != 4 {
		t.Errorf("%d events, want 4", n)
	}
}
