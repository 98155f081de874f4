package waf

import (
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestFlattenJSON(t *testing.T) {
	cases := []struct {
		in   string
		want [][2]string
		ok   bool
	}{
		{`{"a":{"b":"x"},"n":1,"z":null}`, [][2]string{{"f.a.b", "x"}, {"f.n", "1"}, {"f.z", ""}}, true},
		{`[{"u":"v"},"w"]`, [][2]string{{"f.0.u", "v"}, {"f.1", "w"}, {"f", "2"}}, true},
		{`{"s":"{\"in\":\"<b>\"}"}`, [][2]string{{"f.s.in", "<b>"}}, true},
		{`{"a":1`, nil, false},
		{`{}`, nil, false},
		{strings.Repeat("[", nestedMaxDepth+1) + strings.Repeat("]", nestedMaxDepth+1), nil, false},
	}
	for _, c := range cases {
		got, ok := flattenJSON("f", c.in)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("flattenJSON(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func FuzzFlattenJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"c"}]}`, `[]`, `{"x":"[\"y\"]"}`, `{`, `[[[[]]]]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		leaves, ok := flattenJSON("p", s)
		if !ok {
			return
		}
		if len(leaves) == 0 || len(leaves) > nestedMaxLeaves+nestedMaxDepth {
			t.Fatalf("%d leaves out of %q", len(leaves), s)
		}
		for _, kv := range leaves {
			if !strings.HasPrefix(kv[0], "p") {
				t.Fatalf("leaf name %q lost its prefix", kv[0])
			}
		}
	})
}

// JSON inside a form field, a query value or a multipart part is judged
// leaf by leaf: its syntax alone blocks nothing, and an attack in a leaf
// is still blocked.
func TestNestedJSON(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	benign := `{"duration":{"fetch":[{"url":"https://cdn.example/a.php?x=1&y=2","status":200,"method":"get"}]},"msg":["load fail: https://example.com/report.php?id=3|ok"],"dom":{"parentNode":"div"},"profile_id":"7"}`
	attack := `{"items":[{"note":"1' UNION SELECT password FROM users--"}]}`
	xss := `{"a":{"b":"<script>alert(document.cookie)</script>"}}`
	cases := []struct {
		name, method, target, ctype, body string
		block                             bool
	}{
		{"form benign", "POST", "/t", "application/x-www-form-urlencoded", "payload=" + url.QueryEscape(benign), false},
		{"query benign", "GET", "/t?payload=" + url.QueryEscape(benign), "", "", false},
		{"multipart benign", "POST", "/t", "multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n" + benign + "\r\n--XyZ--\r\n", false},
		{"form sqli", "POST", "/t", "application/x-www-form-urlencoded", "payload=" + url.QueryEscape(attack), true},
		{"query xss", "GET", "/t?payload=" + url.QueryEscape(xss), "", "", true},
		{"multipart xss", "POST", "/t", "multipart/form-data; boundary=XyZ", "--XyZ\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n" + xss + "\r\n--XyZ--\r\n", true},
		{"query value in a form field", "POST", "/t", "application/x-www-form-urlencoded", "u=" + url.QueryEscape("https://example.com/log.php?app=flash&type=0&ver=2&path=/a"), false},
		{"sqli in a nested query", "GET", "/t?u=" + url.QueryEscape("https://example.com/a?id=1%27%20UNION%20SELECT%20password%20FROM%20users--&x=1"), "", "", true},
		{"key xss", "GET", "/t?p=" + url.QueryEscape(`{"<script>alert(1)</script>":1}`), "", "", true},
	}
	for _, c := range cases {
		r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
		if c.ctype != "" {
			r.Header.Set("Content-Type", c.ctype)
		}
		r.Header.Set("User-Agent", "Mozilla/5.0")
		r.Header.Set("Accept", "*/*")
		tx := w.Begin(nil)
		v, err := tx.Request(r, "192.0.2.1:5000")
		tx.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if v.Block != c.block {
			t.Errorf("%s: block %v, want %v (rules %v, %s %q)", c.name, v.Block, c.block, v.RuleIDs, v.Variable, v.Matched)
		}
	}
}

func TestLooksQuery(t *testing.T) {
	cases := map[string]bool{
		"https://example.com/p.php?a=1&type=0": true,
		"/fcg-bin/x?a=b":                       true,
		"app=flash&url=undefined&type=0":       true,
		"a=1":                                  false,
		"x=1&whoami":                           false,
		"1&type c:\\boot.ini":                  false,
		"a=1&b=2;cat /etc/passwd":              false,
		// A URL's query values may hold anything a URL may carry
		// unescaped but white space: each is inspected on its own.
		"https://e.com/?q=<script>&x=1":          true,
		"https://e.com/?q=a b&x=1":               false,
		`/SEARCH/HANDMADE?Q="LIKE"+STAMP&X=1`:    true,
		"javascript:alert(1)?a=1&b=2":            false,
		"a=1&b=$(id)":                            false,
		"page=/[...slug]&x=1":                    true,
		"https://e.com/a?x=%27%20or%201=1--&y=2": true,
	}
	for in, want := range cases {
		if got := looksQuery(in); got != want {
			t.Errorf("looksQuery(%q) = %v, want %v", in, got, want)
		}
	}
	var out [][2]string
	splitQuery("u", "https://e.com/a?x=1&y=", &out)
	if want := [][2]string{{"u", "https://e.com/a"}, {"u.x", "1"}, {"u.y", ""}}; !reflect.DeepEqual(out, want) {
		t.Errorf("splitQuery = %q, want %q", out, want)
	}
}

func FuzzSplitQuery(f *testing.F) {
	for _, s := range []string{"a=1&b=2", "https://e.com/p?x=1", "/p?", "a=&=b", "?a=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !looksQuery(s) {
			return
		}
		var out [][2]string
		splitQuery("q", s, &out)
		if len(out) == 0 {
			t.Fatalf("no parts out of %q", s)
		}
		for _, kv := range out {
			if kv[0] != "q" && !strings.HasPrefix(kv[0], "q.") {
				t.Fatalf("part name %q lost its prefix", kv[0])
			}
			if !strings.Contains(s, kv[1]) {
				t.Fatalf("part value %q is not in %q", kv[1], s)
			}
		}
	})
}
