package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/flow"
)

// TestSecurityEventsBounded: a client refused as fast as it can send
// (here 429 on a rate-limited route) makes a bounded number of records,
// then a summary that counts the rest; the attack it sends next, on
// another route, is recorded in full. Without the bound each refusal is a
// record, and a flood exhausts the node's flow quota and spool so that
// the attack's record is dropped with the rest.
func TestSecurityEventsBounded(t *testing.T) {
	yaml := strings.Replace(baseYAML, "    port: 8080\n", "    port: 8080\n    rate_limit: {rps: 1, burst: 1}\n", 1)
	f := newFixture(t, strings.Replace(yaml, "    path: /api/\n", "    path: /api/\n    rate_limit: {off: true}\n", 1))
	const flood = 600
	var wg sync.WaitGroup
	codes := make(chan int, flood)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += 8 {
				resp, err := f.client.Do(f.req("GET", "/", nil))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}
		}()
	}
	wg.Wait()
	close(codes)
	refused := 0
	for c := range codes {
		if c == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused < flood-1 {
		t.Fatalf("%d of %d requests refused, want all but one", refused, flood)
	}

	t.Log("the attack that follows is recorded in full")
	code, _, _ := f.do(f.req("GET", "/api/search?q="+url.QueryEscape("1' UNION SELECT password FROM users--"), nil))
	if code != http.StatusForbidden {
		t.Fatalf("SQL injection: %d, want 403", code)
	}
	var written, waf, summarised int
	var summary flow.Record
	waitFor(t, "the summaries of the refusals", func() bool {
		written, waf, summarised = 0, 0, 0
		for _, r := range f.events.all() {
			switch {
			case r.Unmapped.Suppressed > 0:
				summarised += r.Unmapped.Suppressed
				summary = r
			case r.Unmapped.Kind == KindRateLimit:
				written++
			case r.Unmapped.Kind == KindWAF && r.HTTPRequest.URL.Path == "/api/search":
				waf++
			}
		}
		return written+summarised >= refused
	})
	if written != eventClientBurst {
		t.Errorf("%d rate-limit records for %d refusals, want %d and summaries", written, refused, eventClientBurst)
	}
	if waf != 1 {
		t.Errorf("%d records of the SQL injection, want 1", waf)
	}
	if written+summarised != refused || summary.Unmapped.Kind != KindRateLimit ||
		summary.SrcEndpoint.IP != "127.0.0.1" || summary.HTTPResponse.Code != http.StatusTooManyRequests ||
		!strings.Contains(summary.Message, "counted, not recorded one by one") {
		t.Errorf("%d written and %d summarised for %d refusals; last summary %+v %+v", written, summarised, refused, summary.Unmapped, summary.SrcEndpoint)
	}

	t.Log("once the client's bucket refills, its events are recorded again")
	f.advance(time.Minute)
	if code, _, _ := f.do(f.req("GET", "/api/search?q="+url.QueryEscape("<script>alert(1)</script>"), nil)); code != http.StatusForbidden {
		t.Fatalf("XSS: %d", code)
	}
	waitFor(t, "the second attack's record", func() bool {
		for _, r := range f.events.all() {
			if r.Unmapped.Kind == KindWAF && strings.Contains(r.HTTPRequest.URL.QueryString, "script") {
				return true
			}
		}
		return false
	})
}
