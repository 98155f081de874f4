package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-yamux/v5"
)

// scriptedService answers the requests on its nth connection (from 1)
// with script(n): each string is written whole, as one write, after a
// request is read (an empty one closes the connection then); once the
// script ends the connection is closed.
type scriptedService struct {
	script func(n int) []string
	conns  atomic.Int32
	posts  atomic.Int32 // POST requests read
}

func (s *scriptedService) serve(c net.Conn) {
	defer c.Close()
	n := int(s.conns.Add(1))
	br := bufio.NewReader(c)
	for _, answer := range s.script(n) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if req.Method == http.MethodPost {
			s.posts.Add(1)
		}
		if answer == "" {
			return
		}
		if req.Method == http.MethodHead {
			answer = answer[:strings.Index(answer, "\r\n\r\n")+4]
		}
		if _, err := io.WriteString(c, answer); err != nil {
			return
		}
	}
}

// answer is a keep-alive answer with body.
func answer(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// socketDial reaches s over Unix sockets, one per connection.
func socketDial(t *testing.T, s *scriptedService) func(*Config) {
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return func(c *Config) {
		c.Dial = func(ctx context.Context, _ string, _ int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ln.Addr().String())
		}
	}
}

// streamDial reaches s over streams of one yamux session, as the mesh's
// Dial does over a tunnel.
func streamDial(t *testing.T, s *scriptedService) func(*Config) {
	a, b := net.Pipe()
	client, err := yamux.Client(a, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := yamux.Server(b, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		for {
			st, err := server.AcceptStream()
			if err != nil {
				return
			}
			go s.serve(st)
		}
	}()
	return func(c *Config) {
		c.Dial = func(ctx context.Context, _ string, _ int) (net.Conn, error) {
			return client.OpenStream(ctx)
		}
	}
}

var dials = []struct {
	name string
	dial func(*testing.T, *scriptedService) func(*Config)
}{{"socket", socketDial}, {"mesh stream", streamDial}}

// get sends a GET to the fixture and returns its status and body.
func (f *fixture) get(path string) (int, string) {
	f.t.Helper()
	code, body, _ := f.do(f.req("GET", path, nil))
	return code, body
}

// A GET goes out on the handler's goroutine over a pooled connection:
// requests one after another share one, and a change of credentials
// (renew) has the next take a fresh one.
func TestDirectRequestsShareConnections(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := &scriptedService{script: func(n int) []string {
				return []string{answer(fmt.Sprint(n)), answer(fmt.Sprint(n)), answer(fmt.Sprint(n)), answer(fmt.Sprint(n))}
			}}
			f := newFixtureTuned(t, baseYAML, nil, d.dial(t, s))
			for i := range 3 {
				if i == 1 {
					// A HEAD's answer has no body: its header ends it.
					if code, _, resp := f.do(f.req("HEAD", "/", nil)); code != http.StatusOK || resp.ContentLength != 1 {
						t.Fatalf("HEAD: %d, length %d", code, resp.ContentLength)
					}
				}
				if code, body := f.get("/"); code != http.StatusOK || body != "1" {
					t.Fatalf("GET %d: %d %q, want 200 from the first connection", i, code, body)
				}
			}
			f.gw.upstreams.renew()
			if code, body := f.get("/"); code != http.StatusOK || body != "2" {
				t.Fatalf("GET after renew: %d %q, want 200 from a second connection", code, body)
			}
		})
	}
}

// A pooled connection the service closed while it was idle is not sent a
// request that then fails: the GET is answered on a fresh one.
func TestDirectPooledConnectionClosed(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := &scriptedService{script: func(n int) []string { return []string{answer(fmt.Sprint(n))} }}
			f := newFixtureTuned(t, baseYAML, nil, d.dial(t, s))
			for i := 1; i <= 3; i++ {
				if code, body := f.get("/"); code != http.StatusOK || body != fmt.Sprint(i) {
					t.Fatalf("GET %d: %d %q, want 200 from connection %d", i, code, body, i)
				}
			}
		})
	}
}

// A pooled connection the service closes as the next request arrives
// (its idle timeout running out meanwhile) has that request, a GET, sent
// again on a fresh one, as http.Transport does.
func TestDirectRequestSentAgain(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := &scriptedService{script: func(n int) []string {
				if n == 1 {
					return []string{answer("first"), ""}
				}
				return []string{answer("second")}
			}}
			f := newFixtureTuned(t, baseYAML, nil, d.dial(t, s))
			for _, want := range []string{"first", "second"} {
				if code, body := f.get("/"); code != http.StatusOK || body != want {
					t.Fatalf("GET: %d %q, want 200 %q", code, body, want)
				}
			}
		})
	}
}

// A request with a small body of known length goes out directly too, on
// the connection the GET before it used; one that fails before any
// answer is not sent again (its body is gone, and a POST is not
// idempotent): a bad gateway, and the service read it once.
func TestDirectBodyNotSentAgain(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := &scriptedService{script: func(n int) []string {
				if n == 1 {
					return []string{answer("get"), answer("post"), ""}
				}
				return []string{answer("fresh")}
			}}
			f := newFixtureTuned(t, baseYAML, nil, d.dial(t, s))
			post := func() (int, string) {
				r := f.req("POST", "/", strings.NewReader("a=1&b=2"))
				r.Header.Set("Origin", f.base)
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				code, body, _ := f.do(r)
				return code, body
			}
			if code, body := f.get("/"); code != http.StatusOK || body != "get" {
				t.Fatalf("GET: %d %q", code, body)
			}
			if code, body := post(); code != http.StatusOK || body != "post" {
				t.Fatalf("POST: %d %q, want the GET's connection's answer", code, body)
			}
			if code, _ := post(); code != http.StatusBadGateway {
				t.Fatalf("POST on a connection closed before the answer: %d, want 502", code)
			}
			if n := s.posts.Load(); n != 2 {
				t.Fatalf("the service read %d POSTs, want 2: one was sent again", n)
			}
			if code, body := f.get("/"); code != http.StatusOK || body != "fresh" {
				t.Fatalf("GET after: %d %q", code, body)
			}
		})
	}
}

// Bytes a service sends after an answer, asked for by nobody (a second
// answer, as a desynchronised service sends), never become the answer
// to the next request: the connection is given up.
func TestDirectUnsolicitedAnswerDropped(t *testing.T) {
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := &scriptedService{script: func(n int) []string {
				if n == 1 {
					return []string{answer("first") + answer("smuggled"), answer("smuggled")}
				}
				return []string{answer("second")}
			}}
			f := newFixtureTuned(t, baseYAML, nil, d.dial(t, s))
			if code, body := f.get("/"); code != http.StatusOK || body != "first" {
				t.Fatalf("GET 1: %d %q", code, body)
			}
			if code, body := f.get("/"); code != http.StatusOK || body != "second" {
				t.Fatalf("GET 2: %d %q, want the second connection's answer", code, body)
			}
		})
	}
}

// An answer header larger than the bound is a bad gateway; a body past
// directMaxBody goes through the transport and reaches the service whole.
func TestDirectAnswerHeaderBounded(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", directMaxHeader) + "\r\nContent-Length: 0\r\n\r\n"
	s := &scriptedService{script: func(n int) []string {
		if n == 1 {
			return []string{big}
		}
		return []string{answer("posted")}
	}}
	f := newFixtureTuned(t, baseYAML, nil, socketDial(t, s))
	if code, _ := f.get("/"); code != http.StatusBadGateway {
		t.Fatalf("GET with a header of %d bytes: %d, want 502", len(big), code)
	}
	post := f.req("POST", "/", strings.NewReader("a="+strings.Repeat("b", directMaxBody)))
	post.Header.Set("Origin", f.base)
	code, body, _ := f.do(post)
	if code != http.StatusOK || body != "posted" || s.posts.Load() != 1 {
		t.Fatalf("POST of %d bytes: %d %q, the service read %d", directMaxBody+2, code, body, s.posts.Load())
	}
}

// countWrites counts the writes to the connections tune's Dial makes.
type countWrites struct {
	net.Conn
	n *atomic.Int32
}

func (c countWrites) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// A direct request's header and small body leave in one write: one frame
// of a mesh stream, one write of the destination agent to the service.
func TestDirectRequestOneWrite(t *testing.T) {
	s := &scriptedService{script: func(int) []string { return []string{answer("posted")} }}
	var writes atomic.Int32
	sock := socketDial(t, s)
	f := newFixtureTuned(t, baseYAML, nil, func(c *Config) {
		sock(c)
		dial := c.Dial
		c.Dial = func(ctx context.Context, svc string, port int) (net.Conn, error) {
			conn, err := dial(ctx, svc, port)
			if err != nil {
				return nil, err
			}
			return countWrites{Conn: conn, n: &writes}, nil
		}
	})
	r := f.req("POST", "/", strings.NewReader("name=Ana&email=ana%40example.com"))
	r.Header.Set("Origin", f.base)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if code, body, _ := f.do(r); code != http.StatusOK || body != "posted" {
		t.Fatalf("POST: %d %q", code, body)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("the request left in %d writes, want 1", n)
	}
}

// The gzip the gateway asks for on a request that names no coding is
// decoded also when the request was sent again on a fresh connection.
func TestDirectGzipDecodedWhenSentAgain(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	io.WriteString(zw, "second")
	zw.Close()
	gz := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", zb.Len(), zb.String())
	for _, d := range dials {
		t.Run(d.name, func(t *testing.T) {
			s := &scriptedService{script: func(n int) []string {
				if n == 1 {
					return []string{answer("first"), ""}
				}
				return []string{gz}
			}}
			f := newFixtureTuned(t, baseYAML, nil, d.dial(t, s))
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"}, DisableCompression: true}
			t.Cleanup(tr.CloseIdleConnections)
			for _, want := range []string{"first", "second"} {
				resp, err := tr.RoundTrip(f.req("GET", "/", nil))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != want || resp.Header.Get("Content-Encoding") != "" {
					t.Fatalf("GET: %d %q (Content-Encoding %q), want 200 %q decoded", resp.StatusCode, b, resp.Header.Get("Content-Encoding"), want)
				}
			}
		})
	}
}
