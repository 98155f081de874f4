package gateway

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestOptionsAsteriskAnsweredByTheGateway: "OPTIONS *" asks about the
// server as a whole, which no route serves. net/http used to answer it
// itself over HTTP/1.1 (200, before the handler), without HSTS, a request
// ID or a record; the gateway answers it as any target that names no
// path: 400, with its headers, recorded as a path event. Over HTTP/2 and
// on the redirect port the answer is the same.
func TestOptionsAsteriskAnsweredByTheGateway(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	c, br := f.rawConn()
	if _, err := c.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("OPTIONS * over HTTP/1.1: %d, want 400", resp.StatusCode)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("OPTIONS * over HTTP/1.1: the answer lacks the gateway's headers: %v", resp.Header)
	}
	// A refusal is recorded before it is answered.
	recorded := false
	for _, r := range f.events.all() {
		if r.Unmapped != nil && r.Unmapped.Kind == KindPath && r.HTTPRequest != nil && r.HTTPRequest.Method == "OPTIONS" && r.HTTPRequest.UID == resp.Header.Get("X-Request-ID") {
			recorded = true
		}
	}
	if !recorded {
		t.Errorf("OPTIONS * over HTTP/1.1 was not recorded: %+v", f.events.all())
	}

	t.Log("over HTTP/2")
	tc, fr := f.h2Conn()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock(":method", "OPTIONS", ":scheme", "https", ":authority", "localhost", ":path", "*"), EndHeaders: true, EndStream: true})
	if got := h2Status(t, fr); got != "400" {
		t.Errorf("OPTIONS * over HTTP/2: %s, want 400", got)
	}
	tc.Close()

	t.Log("on the redirect port")
	rc, err := net.Dial("tcp", f.gw.RedirectAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rc.SetDeadline(time.Now().Add(time.Minute))
	rc.Write([]byte("OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	rresp, err := http.ReadResponse(bufio.NewReader(rc), nil)
	if err != nil {
		t.Fatal(err)
	}
	rresp.Body.Close()
	if rresp.StatusCode != http.StatusBadRequest {
		t.Errorf("OPTIONS * on the redirect port: %d, want 400", rresp.StatusCode)
	}
	if n := f.backends["frontend"].count.Load() + f.backends["api"].count.Load(); n != 0 {
		t.Errorf("a service was asked %d times", n)
	}
}
