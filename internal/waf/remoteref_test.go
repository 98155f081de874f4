package waf

import (
	"strings"
	"testing"
)

func TestRefScore(t *testing.T) {
	for _, c := range []struct {
		in        string
		ref, file int // refScore, fileRefScore
	}{
		{`\\attacker.example\share\x.php`, scoreAttack, scoreAttack},
		{`\\10.0.0.5\public\shell.php`, scoreAttack, scoreAttack},
		{`\\?\C:\Windows\win.ini`, scoreAttack, scoreAttack},
		{`\\.\C:\boot.ini`, scoreAttack, scoreAttack},
		{`\\?\UNC\attacker.example\share\a.txt`, scoreAttack, scoreAttack},
		{`\\attacker.example@SSL\DavWWWRoot\x.php`, scoreAttack, scoreAttack},
		{`\\\\attacker.example\\share\\x.php`, scoreAttack, scoreAttack},
		{`\/attacker.example\share`, scoreAttack, scoreAttack},
		{`  "\\host\s`, scoreAttack, scoreAttack},
		{"//?/C:/Windows/win.ini", scoreAttack, scoreAttack},
		{"file://attacker.example/share/x.php", scoreAttack, scoreAttack},
		{"FILE://attacker.example", scoreAttack, scoreAttack},
		{"php://filter/convert.base64-encode/resource=index.php", scoreAttack, scoreAttack},
		{"PHP://input", scoreAttack, scoreAttack},
		{"phar:///tmp/upload/x.jpg/shell", scoreAttack, scoreAttack},
		{"zip://uploads/a.zip#s.php", scoreAttack, scoreAttack},
		{"compress.zlib:///etc/passwd", scoreAttack, scoreAttack},
		{"expect://id", scoreAttack, scoreAttack},
		{"data://text/plain;base64,PD9waHAgc3lzdGVtKCk7Pz4=", scoreAttack, scoreAttack},
		{"data:text/plain,<?php system('id');?>", scoreAttack, scoreAttack},
		{"data:,hello", scoreAttack, scoreAttack},
		{"data:image/png;base64,PD9waHAgc3lzdGVtKCRfR0VUWzBdKTs/Pg==", scoreAttack, scoreAttack},
		{"data:image/gif;base64,PD89YCRfR0VUWzBdYD8+", scoreAttack, scoreAttack},
		// A share with forward slashes: a UNC path only where a file is
		// named.
		{"//attacker.example/share/x.php", scoreNone, scoreAttack},
		{"//10.0.0.9/s", scoreNone, scoreAttack},
		// No reference.
		{"//cdn.example.net", scoreNone, scoreNone},
		{"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==", scoreNone, scoreNone},
		{"data:image/svg+xml,%3Csvg%3E%3C/svg%3E", scoreNone, scoreNone},
		{"file:///home/ana/x.html", scoreNone, scoreNone},
		{"file://localhost/etc/hosts", scoreNone, scoreNone},
		{"file:// URLs are not supported by the importer", scoreNone, scoreNone},
		{"file://  ", scoreNone, scoreNone},
		{"https://example.com/a.php", scoreNone, scoreNone},
		{"how does php://input work?", scoreNone, scoreNone},
		{"the share \\\\fileserver\\reports is read-only", scoreNone, scoreNone},
		{`\\`, scoreNone, scoreNone},
		{`\\host`, scoreNone, scoreNone},
		{`\\host\`, scoreNone, scoreNone},
		{`\\ host\share`, scoreNone, scoreNone},
		{`\\d+\\w`, scoreNone, scoreNone},
		{"C:\\Users\\ana\\report.docx", scoreNone, scoreNone},
		{"reports/2026/q4.pdf", scoreNone, scoreNone},
		{"datagram://x", scoreNone, scoreNone},
		{"data: the numbers, all of them", scoreNone, scoreNone},
	} {
		if got := refScore(c.in); got != c.ref {
			t.Errorf("refScore(%q) = %d, want %d", c.in, got, c.ref)
		}
		if got := fileRefScore(c.in); got != c.file {
			t.Errorf("fileRefScore(%q) = %d, want %d", c.in, got, c.file)
		}
	}
}

func TestRefInPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/view/php://filter/resource=index.php", "php://filter/resource=index.php"},
		{"/download/\\\\attacker.example\\share\\x.php", "\\\\attacker.example\\share\\x.php"},
		{"/a/b/phar:///tmp/x.jpg/s", "phar:///tmp/x.jpg/s"},
		{"/files//cdn.example.net/a.png", ""},
		{"/docs/php/input", ""},
		{"/", ""},
		{"", ""},
	} {
		got, ok := refInPath(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("refInPath(%q) = %q, %v, want %q", c.in, got, ok, c.want)
		}
	}
}

func TestProxyHeaderWhy(t *testing.T) {
	for _, c := range []struct {
		name, value, target string
		attack              bool
	}{
		{"X-Forwarded-Host", "attacker.example/x", "/", true},
		{"X-Forwarded-Host", "http://attacker.example/", "/", true},
		{"X-Forwarded-Host", "//attacker.example", "/", true},
		{"X-Forwarded-Host", `\\attacker.example\share`, "/", true},
		{"X-Forwarded-Host", "attacker.example:80@victim.example", "/", true},
		{"X-Host", "http://attacker.example/", "/", true},
		{"X-Forwarded-Server", "attacker.example/evil", "/", true},
		{"Forwarded", "for=203.0.113.7;host=http://attacker.example/", "/", true},
		{"X-Original-URL", "/admin/users", "/", true},
		{"X-Original-URL", "http://attacker.example/admin", "/", true},
		{"X-Rewrite-URL", "/admin/config.php", "/public", true},
		{"X-Forwarded-Uri", "/admin", "/", true},
		{"X-HTTP-Destination-URL", "http://attacker.example/", "/", true},
		{"X-Forwarded-Prefix", "http://attacker.example/", "/", true},
		{"X-Forwarded-Prefix", "/../admin", "/", true},
		{"X-Forwarded-Proto", "http://attacker.example", "/", true},
		{"X-Forwarded-Port", "443/x", "/", true},
		{"X-Forwarded-For", "http://attacker.example/x", "/", true},
		{"X-Forwarded-Ssl", "http://attacker.example/", "/", true},
		// What proxies write.
		{"X-Forwarded-Host", "app.example", "/", false},
		{"X-Forwarded-Host", "", "/", false},
		{"X-Forwarded-Host", "app.example:8443, edge.example", "/", false},
		{"X-Forwarded-Host", "[2001:db8::1]:443", "/", false},
		{"X-Forwarded-Server", "edge-1.example.net", "/", false},
		{"Forwarded", `for=203.0.113.7;proto=https;host="app.example"`, "/", false},
		{"Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43", "/", false},
		{"X-Original-URL", "/api/items?page=2", "/api/items?page=2", false},
		{"X-Original-URL", "/", "/", false},
		{"X-Forwarded-Prefix", "/shop", "/", false},
		{"X-Forwarded-Proto", "https", "/", false},
		{"X-Forwarded-Proto", "https,http", "/", false},
		{"X-Forwarded-Port", "443", "/", false},
		{"X-Forwarded-For", "203.0.113.7, 10.0.0.2", "/", false},
		{"X-Forwarded-Ssl", "on", "/", false},
		{"X-Forwarded-Client-Cert", "By=spiffe://cluster.local/ns/default/sa/web;Hash=abc", "/", false},
		{"Referer", "http://attacker.example/", "/", false},
	} {
		if why := proxyHeaderWhy(c.name, c.value, c.target); (why != "") != c.attack {
			t.Errorf("proxyHeaderWhy(%q, %q, %q) = %q, want attack %v", c.name, c.value, c.target, why, c.attack)
		}
	}
}

// TestProxyHeaderNames: every header proxyHeaderWhy reads is judged
// whatever the case of its name, so its quick test of the name (X-… or
// Forwarded) passes them all; fails when that test refuses a name the
// checks read.
func TestProxyHeaderNames(t *testing.T) {
	names := []string{"forwarded", "x-forwarded-proto", "x-forwarded-scheme", "x-forwarded-port", "x-forwarded-for", "x-forwarded-anything"}
	for _, m := range []map[string]bool{hostHeaders, overrideHeaders, prefixHeaders} {
		for n := range m {
			names = append(names, n)
		}
	}
	for _, n := range names {
		v := "http://attacker.example/a"
		if n == "forwarded" {
			v = "for=203.0.113.7;host=attacker.example/a"
		}
		want := proxyHeaderWhy(n, v, "/")
		if want == "" {
			t.Errorf("%s: %q is no attack", n, v)
		}
		for _, cased := range []string{strings.ToUpper(n), strings.ToUpper(n[:1]) + n[1:]} {
			if got := proxyHeaderWhy(cased, v, "/"); got != want {
				t.Errorf("proxyHeaderWhy(%q) = %q, want %q", cased, got, want)
			}
		}
	}
}

func FuzzRefScore(f *testing.F) {
	for _, s := range []string{`\\a\b`, "//a/b", "php://", "data:,", "data:x;base64,", "file://", `\\?\`, "/a/php://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, fr := refScore(s), fileRefScore(s)
		if r != scoreAttack && r != scoreNone || fr != scoreAttack && fr != scoreNone {
			t.Fatalf("refScore(%q) = %d, fileRefScore = %d", s, r, fr)
		}
		if r == scoreAttack && fr != scoreAttack {
			t.Fatalf("fileRefScore(%q) weaker than refScore", s)
		}
		if ref, ok := refInPath(s); ok && (!strings.HasSuffix(s, ref) || refScore(ref) != scoreAttack) {
			t.Fatalf("refInPath(%q) = %q", s, ref)
		}
		proxyHeaderWhy("x-forwarded-host", s, "/")
		proxyHeaderWhy("forwarded", s, s)
	})
}
