package gateway

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

// TestExpectContinue: a client that asks before sending its body (curl does
// for large uploads) gets "100 Continue" from the gateway, then its body is
// inspected and reaches the service whole, without the Expect field, which
// the gateway has answered. An expectation the gateway cannot meet is
// answered 417, over HTTP/1.1 and HTTP/2, and reaches no service.
func TestExpectContinue(t *testing.T) {
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\n")
	be := f.backends["frontend"]
	host := strings.TrimPrefix(f.base, "https://")
	send := func(expect, body string) string {
		t.Helper()
		c, br := f.rawConn()
		fmt.Fprintf(c, "POST /orders HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"+
			"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nExpect: %s\r\n\r\n", host, f.base, len(body), expect)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("Expect %q: %v", expect, err)
		}
		if strings.HasPrefix(line, "HTTP/1.1 100 ") {
			if _, err := br.ReadString('\n'); err != nil { // the blank line ending the interim answer
				t.Fatal(err)
			}
			io.WriteString(c, body)
			if line, err = br.ReadString('\n'); err != nil {
				t.Fatalf("Expect %q, after the body: %v", expect, err)
			}
			return "100 " + strings.TrimSpace(line)
		}
		return strings.TrimSpace(line)
	}

	if got := send("100-continue", "a=1&b=hello"); got != "100 HTTP/1.1 200 OK" {
		t.Fatalf("a benign form after 100-continue: %q, want 100 then 200", got)
	}
	got, body := be.lastRequest()
	if body != "a=1&b=hello" || got.Header.Get("Expect") != "" {
		t.Errorf("the service got %q with Expect %q; want the whole body and no Expect", body, got.Header.Get("Expect"))
	}
	if got := send("100-Continue", "q="+url.QueryEscape(bodyAttacks["sqli"])); got != "100 HTTP/1.1 403 Forbidden" {
		t.Errorf("an attack in a body sent after 100-continue: %q, want 100 then 403", got)
	}
	n := be.count.Load()
	if got := send("something-else", "a=1"); !strings.HasPrefix(got, "HTTP/1.1 417 ") {
		t.Errorf("an unknown expectation: %q, want 417", got)
	}
	_, fr := f.h2Conn()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true, EndHeaders: true,
		BlockFragment: headerBlock(":method", "POST", ":scheme", "https", ":authority", host, ":path", "/orders",
			"origin", f.base, "expect", "something-else")})
	if st := h2Status(t, fr); st != "417" {
		t.Errorf("HTTP/2, an unknown expectation: %s, want 417", st)
	}
	if m := be.count.Load(); m != n {
		t.Errorf("the service got %d requests with an unknown expectation", m-n)
	}
}
