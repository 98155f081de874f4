package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// echoFields is a service that answers each request with the fields the
// gateway set on it, as it received them, and a body of the length the
// query's n asks for, made of the query's tag.
func echoFields(t *testing.T) func(*Config) {
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Request-Id", "X-Real-Ip", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			w.Header()["Seen-"+k] = r.Header.Values(k)
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		tag := r.URL.Query().Get("tag")
		_, _ = io.WriteString(w, strings.Repeat(tag, n/len(tag)))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return func(c *Config) {
		c.Dial = func(ctx context.Context, _ string, _ int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", ln.Addr().String())
		}
	}
}

// What the gateway reuses from one request to the next (the buffers the
// answers are copied through, the upstream connections) carries nothing of
// one request into another: concurrent requests from two clients, answers
// longer than a copy buffer between short ones, each get their own body,
// and the service sees each request's own ID, client and host.
func TestReusedBuffersKeepRequestsApart(t *testing.T) {
	f := newFixtureTuned(t, baseYAML+noWAF+"rate_limit:\n  off: true\n", nil, echoFields(t))
	clients := map[string]*http.Client{"127.0.0.1": f.clientFrom("127.0.0.1"), "127.0.0.2": f.clientFrom("127.0.0.2")}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 4 {
		ip := []string{"127.0.0.1", "127.0.0.2"}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				n := 10
				if i%2 == 0 {
					n = 40_000 + 10*w // past one copy buffer (32 KiB)
				}
				tag := fmt.Sprintf("w%di%02d.", w, i)
				want := strings.Repeat(tag, n/len(tag))
				r := f.req("GET", fmt.Sprintf("/echo?n=%d&tag=%s", n, tag), nil)
				resp, err := clients[ip].Do(r)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				if string(body) != want {
					errs <- fmt.Errorf("%s: answer of %d bytes, want %d of %q (starts %.40q)", tag, len(body), len(want), tag, body)
				}
				id := resp.Header.Get("X-Request-Id")
				for k, v := range map[string]string{"X-Request-Id": id, "X-Real-Ip": ip, "X-Forwarded-For": ip,
					"X-Forwarded-Host": r.URL.Host, "X-Forwarded-Proto": "https"} {
					if got := resp.Header.Values("Seen-" + k); len(got) != 1 || got[0] != v {
						errs <- fmt.Errorf("%s: the service saw %s %q, want %q", tag, k, got, v)
					}
				}
				if len(id) != 32 {
					errs <- fmt.Errorf("%s: request ID %q", tag, id)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
