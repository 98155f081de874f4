package gateway

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16LE is s in UTF-16LE, after bom when given.
func utf16LE(bom, s string) string {
	var b strings.Builder
	b.WriteString(bom)
	for _, u := range utf16.Encode([]rune(s)) {
		binary.Write(&b, binary.LittleEndian, u)
	}
	return b.String()
}

// TestResponseInspectionFailsClosed: with inspect_responses on, a
// response the rules cannot read in full is not sent, as a request body
// past its limit or in a coding the WAF cannot read is not forwarded. A
// SQL error placed past waf.response_body_limit, or written in UTF-16
// (declared, or by a byte order mark, which browsers obey over the
// header), passed uninspected; so did an inspected type written in
// capitals or with a space before its parameters, which browsers read
// as the type itself. Types the rules do not read (images) pass as they
// are, at any size.
func TestResponseInspectionFailsClosed(t *testing.T) {
	const limit = 64 << 10
	const leak = "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1"
	pages := map[string]struct{ ctype, body string }{
		"past-limit":   {"text/html", "<html><body>" + strings.Repeat("<p>fine</p>\n", limit/12) + leak + "</body></html>"},
		"utf16":        {"text/html; charset=utf-16le", utf16LE("", "<html><body>"+leak+"</body></html>")},
		"utf16-bom":    {"text/html", utf16LE("\xff\xfe", "<html><body>"+leak+"</body></html>")},
		"capitals":     {"Text/HTML", "<html><body>" + leak + "</body></html>"},
		"spaced":       {"text/html ; charset=utf-8", "<html><body>" + leak + "</body></html>"},
		"at-limit":     {"text/html; charset=UTF-8", strings.Repeat("a", limit)},
		"latin1":       {"text/html; charset=iso-8859-1", "<html><body>Caf\xe9</body></html>"},
		"image":        {"image/png", "\x89PNG\r\n\x1a\n" + strings.Repeat("\x00", 2*limit)},
		"json-default": {"application/json", `{"ok":true}`},
	}
	sock := serveUnix(t, &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := pages[strings.TrimPrefix(r.URL.Path, "/")]
		w.Header().Set("Content-Type", p.ctype)
		io.WriteString(w, p.body)
	})})
	f := newFixtureWith(t, pathYAML+fmt.Sprintf("waf:\n  inspect_responses: true\n  response_body_limit: %d\n", limit), map[string]string{"static": sock, "shop": sock, "legacy": sock})
	for _, c := range []struct {
		page string
		want int
	}{
		{"past-limit", http.StatusBadGateway},
		{"utf16", http.StatusBadGateway},
		{"utf16-bom", http.StatusBadGateway},
		{"capitals", http.StatusForbidden},
		{"spaced", http.StatusForbidden},
		{"at-limit", http.StatusOK},
		{"latin1", http.StatusOK},
		{"image", http.StatusOK},
		{"json-default", http.StatusOK},
	} {
		r := f.req("GET", "/"+c.page, nil)
		r.Host = "shop.example.org"
		code, body, _ := f.do(r)
		if code != c.want {
			t.Errorf("%s: %d, want %d", c.page, code, c.want)
		}
		if c.want != http.StatusOK && (strings.Contains(body, "SQL") || strings.Contains(body, utf16LE("", "SQL"))) {
			t.Errorf("%s: the leak reached the client", c.page)
		}
		if c.want == http.StatusOK && body != pages[c.page].body {
			t.Errorf("%s: body of %d bytes, want the page's %d", c.page, len(body), len(pages[c.page].body))
		}
	}
}
