package waf

import (
	"strings"
	"testing"
)

// TestMultipartStrictLines: what multipartStrict makes of the line
// structure that a WAF and a backend may read differently, including lines
// longer than its buffer and bodies whose lines end in a bare LF.
func TestMultipartStrictLines(t *testing.T) {
	const b = "XyZ"
	part := func(nl, value string) string {
		return "--" + b + nl + "Content-Disposition: form-data; name=\"a\"" + nl + nl + value + nl
	}
	long := strings.Repeat("x", 10000)
	for _, c := range []struct{ name, body, want string }{
		{"a form", part("\r\n", "1") + "--" + b + "--\r\n", ""},
		{"lines in LF", part("\n", "1") + "--" + b + "--\n", ""},
		{"a value longer than the buffer", part("\r\n", long) + "--" + b + "--\r\n", ""},
		{"a header longer than the buffer", "--" + b + "\r\nX-Long: " + long + "\r\n\r\n1\r\n--" + b + "--\r\n", ""},
		{"a line break before the first boundary", "\r\n" + part("\r\n", "1") + "--" + b + "--\r\n", ""},
		{"blank lines after the end", part("\r\n", "1") + "--" + b + "--\r\n\r\n \r\n", ""},
		{"content that mentions the boundary", part("\r\n", "see --"+b+" here\r\n-- "+b) + "--" + b + "--\r\n", ""},
		{"a preamble", "hello\r\n" + part("\r\n", "1") + "--" + b + "--\r\n", "data before the first boundary"},
		{"a preamble longer than the buffer", long + "\r\n" + part("\r\n", "1") + "--" + b + "--\r\n", "data before the first boundary"},
		{"a boundary with a suffix", part("\r\n", "1") + "--" + b + "2\r\n--" + b + "--\r\n", "a line that begins with the boundary and is not one"},
		{"a boundary after a bare LF", part("\r\n", "1\n--"+b+"\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\n2") + "--" + b + "--\r\n", "a boundary after a bare line feed"},
		{"a folded header", "--" + b + "\r\nContent-Disposition: form-data;\r\n\tname=\"a\"\r\n\r\n1\r\n--" + b + "--\r\n", "a folded part header"},
		{"an epilogue", part("\r\n", "1") + "--" + b + "--\r\nmore", "data after the final boundary"},
		{"an epilogue after long blanks", part("\r\n", "1") + "--" + b + "--\r\n" + strings.Repeat(" ", 10000) + "more", "data after the final boundary"},
		{"no final boundary", part("\r\n", "1"), "no final boundary"},
		{"an empty body", "", ""},
		{"a form with no fields", "--" + b + "--\r\n", ""},
	} {
		if got := multipartStrict(strings.NewReader(c.body), b); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestBodyRefusalReasonBounded: a parser's error quotes the body; what of
// it reaches an event's message is bounded and holds no line break or
// control character.
func TestBodyRefusalReasonBounded(t *testing.T) {
	got := bodyRefusalReason("MULTIPART: malformed MIME header line: a\r\nfake: line\x00" + strings.Repeat("é", 200))
	if strings.ContainsAny(got, "\r\n\x00") || len(got) > 180 || !strings.HasPrefix(got, "(MULTIPART: malformed MIME header line: a??fake: line?") {
		t.Errorf("%q", got)
	}
	if got := bodyRefusalReason(""); got != "" {
		t.Errorf("no data: %q", got)
	}
}
