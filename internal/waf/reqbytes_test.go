package waf

import (
	"net/url"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestRequiredBytes: every match of a pattern holds a byte of its
// requiredBytes set, on inputs chosen where the set is easy to get wrong
// (folding onto runes past ASCII, invalid bytes read as U+FFFD, wide
// classes past ASCII, optional parts), and a value without one is
// refused by the necessity test only where the pattern does not match.
func TestRequiredBytes(t *testing.T) {
	inputs := []string{"", "a", "K", "\u212a", "\u017f", "s", "x\xffy", "\xc3(", "\xed\xa0\x80", "é", "É", "日本",
		"\U0010ffff", "\U00010000", "\u07ff", "\u0800", "a b", "a|b", "kill", "\u212aill", "cat /etc/passwd", "ls -la", "a\tb"}
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`(?i)k`, true},
		{`(?i)s`, true},
		{`\x{fffd}`, true},
		{`[^a]`, true},
		{`[\x{80}-\x{10ffff}]`, true},
		{`[\x{800}-\x{ffff}]x`, true},
		{`[\x{d7ff}-\x{e000}]`, true},
		{`a|b c`, true},
		{`(?:ab)+`, true},
		{`(?:ab){2,}`, true},
		{`x*`, false},
		{`x?`, false},
		{`(?:a|)`, false},
		{`^$`, false},
		{`.`, false},
		{`\b`, false},
		{`(?i)(?:ca|l)[\s|&]`, true},
	} {
		tree, err := syntax.Parse("(?sm)"+tc.expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		set, ok := requiredBytes(tree)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.expr, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		re := regexp.MustCompile("(?sm)" + tc.expr)
		for _, in := range inputs {
			checkMatches(t, tc.expr, re, &set, in)
		}
		// Every rune alone, and every byte alone.
		for r := rune(0); r <= 0x10ffff; r += 97 {
			checkMatches(t, tc.expr, re, &set, string(r))
		}
		for c := range 256 {
			checkMatches(t, tc.expr, re, &set, string([]byte{byte(c)}))
		}
	}
}

// TestRequiredBytesRuleSet: for every @rx pattern of the rule set with a
// byte test, every match the pattern finds in CRS's regression requests
// (request lines and bodies, as sent and URL-decoded) holds a byte of it, and the test keeps at
// least the evasion-tolerant command patterns (932230), which it is
// for.
func TestRequiredBytesRuleSet(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	// The request line and the body, as sent and URL-decoded: the
	// headers are alike from test to test.
	var inputs []string
	for _, raw := range crsInputs(t) {
		head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
		line, _, _ := strings.Cut(head, "\r\n")
		for _, s := range []string{line, body} {
			if s == "" {
				continue
			}
			inputs = append(inputs, s)
			if d, err := url.QueryUnescape(strings.ReplaceAll(s, "+", "%2B")); err == nil && d != s {
				inputs = append(inputs, d)
			}
		}
	}
	tested, commands := 0, false
	rxCache.Range(func(k, v any) bool {
		o := v.(*rxCompiled).op
		if o.need.class == nil {
			return true
		}
		if o.std == nil {
			t.Errorf("%.60q: a byte test on a binary pattern", k)
			return true
		}
		tested++
		commands = commands || strings.Contains(k.(string), `\x5c?[\s\x0b&\),<>\|].*`)
		// The matches are looked for where the literal test passes
		// (elsewhere there are none): the byte test is the one checked.
		lits := *o.need
		lits.class = nil
		for _, in := range inputs {
			if lits.mayMatch(in) {
				checkMatches(t, k.(string), o.std, o.need.class, in)
			}
		}
		return true
	})
	if tested < 50 || !commands {
		t.Errorf("%d patterns with a byte test (command patterns among them: %v)", tested, commands)
	}
}

// checkMatches fails t when a match of re in in holds no byte of set, or
// when the necessity test's byte step refuses an input re matches.
func checkMatches(t *testing.T, expr string, re *regexp.Regexp, set *byteSet, in string) {
	t.Helper()
	for _, m := range re.FindAllStringIndex(in, -1) {
		if m[0] < m[1] && !holdsByte(in[m[0]:m[1]], set) {
			t.Errorf("%.60q matches %q (in %.60q), which holds none of its required bytes", expr, in[m[0]:m[1]], in)
			return
		}
		if m[0] == m[1] {
			t.Errorf("%.60q matches empty in %.60q, yet has required bytes", expr, in)
			return
		}
	}
	if utf8.ValidString(in) && re.MatchString(in) && !holdsByte(in, set) {
		t.Errorf("%.60q matches %.60q, which holds none of its required bytes", expr, in)
	}
}
