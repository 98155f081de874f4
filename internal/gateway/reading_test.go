package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBodiesInFlightBounded: the WAF buffers a request body from its first
// byte until the request ends, up to 128 KiB in memory and the rest in a
// temporary file ($TMPDIR, mode 0600, removed at the end), and the
// inspection gate takes nothing of a body while it trickles in. Bodies
// trickled from many addresses, each within its own limits, were held
// without a bound on how many; waf.body_inspection.max_bodies bounds
// them: past it a body is refused 503 at once, a client's further bodies
// past half of it 429, and a body that ends frees its place.
func TestBodiesInFlightBounded(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the WAF's buffers spill
	f := newFixture(t, baseYAML+"rate_limit:\n  off: true\nwaf:\n  body_inspection: {max_bodies: 2}\n")
	spilled := func() []os.DirEntry {
		t.Helper()
		es, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	// trickle opens a connection from source and sends a request whose
	// body has begun and does not end.
	trickle := func(source string, sent int) (*tls.Conn, *bufio.Reader) {
		t.Helper()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		c, err := tls.DialWithDialer(d, "tcp", f.gw.Addr().String(), &tls.Config{RootCAs: f.pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintf(c, "POST /api/items HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nContent-Type: text/plain\r\nContent-Length: 200000\r\n\r\n", f.gw.Addr(), f.base)
		c.Write([]byte(strings.Repeat("a", sent)))
		return c, bufio.NewReader(c)
	}
	reading := func() int { return f.gw.bodies.len() }
	post := func(source string) int {
		t.Helper()
		req, err := http.NewRequest("POST", f.base+"/api/items", strings.NewReader("hello there"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", f.base)
		req.Header.Set("Content-Type", "text/plain")
		resp, err := f.clientFrom(source).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Log("past 128 KiB a body spills to a file of its own, 0600, removed when the request ends")
	a, _ := trickle("127.0.0.2", 150000)
	waitFor(t, "the first body to spill", func() bool { return len(spilled()) == 1 })
	if fi, err := spilled()[0].Info(); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the spilled body's file: %v %v, want mode 0600", fi.Mode(), err)
	}
	if n := reading(); n != 1 {
		t.Errorf("%d bodies held, want 1", n)
	}
	t.Log("a client with a body in flight is refused a second once half the bound is taken")
	if code := post("127.0.0.2"); code != http.StatusTooManyRequests {
		t.Errorf("second body of the same client: %d, want 429", code)
	}
	trickle("127.0.0.3", 1000)
	waitFor(t, "the second body to be read", func() bool { return reading() == 2 })
	t.Log("the bound reached: another client's body is refused at once")
	if code := post("127.0.0.4"); code != http.StatusServiceUnavailable {
		t.Errorf("a body past max_bodies: %d, want 503", code)
	}
	t.Log("a body that ends frees its slot")
	a.Close()
	waitFor(t, "the first slot to be freed", func() bool { return reading() == 1 })
	waitFor(t, "the spilled file to be removed", func() bool { return len(spilled()) == 0 })
	if code := post("127.0.0.4"); code != 200 {
		t.Errorf("a body once a slot is free: %d, want 200", code)
	}
}
