package waf

import (
	"html"
	"strings"
)

// unescapeMarkup decodes the character references of s as a browser
// reading s as HTML would act on them: inside a tag (attribute values,
// where "&#106;avascript:" is a script URL and a srcdoc's "&lt;script&gt;"
// is a script) every reference is decoded; in text content a reference to
// "<" or ">" stays as written, since it is how an editor says "this is
// text" and a browser renders it as the character, never as a tag. Other
// references in text are decoded (an XML parser hands "&#49;&#32;UNION"
// over as "1 UNION"). A value without markup is decoded whole, as an
// application that decodes references would.
func unescapeMarkup(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	if !hasTag(s) {
		return html.UnescapeString(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	inTag := false
	var quote byte
	for i := 0; i < len(s); {
		c := s[i]
		if c == '&' {
			if n := refLen(s[i:]); n > 0 {
				ref := s[i : i+n]
				d := html.UnescapeString(ref)
				if !inTag && (d == "<" || d == ">") {
					b.WriteString(ref)
				} else {
					b.WriteString(d)
				}
				i += n
				continue
			}
		}
		switch {
		case inTag && quote != 0:
			if c == quote {
				quote = 0
			}
		case inTag && (c == '"' || c == '\''):
			quote = c
		case inTag && c == '>':
			inTag = false
		case !inTag && c == '<' && i+1 < len(s) && tagStart(s[i+1]):
			inTag = true
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

func tagStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '!' || c == '?'
}

// refLen is the length of the character reference at the start of s
// ("&lt;", "&#60", "&#x3C;"), or 0 when s does not start with one. The
// ";" is optional, as browsers read "&lt" and "&#60" too; a name is at
// most 32 bytes.
func refLen(s string) int {
	if len(s) < 2 || s[0] != '&' {
		return 0
	}
	i := 1
	if s[i] == '#' {
		i++
		hex := i < len(s) && (s[i] == 'x' || s[i] == 'X')
		if hex {
			i++
		}
		start := i
		for i < len(s) && i-start < 16 && (s[i] >= '0' && s[i] <= '9' || hex && (s[i]|0x20 >= 'a' && s[i]|0x20 <= 'f')) {
			i++
		}
		if i == start {
			return 0
		}
	} else {
		start := i
		for i < len(s) && i-start < 32 && (s[i]|0x20 >= 'a' && s[i]|0x20 <= 'z' || i > start && s[i] >= '0' && s[i] <= '9') {
			i++
		}
		if i == start {
			return 0
		}
	}
	if i < len(s) && s[i] == ';' {
		i++
	}
	return i
}

// refsAsWords replaces each character reference in markup with a letter:
// in HTML "&lt;" and "&amp;" are characters of the text, not a shell's "&"
// and ";". A value without markup is returned as it is (an "&" in it may
// well reach a shell).
func refsAsWords(s string) string {
	if strings.IndexByte(s, '&') < 0 || !hasTag(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == '&' {
			if n := refLen(s[i:]); n > 0 && s[i+n-1] == ';' {
				b.WriteByte('x')
				i += n
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}
