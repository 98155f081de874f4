package waf

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// keyExpressions are the argument-name expressions of moat's rules
// (SecRule ARGS:/…/), as the rule files write them.
func keyExpressions(t *testing.T) []*regexp.Regexp {
	t.Helper()
	var out []*regexp.Regexp
	for _, m := range regexp.MustCompile(`(?m)^SecRule ARGS:/(.*)/ "@`).FindAllStringSubmatch(moatRules, -1) {
		out = append(out, regexp.MustCompile(m[1]))
	}
	if len(out) < 3 {
		t.Fatalf("found %d ARGS:/…/ rules in moat.conf, want 3 or more", len(out))
	}
	return out
}

// TestKeyNecessity: the test a name must pass before the gate asks
// Coraza for the arguments a key expression selects (keyneed.go) passes
// every name the expression matches, as sent or lower-cased (Coraza
// matches the collection's key, lower-cased for ARGS), among names made
// of the expressions' own pieces in mixed case, with runes whose lower
// case is ASCII (U+212A, U+0130) or of another length; and it refuses the names of an
// ordinary JSON body, or it saves nothing.
func TestKeyNecessity(t *testing.T) {
	pieces := []string{"function", "func", "fn", "callback", "cb", "handler", "filter", "template", "url", "path",
		"file", "name", "@type", "@class", "$type", "type", "class", "s", "_", ".", "[", "]", "[0]", "[]", "json.",
		"\u212a", "\u017f", "\u0130", "K", "x", "é", "\xff", ""}
	rng := rand.New(rand.NewPCG(1, 2))
	var names []string
	for range 200000 {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			p := pieces[rng.IntN(len(pieces))]
			switch rng.IntN(3) {
			case 0:
				p = strings.ToUpper(p)
			case 1:
				if len(p) > 1 {
					p = strings.ToUpper(p[:1]) + p[1:]
				}
			}
			b.WriteString(p)
		}
		names = append(names, b.String())
	}
	names = append(names, "callbac\u212a", "CALLBACK", "json.@TYPE", "x.TemplateURL", "\u017fi.filters", "x]$Type",
		"f\u0130lter", "x.f\u0130lters", "templ\u0130te") // U+0130 lower-cases to "i"
	for _, re := range keyExpressions(t) {
		need := newKeyNecessity(re)
		if need == nil || len(need.lits) == 0 {
			t.Fatalf("%s: no literal test", re)
		}
		matched := 0
		for _, n := range names {
			if !re.MatchString(n) && !re.MatchString(strings.ToLower(n)) {
				continue
			}
			matched++
			if !need.mayMatchKey(n) {
				t.Errorf("%s matches %q (or its lower case), the test refuses it", re, n)
			}
		}
		if matched < 100 {
			t.Errorf("%s: only %d names matched: the names do not exercise it", re, matched)
		}
		for _, n := range []string{"customer.name", "customer.email", "items.0.sku", "items.0.qty", "items.0.note", "comment", "json.id"} {
			if need.mayMatchKey(n) {
				t.Errorf("%s: the test passes %q, which it cannot match", re, n)
			}
		}
	}
}

// TestGateKeyExpressions: the gate's verdicts on arguments named for
// moat's key-expression rules, in every case and with runes whose lower
// case is ASCII, are Coraza's alone.
func TestGateKeyExpressions(t *testing.T) {
	type arg struct{ name, value string }
	args := []arg{
		{"callback", "call_user_func_array"}, {"CallBack", "call_user_func_array"}, {"callbac\u212a", "shell_exec"},
		{"filters[0]", "passthru"}, {"x.FN", "popen"}, {"customer.name", "call_user_func"},
		{"@type", "com.sun.rowset.JdbcRowSetImpl"}, {"a.@TYPE", "com.sun.rowset.JdbcRowSetImpl"}, {"$Type", "x.y.z"},
		{"type", "com.sun.rowset.JdbcRowSetImpl"},
		{"template", "../../etc/passwd"}, {"TemplateURL", "file:/etc/hosts"}, {"_templatepath", "WEB-INF/web.xml"},
		{"\u212a.template", "ftp://x/"}, {"note", "../x"},
	}
	var inputs [][]byte
	for _, a := range args {
		q := url.Values{a.name: {a.value}, "other": {"1"}}.Encode()
		inputs = append(inputs, []byte(fmt.Sprintf("GET /?%s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n", q)))
		body := fmt.Sprintf(`{%q:%q,"n":[1]}`, a.name, a.value)
		inputs = append(inputs, []byte(fmt.Sprintf("POST /api HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)))
	}
	differential(t, Config{Budget: time.Hour}, nil, inputs)
}
