package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// answeringService answers every request but "/end" with the raw bytes
// of its answer, and records each such request as it arrived, byte for
// byte; "/end" is answered "end". With closeAfter it closes the
// connection after its answer.
type answeringService struct {
	mu         sync.Mutex
	answer     string
	closeAfter bool
	got        []string
}

func (s *answeringService) set(answer string, closeAfter bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer, s.closeAfter, s.got = answer, closeAfter, nil
}

func (s *answeringService) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *answeringService) serve(c net.Conn) {
	defer c.Close()
	var rec bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &rec))
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		raw := rec.String()[:rec.Len()-br.Buffered()]
		rec.Next(len(raw))
		if req.URL.Path == "/end" {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend"); err != nil {
				return
			}
			continue
		}
		s.mu.Lock()
		s.got = append(s.got, raw)
		answer, closeAfter := s.answer, s.closeAfter
		s.mu.Unlock()
		if _, err := io.WriteString(c, answer); err != nil || closeAfter {
			return
		}
	}
}

// directFixture is a gateway in front of an answeringService reached over
// Unix sockets, a connection each.
func directFixture(t *testing.T, yaml string) (*fixture, *answeringService) {
	s := &answeringService{}
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
	f := newFixtureTuned(t, baseYAML+yaml, nil, func(c *Config) {
		c.Dial = func(ctx context.Context, _ string, _ int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ln.Addr().String())
		}
	})
	return f, s
}

// endRequest follows every request of an exchange on its connection: the
// gateway closes the connection once it has answered it.
const endRequest = "GET /end HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nConnection: close\r\n\r\n"

var (
	requestIDs = regexp.MustCompile(`[0-9a-f]{32}`)
	dates      = regexp.MustCompile(`(?m)^Date: [^\r\n]*`)
	streamIDs  = regexp.MustCompile(`stream ID [0-9]+`)
)

// exchanged is what one request through the gateway came to: what the
// client read, to the end of the connection, and what the service read.
type exchanged struct {
	client  string
	service []string
}

// exchange sends request (raw HTTP/1.1), then endRequest, on one
// connection, the service answering answer; request IDs and dates are
// masked. The gateway's idle upstream connections are closed after, so
// that every exchange starts alike.
func exchange(t *testing.T, f *fixture, s *answeringService, request, answer string, closeAfter bool) exchanged {
	t.Helper()
	s.set(answer, closeAfter)
	defer f.gw.upstreams.closeIdle()
	c := f.dialALPN("http/1.1")
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	// Written as the answer is read: the gateway may answer (a refusal)
	// and close before it has read all of it.
	go io.WriteString(c, request+endRequest)
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("request %q, answer %q: no end to the gateway's answer: %v; read %q", request, answer, err, b)
	}
	mask := func(s string) string {
		return dates.ReplaceAllString(requestIDs.ReplaceAllString(s, "<id>"), "Date: <date>")
	}
	got := exchanged{client: mask(string(b))}
	for _, r := range s.received() {
		got.service = append(got.service, mask(r))
	}
	return got
}

// sameAsProxy sends request through serveDirect and through the reverse
// proxy alone, the service answering answer both times, and fails unless
// the client and the service read the same bytes.
func sameAsProxy(t *testing.T, f *fixture, s *answeringService, request, answer string, closeAfter bool) exchanged {
	t.Helper()
	f.gw.proxyAll.Store(false)
	direct := exchange(t, f, s, request, answer, closeAfter)
	f.gw.proxyAll.Store(true)
	proxied := exchange(t, f, s, request, answer, closeAfter)
	f.gw.proxyAll.Store(false)
	if settle(direct.client, answer) != settle(proxied.client, answer) {
		t.Errorf("request %q, answer %q: the client read\n%q\nwhere through the reverse proxy\n%q", request, answer, direct.client, proxied.client)
	}
	if strings.Join(direct.service, "|") != strings.Join(proxied.service, "|") {
		t.Errorf("request %q, answer %q: the service read\n%q\nwhere through the reverse proxy\n%q", request, answer, direct.service, proxied.service)
	}
	return direct
}

// settle takes out of what the client read the two things the reverse
// proxy itself decides differently from run to run, for an answer it
// streams (of unknown length, with trailers or server-sent events): the
// order of the trailer names it announces (a map's), and, for a service
// that named no Content-Type, whether net/http sniffed one (it flushes the
// header on a timer of its own, racing the body's first write).
func settle(client, answer string) string {
	var out strings.Builder
	for {
		head, rest, ok := strings.Cut(client, "\r\n\r\n")
		if !ok {
			return out.String() + client
		}
		lines := strings.Split(head, "\r\n")
		if len(lines[0]) > 9 && lines[0][9] == '1' { // a 1xx
			out.WriteString(head + "\r\n\r\n")
			client = rest
			continue
		}
		streamed := !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "Content-Length: ") })
		named := strings.Contains(strings.ToLower(answer), "content-type:")
		var kept []string
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "Trailer: "); ok {
				names := strings.Split(v, ", ")
				slices.Sort(names)
				l = "Trailer: " + strings.Join(names, ", ")
			}
			if streamed && !named && strings.HasPrefix(l, "Content-Type: ") {
				continue
			}
			kept = append(kept, l)
		}
		return out.String() + strings.Join(kept, "\r\n") + "\r\n\r\n" + rest
	}
}

// The requests and answers the differential tests send, as seeds too.
var (
	directRequests = []string{
		"GET /a?x=1&y=%41 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 t\r\nAccept: text/html\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: localhost:443\r\nUser-Agent: t\r\nConnection: keep-alive, X-Gone, User-Agent\r\nConnection: x-request-id\r\nX-Gone: 1\r\nX-Kept: 2\r\n\r\n",
		"GET /te HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nTE: gzip, trailers\r\n\r\n",
		"GET /te HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nTE: gzip\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\n\r\n",
		"GET /p HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.2\r\nX_Forwarded_Host: evil\r\nX-Real-IP: 10.0.0.3\r\nX-Request-ID: mine\r\nX-Original-URL: /admin\r\n\r\n",
		"GET /q?a=1;b=2 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n",
		"GET /q?a=%zz&b HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n",
		"GET /m HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nAccept: a\r\nAccept: b\r\nX-Empty: \r\nAccept-Encoding: br, zstd\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
		"HEAD /h HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n",
		"OPTIONS /o HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n",
		"DELETE /d HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\n\r\n",
		"POST /form HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 17\r\n\r\nname=moat&x=1%202",
		"POST /json HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n{\"a\":\"" + strings.Repeat("x", 1016) + "\"}",
		"POST /empty HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\nContent-Length: 0\r\n\r\n",
		"POST /expect HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
		"POST /chunked HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
		"PUT /big HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nOrigin: https://localhost\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("b", 70000),
		"GET /ws HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
		"GET /close HTTP/1.0\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n",
	}
	directAnswers = []struct {
		raw        string
		closeAfter bool
	}{
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.1 200 OK\r\nConnection: X-Hop, close\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: h2\r\nX-Kept: 2\r\nContent-Length: 2\r\n\r\nok", true},
		{"HTTP/1.1 201 Created\r\nX-Request-Id: theirs\r\nStrict-Transport-Security: max-age=0\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n ok\r\n0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nTrailer: X-T, X-U\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\nX-V: 3\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nContent-Length: 10\r\n\r\ndata: x\n\n\n", false},
		{"HTTP/1.1 200 OK\r\nContent-Type: application/event-stream-like\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false},
		{"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", false},
		{"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nnot found", false},
		{"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + fmt.Sprint(len(gzipped("hello, gzip"))) + "\r\n\r\n" + string(gzipped("hello, gzip")), false},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nclose-delimited", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true},
		{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false},
		{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", true},
		{"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok", false},
		{"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok", false},
		{"nonsense\r\n\r\n", true},
		{"", true},
		{"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 55\r\n\r\nYou have an error in your SQL syntax; check the manual.", false},
	}
)

// TestServeDirectAsProxy: a request forwarded by serveDirect reaches the
// service, and its answer the client, byte for byte as through the
// reverse proxy, for every request against every answer: plain ones,
// hop-by-hop and Connection-listed fields both ways, Te, the client's
// proxy headers, queries the proxy encodes again, bodies, 1xx answers,
// chunked answers and trailers, server-sent events, gzip, answers cut
// short, broken or refused (502); with the WAF off, and on with its
// response phase (which asks the service for gzip, and refuses an SQL
// error, or lets it through when only detecting).
func TestServeDirectAsProxy(t *testing.T) {
	for _, c := range []struct{ name, yaml string }{
		{"waf off", "rate_limit: {off: true}\nwaf: {disabled: true}\n"},
		{"waf on, responses inspected", "rate_limit: {off: true}\nwaf: {inspect_responses: true}\n"},
		{"waf detecting only", "rate_limit: {off: true}\nwaf: {inspect_responses: true, detection_only: true}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, s := directFixture(t, c.yaml)
			for _, req := range directRequests {
				for _, a := range directAnswers {
					sameAsProxy(t, f, s, req, a.raw, a.closeAfter)
				}
			}
		})
	}
}

// TestServeDirectTakesPlainRequests: the requests and answers of the
// plain case are serveDirect's own, the others the reverse proxy's.
func TestServeDirectTakesPlainRequests(t *testing.T) {
	for _, c := range []struct {
		req   string
		plain bool
	}{
		{directRequests[0], true},
		{directRequests[3], true},
		{directRequests[13], true},
		{directRequests[14], true},
		{directRequests[15], true},
		{directRequests[7], false},  // ";" in the query
		{directRequests[8], false},  // "%zz" in the query
		{directRequests[17], false}, // chunked
		{directRequests[18], false}, // past directMaxBody
	} {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(c.req)))
		if err != nil {
			t.Fatal(err)
		}
		if got := plainForward(r); got != c.plain {
			t.Errorf("plainForward(%q) = %v, want %v", c.req, got, c.plain)
		}
	}
	for i, plain := range map[int]bool{0: true, 1: true, 2: true, 3: false, 4: false, 5: false, 6: false, 11: true} {
		a := directAnswers[i].raw
		r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(a)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := plainAnswer(r); got != plain {
			t.Errorf("plainAnswer(%q) = %v, want %v", a, got, plain)
		}
	}
}

// FuzzServeDirect holds serveDirect to the reverse proxy for any request
// and any answer: what the client and the service read is the same. The
// request is method, target, fields (lines) and body, with Host and the
// body's length added; an answer whose end the service cannot show
// (incomplete, or with bytes past its end) is followed by the end of the
// connection.
func FuzzServeDirect(f *testing.F) {
	for i, req := range directRequests {
		head, body, _ := strings.Cut(req, "\r\n\r\n")
		line, fields, _ := strings.Cut(head, "\r\n")
		parts := strings.SplitN(line, " ", 3)
		var kept []string
		for _, l := range strings.Split(fields, "\r\n") {
			if n, _, _ := strings.Cut(l, ":"); !strings.EqualFold(n, "Host") && !strings.EqualFold(n, "Content-Length") {
				kept = append(kept, l)
			}
		}
		a := directAnswers[i%len(directAnswers)]
		f.Add(parts[0], parts[1], strings.Join(kept, "\n"), body, a.raw)
	}
	f.Fuzz(func(t *testing.T, method, target, fields, body, answer string) {
		if strings.ContainsAny(method+target, " \r\n") || len(body) > 1<<17 || len(fields) > 8<<10 {
			return
		}
		var req strings.Builder
		fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\n", method, target)
		for _, l := range strings.Split(fields, "\n") {
			l = strings.TrimSuffix(l, "\r")
			if n, _, _ := strings.Cut(l, ":"); l == "" || strings.EqualFold(strings.TrimSpace(n), "Content-Length") || strings.EqualFold(strings.TrimSpace(n), "Transfer-Encoding") {
				continue
			}
			req.WriteString(l + "\r\n")
		}
		if body != "" {
			fmt.Fprintf(&req, "Content-Length: %d\r\n", len(body))
		}
		req.WriteString("\r\n" + body)
		fx, svc := directFixture(t, "rate_limit: {off: true}\nwaf: {disabled: true}\nlimits: {read_timeout: 5s}\n")
		sameAsProxy(t, fx, svc, req.String(), answer, !wholeAnswer(answer, method))
	})
}

// wholeAnswer reports whether answer is answers to one request of method,
// the last final, that end where it ends.
func wholeAnswer(answer, method string) bool {
	br := bufio.NewReader(strings.NewReader(answer))
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return false
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.Close {
			return false
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return br.Buffered() == 0
		}
	}
}

// TestServeDirectAsProxyH2: over HTTP/2, a client reads the same answer
// from serveDirect as from the reverse proxy: status, fields, body, how
// the body ended, trailers.
func TestServeDirectAsProxyH2(t *testing.T) {
	f, s := directFixture(t, "rate_limit: {off: true}\nwaf: {disabled: true}\n")
	type read struct {
		proto, status string
		header        http.Header
		body          string
		err           string
		trailer       http.Header
	}
	do := func(method, target, body string, h http.Header, answer string, closeAfter bool) read {
		s.set(answer, closeAfter)
		defer f.gw.upstreams.closeIdle()
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req := f.req(method, target, rb)
		for k, vv := range h {
			req.Header[k] = vv
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return read{err: streamIDs.ReplaceAllString(err.Error(), "stream ID <n>")}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got := read{proto: resp.Proto, status: resp.Status, header: resp.Header, body: requestIDs.ReplaceAllString(string(b), "<id>"), trailer: resp.Trailer}
		if err != nil {
			got.err = streamIDs.ReplaceAllString(err.Error(), "stream ID <n>")
		}
		delete(got.header, "Date")
		if got.header.Get("X-Request-Id") != "" {
			got.header.Set("X-Request-Id", "<id>")
		}
		if resp.ContentLength < 0 && !strings.Contains(strings.ToLower(answer), "content-type:") {
			delete(got.header, "Content-Type") // sniffed or not: see settle
		}
		return got
	}
	for _, r := range []struct {
		method, target, body string
		h                    http.Header
	}{
		{"GET", "/a?x=1", "", nil},
		{"GET", "/c", "", http.Header{"X-Forwarded-For": {"10.0.0.1"}, "Te": {"trailers"}, "Accept-Encoding": {"br"}}},
		{"POST", "/form", "name=moat", http.Header{"Origin": {"https://localhost"}, "Content-Type": {"application/x-www-form-urlencoded"}}},
		{"HEAD", "/h", "", nil},
	} {
		for _, a := range directAnswers {
			f.gw.proxyAll.Store(false)
			direct := do(r.method, r.target, r.body, r.h, a.raw, a.closeAfter)
			f.gw.proxyAll.Store(true)
			proxied := do(r.method, r.target, r.body, r.h, a.raw, a.closeAfter)
			f.gw.proxyAll.Store(false)
			if direct.proto != "HTTP/2.0" && direct.err == "" {
				t.Fatalf("the client spoke %q, not HTTP/2", direct.proto)
			}
			if !reflect.DeepEqual(direct, proxied) {
				t.Errorf("%s %s, answer %q: the client read\n%+v\nwhere through the reverse proxy\n%+v", r.method, r.target, a.raw, direct, proxied)
			}
		}
	}
}
