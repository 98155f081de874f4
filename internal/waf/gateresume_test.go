package waf

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// TestGateResume: the phase-2 gate takes what the phase-1 pass knew of
// each value (gateState.resume) and reads the collections again.
//
//   - A request whose phase-2 values are those of phase 1 (a GET with a
//     query) has the gate read fewer values' byte sets than with every
//     pass starting anew, with the same outcome: what phase 1 read of
//     the query and the headers is not read again.
//   - Requests whose attack is only in what Coraza and the inspection
//     pass add between the passes (a form or JSON body, a cookie's or an
//     argument's normal form, a Referer's query), after a benign query
//     that phase 1 read, are refused with the same matched rules and
//     values as with every pass starting anew: a pass that kept what
//     phase 1 read of ARGS, ARGS_NAMES or REQUEST_COOKIES would let them
//     through.
func TestGateResume(t *testing.T) {
	var w [2]*WAF
	for i := range w {
		var err error
		if w[i], err = New(Config{Budget: time.Hour}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w[i].Close() })
		w[i].plan.counting = true
	}
	w[1].plan.fresh = true
	get := func() *http.Request {
		r := httptest.NewRequest("GET", "/products?id=42&sort=price", http.NoBody)
		r.Header.Set("Host", "localhost")
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
		r.Header.Set("Accept", "text/html,application/json")
		return r
	}
	// Three times each: the third request finds the cache warm on both
	// sides. On the second the sides differ: the fresh one looks each
	// argument text up in both phases, so the seen filter has it keep
	// them a request earlier.
	for i := range 3 {
		var read [2]int64
		var v [2]Verdict
		var m [2][]string
		for j := range w {
			before := w[j].plan.read.Load()
			_, v[j], m[j] = workOf(t, w[j], get())
			read[j] = w[j].plan.read.Load() - before
		}
		if !reflect.DeepEqual(v[0], v[1]) || !slices.Equal(m[0], m[1]) {
			t.Fatalf("GET: outcomes differ: resumed %+v %q, fresh %+v %q", v[0], m[0], v[1], m[1])
		}
		t.Logf("GET %d: %d byte sets read resumed, %d fresh", i+1, read[0], read[1])
		if read[0] >= read[1] && i != 1 {
			t.Errorf("GET %d: the gate read %d byte sets with phase 2 resuming phase 1's pass, %d without", i+1, read[0], read[1])
		}
	}
	attacks := []struct {
		name, target, ctype, body, cookie, referer string
	}{
		{name: "form", target: "/contact?id=42", ctype: "application/x-www-form-urlencoded",
			body: "name=Ana&comment=1%27+UNION+SELECT+password+FROM+users--"},
		{name: "json", target: "/api?id=42", ctype: "application/json",
			body: `{"q":"<script>alert(document.cookie)</script>"}`},
		{name: "normal form", target: "/search?id=42&q=%252e%252e%252f%252e%252e%252fetc%252fpasswd"},
		{name: "cookie", target: "/search?id=42", cookie: "pref=%253Cscript%253Ealert(1)%253C%252Fscript%253E"},
		{name: "referer", target: "/search?id=42", referer: "https://localhost/?q=1%27+UNION+SELECT+password+FROM+users--"},
	}
	for _, a := range attacks {
		req := func() *http.Request {
			method, body := "GET", http.NoBody
			var r *http.Request
			if a.body != "" {
				method = "POST"
				r = httptest.NewRequest(method, a.target, strings.NewReader(a.body))
				r.Header.Set("Content-Type", a.ctype)
			} else {
				r = httptest.NewRequest(method, a.target, body)
			}
			r.Header.Set("Host", "localhost")
			r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36")
			if a.cookie != "" {
				r.Header.Set("Cookie", a.cookie)
			}
			if a.referer != "" {
				r.Header.Set("Referer", a.referer)
			}
			return r
		}
		_, vk, mk := workOf(t, w[0], req())
		_, vf, mf := workOf(t, w[1], req())
		if !vf.Detected {
			t.Fatalf("%s: not refused with every pass fresh: %+v", a.name, vf)
		}
		if !reflect.DeepEqual(vk, vf) || !slices.Equal(mk, mf) {
			t.Errorf("%s: outcomes differ: resumed %+v %q, fresh %+v %q", a.name, vk, mk, vf, mf)
		}
	}
}

// TestGateResumeReadsAgain: a pass resumed (gateState.resume) reads
// each selector's values from the collections again, where Coraza and
// the inspection pass add values between the passes, and keeps what it
// knew of each value read before: its index, its transformations and
// their bytes.
func TestGateResumeReadsAgain(t *testing.T) {
	w, err := New(Config{Budget: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := w.plan
	k := slices.IndexFunc(p.selectors, func(sel gateSelector) bool {
		return sel.v == variables.RequestCookies && sel.key == "" && sel.keyRx == nil && !sel.count
	})
	if k < 0 {
		t.Fatal("no selector of every cookie")
	}
	node := slices.IndexFunc(p.nodes, func(n gateNode) bool { return n.parent == 0 && n.fn != nil })
	r := httptest.NewRequest("GET", "/", http.NoBody)
	r.Header.Set("Cookie", "a=Ab%2541")
	tx := w.Begin(nil)
	defer tx.Close()
	if _, err := tx.Request(r, "127.0.0.1:4000"); err != nil {
		t.Fatal(err)
	}
	st := tx.tx.(plugintypes.TransactionState)
	s := &gateState{valIdx: map[strID]int{}}
	s.reset(p, st)
	before := slices.Clone(s.values(k))
	if len(before) == 0 {
		t.Fatal("no cookie read")
	}
	vi := before[0]
	s.transformed(node, vi)
	s.bytes(node, vi)
	st.Variables().RequestCookies().Add("b", "<script>")
	s.resume()
	after := s.values(k)
	if !slices.Contains(after, before[0]) || len(after) != len(before)+1 {
		t.Fatalf("values %v after a cookie was added to %v", after, before)
	}
	if at := vi*len(p.nodes) + node; s.tstep[at] == 0 || s.bset[at] == 0 {
		t.Errorf("value %q: its transformation by chain %d forgotten", s.vals[vi], node)
	}
}

// TestGateStable: what the phase-2 gate keeps of the phase-1 pass's
// reads of the stableVariables (gateState.resume) is what it would read
// of the transaction there, value for value (the same strings, at the
// same addresses), on every stage of CRS's regression tests and on the
// committed corpus. Fails when a variable that Coraza or the inspection
// pass changes between the passes (ARGS_GET, REQUEST_COOKIES) is taken
// as stable.
func TestGateStable(t *testing.T) {
	w, err := New(crsTestConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := w.plan
	kept := map[variables.RuleVariable]int{}
	p.onResume = func(s *gateState) {
		f := &gateState{valIdx: map[strID]int{}}
		f.reset(p, s.tx)
		for _, k := range s.selRead {
			// The same values, in whatever order (a collection's
			// FindAll hands them out in its map's).
			ids := func(st *gateState, vis []int) []strID {
				out := make([]strID, len(vis))
				for i, vi := range vis {
					out[i] = strID{unsafe.Pointer(unsafe.StringData(st.vals[vi])), len(st.vals[vi])}
				}
				slices.SortFunc(out, func(a, b strID) int { return cmp.Or(cmp.Compare(uintptr(a.p), uintptr(b.p)), cmp.Compare(a.n, b.n)) })
				return out
			}
			if got, want := ids(s, s.sel[k]), ids(f, f.values(int(k))); !slices.Equal(got, want) {
				t.Errorf("selector %+v: kept %d values, the transaction holds %d, or others", p.selectors[k], len(got), len(want))
			}
			kept[p.selectors[k].v]++
		}
	}
	inputs := append(crsInputs(t), corpusInputs(t, false)...)
	if testing.Short() {
		inputs = inputs[:len(inputs)/4]
	}
	for _, raw := range inputs {
		verdictOf(w, nil, raw)
		if t.Failed() {
			t.Fatalf("on %q", trimInput(raw))
		}
	}
	t.Logf("selectors kept, by variable: %v", kept)
	for _, v := range []variables.RuleVariable{variables.RequestHeaders, variables.RequestFilename} {
		if kept[v] == 0 {
			t.Errorf("no selector of %s kept", v.Name())
		}
	}
}
