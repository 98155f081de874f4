package gateway

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRefusalKeepsTheConnection: a refused request (the WAF's 403 on the
// query or on a body, the cross-site check's 403) is answered on the
// keep-alive connection it came on, which then carries the next request,
// as a served one does. A client refused as fast as it can send stays on
// its connection: closing it would make every refusal cost a new TLS
// handshake, the client's reconnect and the gateway's.
func TestRefusalKeepsTheConnection(t *testing.T) {
	f := newFixture(t, strings.Replace(baseYAML, "services:", "rate_limit:\n  off: true\nservices:", 1))
	sqli := url.QueryEscape("1' UNION SELECT password FROM users--")
	form := "id=" + sqli
	reqs := []struct {
		name, raw string
		status    int
	}{
		{"benign GET", "GET /products?id=42 HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
		{"attack in the query", "GET /search?q=" + sqli + " HTTP/1.1\r\nHost: localhost\r\n\r\n", 403},
		{"attack in a form body", fmt.Sprintf("POST /contact HTTP/1.1\r\nHost: localhost\r\nOrigin: https://localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", len(form), form), 403},
		{"cross-site POST", "POST /contact HTTP/1.1\r\nHost: localhost\r\nOrigin: https://evil.example\r\nContent-Length: 0\r\n\r\n", 403},
		{"the attack again", "GET /search?q=" + sqli + " HTTP/1.1\r\nHost: localhost\r\n\r\n", 403},
		{"benign GET after", "GET /products?id=43 HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
	}
	c, br := f.rawConn()
	defer c.Close()
	for _, r := range reqs {
		if _, err := io.WriteString(c, r.raw); err != nil {
			t.Fatalf("%s: write on the connection: %v", r.name, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: no answer on the connection: %v", r.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Errorf("%s: status %d, want %d", r.name, resp.StatusCode, r.status)
		}
		if resp.Close {
			t.Errorf("%s: answered %d with Connection: close", r.name, resp.StatusCode)
		}
	}
}
