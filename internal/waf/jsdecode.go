package waf

import (
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file undoes what a JavaScript engine undoes before it runs code,
// so that the attack rules see "window.alert(document.domain)" where the
// request says "window['\x61\x6c'+'ert'](window[/**/'document'/**/]
// ['dom'+'ain'])". Every function here runs in time linear in its input
// (times a small constant number of passes) and never returns more than
// its input's length in bytes, so an attacker cannot make them work
// harder than reading the value.

// jsUnescape decodes the escapes JavaScript accepts in string literals and
// identifiers: \xHH, \uHHHH (surrogate pairs joined), \u{H…}, legacy
// octal \0 to \377, the single-letter escapes and line continuations; a
// backslash before any other character stands for that character. Escapes
// are decoded wherever they appear: engines decode them in identifiers
// too ("\u0061lert(1)" calls alert).
func jsUnescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		r, n := jsEscape(s[i+1:])
		i += 1 + n
		switch {
		case r == utf8.RuneError && n == 1:
			// A backslash before a byte that is no character: the byte.
			b.WriteByte(s[i-1])
		case r < 0: // line continuation
		case r >= 0xD800 && r <= 0xDBFF:
			// A high surrogate: join it with a low one that follows.
			if i+1 < len(s) && s[i] == '\\' {
				if lo, m := jsEscape(s[i+1:]); lo >= 0xDC00 && lo <= 0xDFFF {
					b.WriteRune(0x10000 + (r-0xD800)<<10 + (lo - 0xDC00))
					i += 1 + m
					continue
				}
			}
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// jsEscape decodes the escape at the start of s (after the backslash) and
// returns the rune it stands for (-1 for a line continuation) and how many
// bytes of s it used.
func jsEscape(s string) (rune, int) {
	c := s[0]
	switch c {
	case 'x':
		if v, ok := hexRune(s[1:], 2, 2); ok {
			return v, 3
		}
	case 'u':
		if len(s) > 1 && s[1] == '{' {
			end := strings.IndexByte(s[:min(len(s), 10)], '}')
			if end > 2 {
				if v, ok := hexRune(s[2:end], 1, 6); ok && v <= utf8.MaxRune {
					return v, end + 1
				}
			}
			break
		}
		if v, ok := hexRune(s[1:], 4, 4); ok {
			return v, 5
		}
	case '0', '1', '2', '3', '4', '5', '6', '7':
		// Legacy octal: up to three digits, at most \377.
		v, n := rune(c-'0'), 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' && v*8+rune(s[n]-'0') <= 0377 {
			v = v*8 + rune(s[n]-'0')
			n++
		}
		return v, n
	case 'b':
		return '\b', 1
	case 'f':
		return '\f', 1
	case 'n':
		return '\n', 1
	case 'r':
		return '\r', 1
	case 't':
		return '\t', 1
	case 'v':
		return '\v', 1
	case '\n':
		return -1, 1
	case '\r':
		if len(s) > 1 && s[1] == '\n' {
			return -1, 2
		}
		return -1, 1
	}
	r, n := utf8.DecodeRuneInString(s)
	return r, n
}

// hexRune reads between lo and hi hex digits: exactly all of s when
// lo < hi, else the first lo bytes.
func hexRune(s string, lo, hi int) (rune, bool) {
	n := lo
	if lo != hi {
		n = len(s)
	}
	if n < lo || n > hi || len(s) < n {
		return 0, false
	}
	var v rune
	for i := 0; i < n; i++ {
		d, ok := unhex(s[i])
		if !ok {
			return 0, false
		}
		v = v<<4 | rune(d)
	}
	return v, true
}

// jsToken is one lexical unit of jsFold's tokenizer.
type jsToken struct {
	kind byte   // see the jsTok constants
	text string // for strings, the decoded contents without quotes
	q    byte   // for strings, the quote character
	open bool   // for strings, no closing quote: the literal ran to the end
}

const (
	jsTokOther  = iota // anything else, kept as written
	jsTokString        // a string literal
	jsTokIdent         // an identifier or keyword
	jsTokSpace         // white space (comments become nothing)
)

// maxFoldTokens bounds the tokens jsFold works on; past it the value is
// folded no further than its escapes.
const maxFoldTokens = 8192

// jsFold rewrites JavaScript so that names built at run time read as
// written names: comments are removed, adjacent string literals joined
// across "+", a string in brackets that is a valid name becomes a
// property access ("x['alert']" → "x.alert"), optional chaining becomes
// plain access, and String.fromCharCode(…) and atob('…') of constant
// arguments become the strings they return. Escapes are decoded first
// (jsUnescape). Text that is not JavaScript passes through with its
// escapes decoded and what looks like comments removed; the result is
// for matching only.
func jsFold(s string) string {
	toks, ok := jsLex(jsUnescape(s))
	if !ok {
		return jsUnescape(s)
	}
	for range 4 {
		var changed bool
		toks, changed = jsFoldPass(toks)
		if !changed {
			break
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, t := range toks {
		if t.kind == jsTokString {
			b.WriteByte(t.q)
			b.WriteString(t.text)
			if !t.open {
				b.WriteByte(t.q)
			}
			continue
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// jsLex splits s into tokens. Comments are dropped ("/*…*/", "//" to the
// end of the line unless it follows ":" as in a URL, "<!--"); an
// unterminated string or comment runs to the end of s. It fails when s has
// more than maxFoldTokens tokens.
func jsLex(s string) ([]jsToken, bool) {
	var toks []jsToken
	for i := 0; i < len(s); {
		if len(toks) >= maxFoldTokens {
			return nil, false
		}
		c := s[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end := strings.IndexByte(s[i+1:], c)
			text := s[i+1:]
			if end >= 0 {
				text = s[i+1 : i+1+end]
			}
			if c == '`' && strings.Contains(text, "${") {
				// A template with substitutions is code, not a constant.
				toks = append(toks, jsToken{kind: jsTokOther, text: string(c)})
				i++
				continue
			}
			toks = append(toks, jsToken{kind: jsTokString, text: text, q: c, open: end < 0})
			i += 1 + len(text)
			if end >= 0 {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				i = len(s)
			} else {
				i += 2 + end + 2
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '/' && (i == 0 || s[i-1] != ':'):
			end := strings.IndexAny(s[i:], "\n\r\u2028")
			if end < 0 {
				i = len(s)
			} else {
				i += end
			}
		case c == '<' && strings.HasPrefix(s[i:], "<!--"):
			i += 4
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			j := i + 1
			for j < len(s) && strings.IndexByte(" \t\n\r\f\v", s[j]) >= 0 {
				j++
			}
			toks = append(toks, jsToken{kind: jsTokSpace, text: s[i:j]})
			i = j
		case identByte(c):
			j := i + 1
			for j < len(s) && identByte(s[j]) {
				j++
			}
			toks = append(toks, jsToken{kind: jsTokIdent, text: s[i:j]})
			i = j
		default:
			_, n := utf8.DecodeRuneInString(s[i:])
			toks = append(toks, jsToken{kind: jsTokOther, text: s[i : i+n]})
			i += n
		}
	}
	return toks, true
}

// identByte reports whether c may appear in a JavaScript name (ASCII
// letters, digits, "_", "$"; names in other scripts are left as other
// text, which only means they are not folded).
func identByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$'
}

// isJSName reports whether s is a valid ASCII JavaScript name.
func isJSName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !identByte(s[i]) {
			return false
		}
	}
	return true
}

// jsNext returns the index of the first token at or after i that is not
// space, or len(toks).
func jsNext(toks []jsToken, i int) int {
	for i < len(toks) && toks[i].kind == jsTokSpace {
		i++
	}
	return i
}

func isOther(toks []jsToken, i int, text string) bool {
	return i < len(toks) && toks[i].kind == jsTokOther && toks[i].text == text
}

// jsFoldPass makes one left-to-right pass of the rewrites jsFold lists.
func jsFoldPass(toks []jsToken) ([]jsToken, bool) {
	out := make([]jsToken, 0, len(toks))
	changed := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == jsTokString:
			// 'a' + 'b' → 'ab'
			for {
				j := jsNext(toks, i+1)
				if !isOther(toks, j, "+") {
					break
				}
				k := jsNext(toks, j+1)
				if t.open || k >= len(toks) || toks[k].kind != jsTokString || toks[k].q != t.q && toks[k].open {
					break
				}
				t.text += toks[k].text
				t.open = toks[k].open
				i = k
				changed = true
			}
			out = append(out, t)
		case isOther(toks, i, "["):
			// x['name'] → x.name
			j := jsNext(toks, i+1)
			k := jsNext(toks, j+1)
			if j < len(toks) && toks[j].kind == jsTokString && isJSName(toks[j].text) && isOther(toks, k, "]") {
				out = append(out, jsToken{kind: jsTokOther, text: "."}, jsToken{kind: jsTokIdent, text: toks[j].text})
				i = k
				changed = true
				continue
			}
			out = append(out, t)
		case isOther(toks, i, "?") && isOther(toks, i+1, "."):
			// a?.b → a.b, f?.(x) → f(x), a?.['b'] → a['b']
			if i+2 < len(toks) && (isOther(toks, i+2, "(") || isOther(toks, i+2, "[")) {
				i++
			} else {
				out = append(out, toks[i+1])
				i++
			}
			changed = true
		case t.kind == jsTokIdent && (t.text == "fromCharCode" || t.text == "atob"):
			if s, end, ok := jsConstCall(toks, i); ok {
				// Drop a "String." before fromCharCode.
				if n := len(out); t.text == "fromCharCode" && n >= 2 && out[n-1].text == "." && out[n-2].text == "String" {
					out = out[:n-2]
				}
				out = append(out, jsToken{kind: jsTokString, text: s, q: '\''})
				i = end
				changed = true
				continue
			}
			out = append(out, t)
		default:
			out = append(out, t)
		}
	}
	return out, changed
}

// jsConstCall evaluates fromCharCode(n, …) or atob('…') at toks[i] when
// every argument is a constant, returning the string and the index of the
// closing parenthesis.
func jsConstCall(toks []jsToken, i int) (string, int, bool) {
	j := jsNext(toks, i+1)
	if !isOther(toks, j, "(") {
		return "", 0, false
	}
	if toks[i].text == "atob" {
		k := jsNext(toks, j+1)
		end := jsNext(toks, k+1)
		if k >= len(toks) || toks[k].kind != jsTokString || !isOther(toks, end, ")") {
			return "", 0, false
		}
		d, err := base64.StdEncoding.DecodeString(toks[k].text)
		if err != nil {
			if d, err = base64.RawStdEncoding.DecodeString(toks[k].text); err != nil {
				return "", 0, false
			}
		}
		if !utf8.Valid(d) {
			return "", 0, false // binary: nothing a name is built from
		}
		return string(d), end, true
	}
	var b strings.Builder
	for k := jsNext(toks, j+1); k < len(toks); k = jsNext(toks, k+1) {
		if isOther(toks, k, ")") {
			return b.String(), k, b.Len() > 0
		}
		if isOther(toks, k, ",") {
			continue
		}
		if toks[k].kind != jsTokIdent {
			return "", 0, false
		}
		n, err := strconv.ParseInt(toks[k].text, 0, 32)
		if err != nil || n < 0 {
			return "", 0, false
		}
		b.WriteRune(rune(n & 0xFFFF))
	}
	return "", 0, false
}
