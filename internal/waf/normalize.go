package waf

import (
	"encoding/base64"
	"slices"
	"strings"
	"unicode/utf8"
)

// Bounds on normalisation. A value longer than maxNormalizeLen is not
// normalised (the argument limits refuse such values by default); each
// value yields at most one normal form, reached in at most
// maxNormalizeRounds rounds of decoding.
const (
	maxNormalizeLen    = 64 << 10
	maxNormalizeRounds = 4
	minBase64Len       = 12
	minPaddedBase64Len = 8
)

// normalize returns the form of v that a browser, an interpreter or a
// lenient server would act on, when it differs from v: percent escapes
// left after the first decoding (nested up to maxNormalizeRounds layers,
// %uXXXX too), Base64 runs that decode to text, HTML character references,
// JavaScript escapes, comments, string concatenation and bracket property
// access (jsFold), and SQL comments. Each round applies the decoders whose
// syntax appears in the value; rounds stop when nothing changes. ok is
// false when v needs no decoding or is too long to decode.
//
// The result is for matching only, never forwarded; it is never longer
// than v plus a few bytes.
func normalize(v string) (string, bool) {
	if len(v) > maxNormalizeLen || !needsNormalizing(v) {
		return v, false
	}
	return normalizeDecoded(v, decodeStep(v))
}

// normalForms returns normalize(v) and decodedLayers(v), undoing v's
// outermost layer once for both.
func normalForms(v string) (string, bool, []string) {
	if len(v) > maxNormalizeLen || !needsNormalizing(v) {
		return v, false, nil
	}
	first := decodeStep(v)
	n, ok := normalizeDecoded(v, first)
	return n, ok, layersFrom(v, first)
}

// normalizeDecoded is normalize given first, decodeStep(v).
func normalizeDecoded(v, first string) (string, bool) {
	s := v
	for round := range maxNormalizeRounds {
		next := first
		if round > 0 {
			next = decodeStep(s)
		}
		if strings.ContainsAny(next, "\\'\"`[/?") || strings.Contains(next, "fromCharCode") {
			next = jsFold(next)
		}
		if strings.Contains(next, "--") || strings.IndexByte(next, '#') >= 0 {
			next = stripSQLLineComments(next)
		}
		if next == s {
			break
		}
		s = next
	}
	if s == v || len(s) > len(v)+16 {
		return v, false
	}
	return s, true
}

// decodeStep undoes one layer of the encodings whose syntax appears in s:
// percent escapes, a JSON Web Token's parts or Base64 runs that decode to
// text, and character references inside markup. It never folds or strips
// anything, and never makes s longer.
func decodeStep(s string) string {
	if strings.IndexByte(s, '%') >= 0 {
		s = percentDecodeOnce(s)
	}
	if jwt, ok := jwtClaims(s); ok {
		s = jwt
	} else {
		s = decodeBase64Runs(s)
	}
	if strings.IndexByte(s, '&') >= 0 && hasTag(s) {
		// Character references mean something to the SQL, shell and
		// PHP families only where a parser decodes them: in markup
		// (an XML document's text, "<id>&#49;&#32;UNION…</id>").
		// CRS's XSS rules decode them themselves. "&lt;" in text
		// stays text (see unescapeMarkup).
		s = unescapeMarkup(s)
	}
	return s
}

// decodedLayers returns the layers of encoding under v as each decoder
// hands them over (see decodeStep), the outermost first, at most
// maxNormalizeRounds of them, with control characters dropped: what an
// application that decodes the value reads before any interpreter folds
// or comments anything away. The normal form goes further and strips what
// SQL and JavaScript read as comments, which is right for those families
// and wrong for markup: "#" is a comment to MySQL and a URL to a browser
// ("<img src=# onmouseover=…>" in Base64), and "//" is a comment to
// JavaScript and a path to CSS. Each layer is no longer than v; none
// equals v or another layer.
func decodedLayers(v string) []string {
	if len(v) > maxNormalizeLen || !needsNormalizing(v) {
		return nil
	}
	return layersFrom(v, decodeStep(v))
}

// layersFrom is decodedLayers given first, decodeStep(v).
func layersFrom(v, first string) []string {
	var out []string
	s := v
	for round := range maxNormalizeRounds {
		next := first
		if round > 0 {
			next = decodeStep(s)
		}
		if next == s {
			break
		}
		s = next
		if l := dropControls(s); l != v && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// hasTag reports whether s holds something like a tag: "<" followed by a
// letter, "/", "!" or "?", and a ">" after it.
func hasTag(s string) bool {
	for i := strings.IndexByte(s, '<'); i >= 0 && i+1 < len(s); {
		if c := s[i+1]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/' || c == '!' || c == '?' {
			if strings.IndexByte(s[i+1:], '>') >= 0 {
				return true
			}
		}
		j := strings.IndexByte(s[i+1:], '<')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

// needsNormalizing is the cheap test: does v hold the syntax of any
// decoder?
func needsNormalizing(v string) bool {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '%', '&', '\\', '\'', '"', '`', '[', '/', '?', '#', '-':
			return true
		}
	}
	return hasBase64Run(v)
}

// percentDecodeOnce decodes valid %XX and %uXXXX escapes once, leaving
// anything else as it is.
func percentDecodeOnce(s string) string { return decodePercent(s, false) }

// jwtClaims returns the header and claims of a JSON Web Token (three
// Base64url parts joined by "."), as two JSON documents on two lines, and
// drops the signature, whose bytes mean nothing.
func jwtClaims(s string) (string, bool) {
	if !strings.HasPrefix(s, "eyJ") || strings.Count(s, ".") != 2 {
		return "", false
	}
	parts := strings.Split(s, ".")
	var out []string
	for _, p := range parts[:2] {
		d, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p, "="))
		if err != nil || !utf8.Valid(d) {
			return "", false
		}
		out = append(out, string(d))
	}
	return strings.Join(out, "\n"), true
}

// isBase64Byte reports whether c belongs to either Base64 alphabet.
func isBase64Byte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_'
}

func hasBase64Run(s string) bool {
	if paddedBase64(s) {
		return true
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if isBase64Byte(s[i]) {
			n++
			if n >= minBase64Len {
				return true
			}
		} else {
			n = 0
		}
	}
	return false
}

// paddedBase64 reports whether the whole of s is one padded Base64 run
// of at least minPaddedBase64Len characters: a length that is a multiple
// of four, ending in "=" or "==". A word, a number or a name=value pair
// has no such shape, so a shorter run than minBase64Len is taken as
// Base64 when it is the whole value ("IE9SIDE9MA==" is " OR 1=0").
func paddedBase64(s string) bool {
	if len(s) < minPaddedBase64Len || len(s)%4 != 0 || s[len(s)-1] != '=' {
		return false
	}
	t := strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	for i := 0; i < len(t); i++ {
		if !isBase64Byte(t[i]) {
			return false
		}
	}
	return true
}

// decodeBase64Runs replaces each run of at least minBase64Len Base64
// characters (either alphabet, padded or not), or a whole value that is
// padded Base64 (see paddedBase64), that decodes to text by that text.
// Identifiers, hashes and random tokens decode to binary and stay as
// they are, and so do runs that are plain words, paths or numbers.
func decodeBase64Runs(s string) string {
	if paddedBase64(s) {
		if text, ok := base64Text(s, 4); ok {
			return text
		}
		return s
	}
	if !hasBase64Run(s) {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isBase64Byte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isBase64Byte(s[j]) {
			j++
		}
		end := j
		for end < len(s) && end < j+2 && s[end] == '=' {
			end++
		}
		if j-i >= minBase64Len {
			if text, ok := base64Text(s[i:end], 6); ok {
				b.WriteString(s[last:i])
				b.WriteString(text)
				last = end
			}
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// base64Text decodes run when it is Base64 of at least minLen bytes of
// UTF-8 text that holds something other than letters and digits (so that
// a decoded word does not replace a word). The text may hold a few control
// characters, one in sixteen bytes, as payloads do to split a keyword for
// a filter ("java\x05script:", "onerror\x00="); binary holds many more.
func base64Text(run string, minLen int) (string, bool) {
	// A run of letters alone, or of a path, is far more often itself.
	letters, digits, other := 0, 0, 0
	for i := 0; i < len(run); i++ {
		switch c := run[i]; {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
		case c >= '0' && c <= '9':
			digits++
		case c == '/' || c == '-' || c == '_' || c == '+':
			other++
		}
	}
	if digits == len(run) || (other > 0 && strings.Count(run, "/") > 1 && strings.Count(run, "/")*8 > len(run)) {
		return "", false
	}
	trimmed := strings.TrimRight(run, "=")
	var d []byte
	var err error
	if strings.ContainsAny(trimmed, "-_") {
		d, err = base64.RawURLEncoding.DecodeString(trimmed)
	} else {
		d, err = base64.RawStdEncoding.DecodeString(trimmed)
	}
	if err != nil || len(d) < minLen || !utf8.Valid(d) {
		return "", false
	}
	special := false
	controls := 0
	for _, r := range string(d) {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
		case r == utf8.RuneError:
			return "", false
		case r < 0x20 || r == 0x7f:
			controls++
		case r < 0x80 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			special = true
		}
	}
	if !special || controls > len(d)/16 {
		return "", false
	}
	return string(d), true
}

// stripSQLLineComments removes what SQL dialects read as comments to the
// end of the line ("-- ", "--" at the end, and MySQL's "#"). A comment
// that ends at a line break becomes one space, as the database reads it
// ("union#x\nselect" is "union select"); one that runs to the end of the
// value becomes " --", so that rules which look for a comment cutting off
// the rest of a query still see one.
func stripSQLLineComments(s string) string {
	if !strings.ContainsAny(s, "-#") {
		return s // no comment: every byte is kept
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		isDash := c == '-' && i+1 < len(s) && s[i+1] == '-' && (i+2 == len(s) || s[i+2] == ' ' || s[i+2] == '\t' || s[i+2] == '\n' || s[i+2] == '\r')
		isHash := c == '#' && (i+1 == len(s) || s[i+1] == ' ' || s[i+1] == '\t' || strings.ContainsAny(s[i+1:], "\n\r"))
		if !isDash && !isHash {
			// "#fragment", "#1", CSS colours and "a-b" are not
			// comments; "#" before a line break is, whatever follows it.
			b.WriteByte(c)
			continue
		}
		end := strings.IndexAny(s[i:], "\n\r")
		if end < 0 {
			b.WriteString(" --")
			return b.String()
		}
		b.WriteByte(' ')
		i += end
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
	}
	return b.String()
}
