package waf

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSUnescape(t *testing.T) {
	cases := []struct{ in, want string }{
		{`\x61\x6c\x65\x72\x74`, "alert"},
		{`\u0061lert(1)`, "alert(1)"},
		{`\u{61}\u{6C}ert`, "alert"},
		{`\u{1F600}`, "😀"},
		{`\uD83D\uDE00`, "😀"},
		{`\uD83D`, "\uFFFD"},
		{`\141\154\145\162\164`, "alert"},
		{`\0`, "\x00"},
		{`\400`, " 0"}, // \40 is a space; \400 is beyond \377
		{`a\nb\tc`, "a\nb\tc"},
		{"line\\\ncontinued", "linecontinued"},
		{`\'\"\\`, `'"\`},
		{`\xZZ`, "xZZ"},
		{`\u{110000}`, "u{110000}"},
		{`trailing\`, `trailing\`},
		{"no escapes", "no escapes"},
	}
	for _, c := range cases {
		if got := jsUnescape(c.in); got != c.want {
			t.Errorf("jsUnescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestJSFold(t *testing.T) {
	cases := []struct{ in, want string }{
		{`window['al'+'ert'](1)`, `window.alert(1)`},
		{`this['ale'+'rt'](this['doc'+'ument']['dom'+'ain'])`, `this.alert(this.document.domain)`},
		{`globalThis[/*foo*/'alert'/*bar*/](1)`, `globalThis.alert(1)`},
		{`window['\x61\x6c\x65\x72\x74'](1)`, `window.alert(1)`},
		{`parent['\141\154\145\162\164']('\130\123\123')`, `parent.alert('XSS')`},
		{`confirm?.(document?.cookie)`, `confirm(document.cookie)`},
		{`a?.['b']`, `a.b`},
		{`String.fromCharCode(97,108,101,114,116)`, `'alert'`},
		{`eval(atob('YWxlcnQoMSk='))`, `eval('alert(1)')`},
		{"x // comment\ny", "x \ny"},
		{`http://example.com/a`, `http://example.com/a`},
		{`x['not a name']`, `x['not a name']`},
		{`it's a dog's life`, `it's a dog's life`},
		{`rue d'Arlon`, `rue d'Arlon`},
		{"`${x}`+'y'", "`${x}`+'y'"},
		{`'a' + "b" + 'c'`, `'abc'`},
		{`<!--x`, `x`},
	}
	for _, c := range cases {
		if got := jsFold(c.in); got != c.want {
			t.Errorf("jsFold(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		// Nested percent layers, %u escapes.
		{"%2527%2520or%25201%253D1", "' or 1=1", true},
		{"%u003cscript%u003e", "<script>", true},
		// Base64 that decodes to text, in a value and in JSON.
		{"eyJpZCI6IjEgYW5kIDE9MSJ9", `{"id":"1 and 1=1"}`, true},
		{"MSB8fCB3aG9hbWkgfHwg", "1 || whoami || ", true},
		{`{"id":"L2V0Yy9wYXNzd2Q="}`, `{"id":"/etc/passwd"}`, true},
		// Character references inside markup only.
		{"<storeId>&#49;&#32;UNION&#32;SELECT</storeId>", "<storeId>1 UNION SELECT</storeId>", true},
		{"&lt;? should not trigger", "&lt;? should not trigger", false},
		// JavaScript folding.
		{`this['ale'+'rt'](1)`, `this.alert(1)`, true},
		// SQL comments cut at the end of a line.
		{"1 union#x\nselect 2", "1 union select 2", true},
		// JSON Web Tokens: header and claims, no signature.
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxJyBvciAnMSc9JzEifQ.c2ln", "{\"alg\":\"none\"}\n{\"sub\":\"1' or '1'='1\"}", true},
		// Things that stay as they are.
		{"plain words", "plain words", false},
		{"550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-446655440000", false},
		{"internationalization", "internationalization", false},
		{"/static/app.min.js", "/static/app.min.js", false},
	}
	for _, c := range cases {
		got, ok := normalize(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("normalize(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestNormalizeBounds(t *testing.T) {
	long := strings.Repeat("%25", maxNormalizeLen)
	if _, ok := normalize(long); ok {
		t.Errorf("a value over maxNormalizeLen was normalised")
	}
	// Five percent layers: only maxNormalizeRounds are undone.
	v := "%2525252527"
	got, _ := normalize(v)
	if got == "'" {
		t.Errorf("normalize(%q) undid more than %d layers: %q", v, maxNormalizeRounds, got)
	}
}

// TestDecodedLayers: every layer of encoding under a value, as the
// decoder hands it over, before the normal form strips what SQL and
// JavaScript read as comments ("#" is a URL to markup).
func TestDecodedLayers(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		// Base64 of markup whose "#" the normal form cuts as a comment.
		{"PElNRyBTUkM9IyBvbm1vdXNlb3Zlcj0iYWxlcnQoJ2tjZicpIj4=", []string{`<IMG SRC=# onmouseover="alert('kcf')">`}},
		// Base64 under percent escapes: one step undoes both, a second
		// escape layer is a second step.
		{"PHNjcmlwdD4vLyB4PC9zY3JpcHQ%2B", []string{"<script>// x</script>"}},
		{"%253Cb%253E", []string{"%3Cb%3E", "<b>"}},
		// Controls dropped.
		{"PGltZyAAc3JjPXggb25lcnJvcj0iamF2YXNjcmlwdDphbGVydCgxKSI+", []string{`<img src=x onerror="javascript:alert(1)">`}},
		// Nothing encoded: no layer, whatever the normal form does.
		{"1 union#x\nselect 2", nil},
		{`this['ale'+'rt'](1)`, nil},
		{"plain words", nil},
	}
	for _, c := range cases {
		if got := decodedLayers(c.in); !slices.Equal(got, c.want) {
			t.Errorf("decodedLayers(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Bounded: a value over maxNormalizeLen has no layers, and at most
	// maxNormalizeRounds are undone.
	if got := decodedLayers(strings.Repeat("%25", maxNormalizeLen)); got != nil {
		t.Errorf("a value over maxNormalizeLen has %d layers", len(got))
	}
	if got := decodedLayers("%2525252527"); len(got) != maxNormalizeRounds || slices.Contains(got, "'") {
		t.Errorf("decodedLayers undid more than %d layers: %q", maxNormalizeRounds, got)
	}
}

func TestStripSQLLineComments(t *testing.T) {
	cases := []struct{ in, want string }{
		{"admin'--", "admin' --"},
		{"admin'-- x", "admin' --"},
		{"1 union#x\nselect 2", "1 union select 2"},
		{"1 union-- x\r\nselect 2", "1 union select 2"},
		{"#fragment", "#fragment"},
		{"a-b--c", "a-b--c"},
		{"color #fff", "color #fff"},
	}
	for _, c := range cases {
		if got := stripSQLLineComments(c.in); got != c.want {
			t.Errorf("stripSQLLineComments(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDecodeBase64Runs(t *testing.T) {
	cases := []struct{ in, want string }{
		{"x=PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "x=<script>alert(1)</script>"},
		{"PHNjcmlw", "PHNjcmlw"}, // shorter than minBase64Len
		{"token 0123456789abcdef0123", "token 0123456789abcdef0123"},
		{"aGVsbG8gd29ybGQ", "hello world"},
		{"aGVsbG93b3JsZGFnYWlu", "aGVsbG93b3JsZGFnYWlu"}, // letters only: a word is no payload
		// A whole value that is padded Base64 is Base64 however short.
		{"IE9SIDE9MA==", " OR 1=0"},
		{"Jzw9Jw==", "'<='"},
		{"dGVzdA==", "dGVzdA=="},             // "test": a word
		{"x IE9SIDE9MA==", "x IE9SIDE9MA=="}, // a short run inside text stays
		{"abcdefg=", "abcdefg="},             // binary
		// A control character or two, as payloads split a keyword.
		{"PGltZyAAc3JjPXggb25lcnJvcj0iamF2YXNjcmlwdDphbGVydCgxKSI+", "<img \x00src=x onerror=\"javascript:alert(1)\">"},
		{"AAECAwQFBgcICQoLDA0ODxAREhM=", "AAECAwQFBgcICQoLDA0ODxAREhM="}, // bytes 0 to 19: binary
	}
	for _, c := range cases {
		if got := decodeBase64Runs(c.in); got != c.want {
			t.Errorf("decodeBase64Runs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDecodeEvasionsOverlong(t *testing.T) {
	cases := map[string]string{
		"%c0%ae%c0%ae%c1%afetc%c1%afpasswd": "../etc/passwd",
		"..%c1%af..%c1%afwindows":           "../../windows",
		"%c1%81":                            "/",
	}
	for in, want := range cases {
		if got, _, _ := decodeEvasions(in); got != want {
			t.Errorf("decodeEvasions(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzJSUnescape(f *testing.F) {
	for _, s := range []string{`\x41`, `\u{1F600}`, `\uD83D\uDE00`, `\777`, `\`, `\u{`, "\\\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := jsUnescape(s)
		if len(out) > len(s) {
			t.Fatalf("jsUnescape(%q) grew to %q", s, out)
		}
	})
}

func FuzzJSFold(f *testing.F) {
	for _, s := range []string{`window['al'+'ert'](1)`, `a?.b`, `String.fromCharCode(1,2)`, `atob('YQ==')`, `'unterminated`, "/*", "`${"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := jsFold(s)
		if len(out) > len(s) {
			t.Fatalf("jsFold(%q) grew to %q", s, out)
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"%2527", "eyJhIjoiYiJ9", "<a>&#49;</a>", `this['a'+'b']`, "1#x\nunion", "%u0041", "eyJ.eyJ.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, ok := normalize(s)
		if !ok && out != s {
			t.Fatalf("normalize(%q) changed the value without saying so", s)
		}
		if len(out) > len(s)+16 {
			t.Fatalf("normalize(%q) grew to %d bytes", s, len(out))
		}
		if utf8.ValidString(s) && ok && !utf8.ValidString(out) && !strings.Contains(s, "%") && !strings.Contains(s, "\\") {
			t.Fatalf("normalize(%q) made invalid UTF-8 out of valid text without escapes: %q", s, out)
		}
	})
}

func FuzzDecodedLayers(f *testing.F) {
	for _, s := range []string{"%2527", "PHNjcmlwdD4=", "IE9SIDE9MA==", "<a>&#49;</a>", "eyJ.eyJ.x", "%25%32%35"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		layers := decodedLayers(s)
		if len(layers) > maxNormalizeRounds {
			t.Fatalf("decodedLayers(%q) gave %d layers", s, len(layers))
		}
		for _, l := range layers {
			if len(l) > len(s) || l == s {
				t.Fatalf("decodedLayers(%q) gave %q", s, l)
			}
		}
	})
}

func FuzzDecodeBase64Runs(f *testing.F) {
	for _, s := range []string{"aGVsbG8gd29ybGQ=", "PHNjcmlwdD4=", "====", "a-b_c+d/e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if out := decodeBase64Runs(s); len(out) > len(s) {
			t.Fatalf("decodeBase64Runs(%q) grew to %q", s, out)
		}
	})
}
