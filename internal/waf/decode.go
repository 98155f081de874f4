package waf

import (
	"strings"
	"unicode/utf8"
)

// decodeEvasions undoes the encodings attackers use to slip path traversal
// and file names past a WAF, the ones old servers and frameworks decoded
// but CRS's transformations leave alone:
//   - percent escapes, nested up to three times, and IIS-style %uXXXX;
//   - overlong UTF-8 (%c0%ae for ".", %e0%80%af for "/"), which strict
//     decoders refuse but lenient ones turned into ASCII; an overlong
//     letter or digit, which no encoder writes, stands for "/";
//   - full-width forms (U+FF01..U+FF5E) and slash look-alikes (U+2215,
//     U+2216, U+2044, U+29F8, U+29F9, U+FE68), and the escapes full-width
//     forms spell ("％２ｅ");
//   - "0x2e", "0x2f" and "0x5c" written out as text.
//
// Control characters are dropped; bytes that decode to nothing (invalid
// escapes, private-use code points) become "/" since they only ever stand
// in for a separator. The result is for matching only, never forwarded.
func decodeEvasions(in string) (string, bool, error) {
	if !strings.ContainsAny(in, "%.\\/") && !hasNonASCII(in) && !strings.Contains(in, "0x") {
		return in, false, nil
	}
	s := in
	for range 3 {
		next := percentDecode(s)
		if next == s {
			break
		}
		s = next
	}
	fullwidthEscape := strings.Contains(s, "\uff05")
	s = lenientUTF8(s)
	if fullwidthEscape {
		// Full-width escapes ("％２ｅ％２ｅ％２ｆ") fold to escapes, which a
		// server that folds before it decodes (Windows' best fit)
		// decodes once more.
		s = lenientUTF8(percentDecode(s))
	}
	s = replaceHexText(s)
	return s, s != in, nil
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// escapedByte decodes the two hex digits after the "%" at s[i], if there
// are two.
func escapedByte(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	h, ok1 := unhex(s[i+1])
	l, ok2 := unhex(s[i+2])
	return h<<4 | l, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// percentDecode decodes %XX and %uXXXX once; an invalid escape becomes a
// marker byte 0xFF (never valid UTF-8) that lenientUTF8 turns into "/".
func percentDecode(s string) string { return decodePercent(s, true) }

// decodePercent decodes valid %XX and %uXXXX escapes once. An invalid
// escape ("%zz", "%u12") is kept as it is, or, with markInvalid, replaced
// by the byte 0xFF and its two following bytes dropped, since old servers
// decoded such escapes to whatever the evasion wanted ("%" and "% " are
// kept either way).
func decodePercent(s string, markInvalid bool) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+5 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			if r, ok := hexRune(s[i+2:], 4, 4); ok {
				b.WriteRune(r)
				i += 5
				continue
			}
		}
		if i+2 < len(s) {
			if c, ok := escapedByte(s, i); ok {
				b.WriteByte(c)
				i += 2
				continue
			}
			if markInvalid && s[i+1] != '%' && s[i+1] != ' ' {
				b.WriteByte(0xFF)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// lenientUTF8 decodes s as UTF-8 accepting overlong forms and 5- and
// 6-byte sequences, then maps look-alikes to ASCII.
func lenientUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 || c == '\t' {
				b.WriteByte(c)
			}
			i++
			continue
		}
		if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError {
			b.WriteString(mapRune(r))
			i += n
			continue
		}
		n, r := 0, rune(0)
		switch {
		case c&0xE0 == 0xC0:
			n, r = 2, rune(c&0x1F)
		case c&0xF0 == 0xE0:
			n, r = 3, rune(c&0x0F)
		case c&0xF8 == 0xF0:
			n, r = 4, rune(c&0x07)
		case c&0xFC == 0xF8:
			n, r = 5, rune(c&0x03)
		case c&0xFE == 0xFC:
			n, r = 6, rune(c&0x01)
		}
		ok := n > 0 && i+n <= len(s)
		for j := 1; ok && j < n; j++ {
			if s[i+j]&0xC0 != 0x80 {
				ok = false
				break
			}
			r = r<<6 | rune(s[i+j]&0x3F)
		}
		if !ok {
			b.WriteByte('/')
			i++
			continue
		}
		if overlong(r, n) && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			// No encoder writes a letter or digit overlong: such forms
			// are mangled separators (%c1%af is %c0%af, "/", with one
			// bit flipped, which IIS-era decoders accepted).
			r = '/'
		}
		b.WriteString(mapRune(r))
		i += n
	}
	return b.String()
}

// overlong reports whether the n-byte UTF-8 form of r is longer than its
// shortest form.
func overlong(r rune, n int) bool {
	switch n {
	case 2:
		return r < 0x80
	case 3:
		return r < 0x800
	case 4:
		return r < 0x10000
	}
	return n > 4
}

func mapRune(r rune) string {
	switch {
	case r < 0x20:
		return ""
	case r < 0x80:
		return string(r)
	case r >= 0xFF01 && r <= 0xFF5E:
		return string(r - 0xFEE0)
	case r >= 0xE000 && r <= 0xF8FF, r == utf8.RuneError:
		return "/"
	}
	switch r {
	case 0x2215, 0x2044, 0x29F8:
		return "/"
	case 0x2216, 0x29F9, 0xFE68:
		return "\\"
	case 0x2024, 0xFE52:
		return "."
	}
	return string(r)
}

func replaceHexText(s string) string {
	if !strings.Contains(s, "0x") && !strings.Contains(s, "0X") {
		return s
	}
	return hexSeparators.Replace(s)
}

// hexSeparators writes "0x2e", "0x2f" and "0x5c" spelled out as text as
// the characters they name.
var hexSeparators = strings.NewReplacer("0x2e", ".", "0x2E", ".", "0X2E", ".", "0x2f", "/", "0x2F", "/", "0X2F", "/", "0x5c", "\\", "0x5C", "\\", "0X5C", "\\")
