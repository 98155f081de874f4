package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"

	"golang.org/x/net/http2"
)

// TestRequestsTheServerRefusesAreRecorded: Go's HTTP server answers some
// requests itself, before the gateway's handler sees them: a request line
// or header it cannot parse (400), headers past max_header_bytes (431),
// an Expect it does not know (417). Scanners send exactly these ("GET
// /%%32%65%%32%65/etc/passwd"), and none of them left a record: the
// gateway's log of refusals had a hole an attacker's probes walked
// through unseen. Each is now a refusal event of kind "unserved", as is a
// request left incomplete when its connection ends. A connection that
// only served requests, or sent nothing, records nothing.
func TestRequestsTheServerRefusesAreRecorded(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\nlimits:\n  max_header_bytes: 4096\n")
	unserved := func() []flow.Record {
		var out []flow.Record
		for _, r := range f.events.all() {
			if r.Unmapped != nil && r.Unmapped.Kind == KindUnserved {
				out = append(out, r)
			}
		}
		return out
	}
	// send writes raw on a new HTTP/1.1 connection over TLS and returns
	// the status the server answered once it closed the
	// connection.
	send := func(raw string, closeWrite bool) int {
		t.Helper()
		c, br := f.rawConn()
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		if closeWrite {
			c.CloseWrite()
		}
		status := 0
		if resp, err := http.ReadResponse(br, nil); err == nil {
			status = resp.StatusCode
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		// The server closes the connection after such an answer.
		io.Copy(io.Discard, br)
		c.Close()
		return status
	}

	t.Log("served requests and an empty connection leave no such record")
	if got := send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", false); got != http.StatusOK {
		t.Fatalf("two served requests: %d", got)
	}
	c, _ := f.rawConn()
	c.Close()

	cases := []struct {
		name   string
		raw    string
		status int
		close  bool
	}{
		{"an unparsable request target", "GET /%%32%65%%32%65/etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n", http.StatusBadRequest, false},
		{"a header line without a colon", "GET / HTTP/1.1\r\nHost: localhost\r\nX-Probe\r\n\r\n", http.StatusBadRequest, false},
		{"headers past max_header_bytes", "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + strings.Repeat("a", 16384) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge, false},
		{"an Expect the server does not know", "GET / HTTP/1.1\r\nHost: localhost\r\nExpect: 200-ok\r\n\r\n", http.StatusExpectationFailed, false},
		{"a request cut off by its client", "GET /admin HTTP/1.1\r\nHost: loc", http.StatusBadRequest, true},
	}
	for i, tc := range cases {
		if got := send(tc.raw, tc.close); got != tc.status {
			t.Errorf("%s: answered %d, want %d", tc.name, got, tc.status)
		}
		waitFor(t, tc.name+" recorded", func() bool { return len(unserved()) == i+1 })
	}
	for _, r := range unserved() {
		if r.ClassUID != flow.ClassNetworkActivity || r.ActivityID != flow.ActivityRefuse || r.SrcEndpoint == nil || r.SrcEndpoint.IP != "127.0.0.1" ||
			r.DstEndpoint == nil || r.DstEndpoint.Port == 0 || r.Unmapped.Verdict != flow.VerdictDeny {
			t.Errorf("record: %+v (moat %+v)", r, r.Unmapped)
		}
	}

	t.Log("on the redirect port")
	rc, err := net.Dial("tcp", f.gw.RedirectAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	rc.SetDeadline(time.Now().Add(time.Minute))
	rc.Write([]byte("GET /%%32%65 HTTP/1.1\r\nHost: localhost\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(rc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rc.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("redirect port: %d, want 400", resp.StatusCode)
	}
	waitFor(t, "the redirect port's refusal recorded", func() bool { return len(unserved()) == len(cases)+1 })

	if n := f.backends["frontend"].count.Load(); n != 2 {
		t.Errorf("frontend was asked %d times, want the 2 served requests", n)
	}
}

// TestHTTP2RefusalsAreRecorded: Go's HTTP/2 server resets a stream whose
// request is malformed (no :method, an empty :path, a CONNECT with a
// path) before the gateway's handler sees it, and ends a
// connection that breaks the protocol. None of these
// left a record, so a client probing the HTTP/2 parser went unseen. The
// server reports them by kind only; each flush now writes one unserved
// summary counting them by kind.
func TestHTTP2RefusalsAreRecorded(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	streams := [][]string{
		{":scheme", "https", ":authority", "localhost", ":path", "/"},
		{":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", ""},
		{":method", "CONNECT", ":scheme", "https", ":authority", "localhost:443", ":path", "/"},
	}
	for i, fields := range streams {
		tc, fr := f.h2Conn()
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true, BlockFragment: headerBlock(fields...)})
		if got := h2Status(t, fr); got == "200" {
			t.Fatalf("stream %d (%v) was served", i, fields)
		}
		tc.Close()
	}
	t.Log("connections that break the protocol: a DATA frame on stream 0, a client's stream with an even number")
	for _, send := range []func(fr *http2.Framer) error{
		func(fr *http2.Framer) error { return fr.WriteData(0, true, []byte("x")) },
		func(fr *http2.Framer) error {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 2, EndStream: true, EndHeaders: true,
				BlockFragment: headerBlock(":method", "GET", ":scheme", "https", ":authority", "localhost", ":path", "/")})
		},
	} {
		tc, fr := f.h2Conn()
		fr.AllowIllegalWrites = true
		if err := send(fr); err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, tc)
	}

	summaries := func() (out []flow.Record, total int) {
		for _, r := range f.events.all() {
			if r.Unmapped != nil && r.Unmapped.Kind == KindUnserved && strings.Contains(r.Unmapped.Reason, "HTTP/2") {
				out = append(out, r)
				total += r.Unmapped.Suppressed
			}
		}
		return out, total
	}
	testkit.WaitForDetail(t, "every refusal counted in an HTTP/2 summary", func() (bool, string) {
		recs, total := summaries()
		var why []string
		for _, r := range recs {
			why = append(why, r.Unmapped.Reason)
		}
		return total >= len(streams)+2, fmt.Sprintf("%d counted in %d summaries: %q", total, len(recs), why)
	})
	recs, _ := summaries()
	for _, rec := range recs {
		t.Log(rec.Unmapped.Reason)
		if rec.Unmapped.Verdict != flow.VerdictDeny || rec.SrcEndpoint == nil || rec.SrcEndpoint.IP != "" {
			t.Errorf("summary: verdict %q, source %+v", rec.Unmapped.Verdict, rec.SrcEndpoint)
		}
	}
}

// TestH2ErrorsBounded: the kinds kept between flushes are bounded, as is a
// kind's length; past either, errors count as "other". A flush empties
// the counts.
func TestH2ErrorsBounded(t *testing.T) {
	var h h2Errors
	for i := 0; i < 3*maxH2ErrorKinds; i++ {
		h.count(fmt.Sprintf("kind_%d", i))
	}
	h.count(strings.Repeat("x", 65))
	if len(h.counts) > maxH2ErrorKinds+1 {
		t.Fatalf("%d kinds kept", len(h.counts))
	}
	ev := h.flush()
	if ev == nil || ev.suppressed != 3*maxH2ErrorKinds+1 || !strings.Contains(ev.reason, "other ×") {
		t.Fatalf("summary %+v", ev)
	}
	if ev := h.flush(); ev != nil {
		t.Fatalf("a second flush: %+v", ev)
	}
}
