package waf

import (
	"bytes"
	"testing"
)

func TestClassifyUpload(t *testing.T) {
	cases := []struct {
		name string
		head []byte
		want uploadKind
	}{
		{"ELF", []byte("\x7fELF\x02\x01\x01"), uploadProgram},
		{"PE", append([]byte("MZ"), bytes.Repeat([]byte{0}, 0x80)...), uploadProgram},
		{"Java class", []byte{0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 0x34}, uploadProgram},
		{"shebang", []byte("#!/bin/sh\nid\n"), uploadScript},
		{"PHP", []byte("<?php system($_GET['c']);"), uploadScript},
		{"PHP after a GIF header", []byte("GIF89a\x01\x00<?php echo 1;"), uploadScript},
		{"JSP", []byte("<%@ page import=\"java.io.*\" %>"), uploadScript},
		{"SSI", []byte("<!--#exec cmd=\"id\" -->"), uploadScript},
		{"SVG with script", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), uploadActiveHTML},
		{"HTML with script", []byte("<!doctype html><script>alert(1)</script>"), uploadActiveHTML},
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR<%"), uploadData},
		{"plain SVG", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>`), uploadData},
		{"text", []byte("hello, world"), uploadData},
	}
	for _, c := range cases {
		if got := classifyUpload(c.head); got != c.want {
			t.Errorf("%s: classifyUpload = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestDeclaredPage(t *testing.T) {
	cases := []struct {
		name, ctype, content string
		want                 bool
	}{
		{"x.html", "text/html", "<img src=x onerror=alert(document.domain)>", true},
		{"x", "text/html; charset=utf-8", "<a href=\"javascript:alert(1)\">x</a>", true},
		{"x.svg", "application/octet-stream", "<g onload=\"alert(1)\"/>", true},
		{"notes.html", "text/html", "<p>Meeting notes: 2 < 3 & more</p>", false},
		{"x.txt", "text/plain", "<img src=x onerror=alert(1)>", false},
		{"x.html", "text/html", "\x89PNG\r\n\x1a\n<img src=x onerror=alert(1)>\x00\x01", false},
	}
	for _, c := range cases {
		if got := declaredPage(c.name, c.ctype) && activeFragment([]byte(c.content)); got != c.want {
			t.Errorf("%q (%s) with %q: active page %v, want %v", c.name, c.ctype, c.content, got, c.want)
		}
	}
}

func FuzzActiveFragment(f *testing.F) {
	for _, s := range []string{"<img src=x onerror=alert(1)>", "<p>x</p>", "\xff\xfe<"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if activeFragment(b) != activeFragment(b) {
			t.Fatal("activeFragment is not a function of its input")
		}
	})
}

func TestClaimsInert(t *testing.T) {
	cases := []struct {
		name, ctype string
		want        bool
	}{
		{"cat.png", "image/png", true},
		{"cat.png.", "image/png", true},
		{"report.pdf", "", true},
		{"shell.php", "image/png", false},
		{"logo.svg", "image/svg+xml", false},
		{"tool", "application/octet-stream", false},
		{"blob", "image/jpeg", true},
	}
	for _, c := range cases {
		if got := claimsInert(c.name, c.ctype); got != c.want {
			t.Errorf("claimsInert(%q, %q) = %v, want %v", c.name, c.ctype, got, c.want)
		}
	}
}

func FuzzClassifyUpload(f *testing.F) {
	for _, s := range []string{"\x7fELF", "<?php", "#!", "<svg onload=x>", "MZ"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if k := classifyUpload(b); k < uploadData || k > uploadActiveHTML {
			t.Fatalf("classifyUpload = %d", k)
		}
	})
}
