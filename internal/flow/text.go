package flow

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// PrintableText escapes what in s would act on a terminal or forge a line
// where it is shown (control characters, line breaks and tabs, invalid
// UTF-8, characters that do not print, bidirectional overrides among
// them) as Go escapes (\x1b, \n, \u202e) and keeps the rest, spaces
// included. It is how moat shows text that others wrote (a record's
// fields, a node's report, a recording's labels) where a reader takes it
// for moat's own: a terminal, an alert.
func PrintableText(s string) string {
	if printableASCII(s) || utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return r != ' ' && !strconv.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
				continue
			}
		}
		if r == ' ' || strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// InertText is PrintableText for a reader that may take text as markup:
// chat messages and HTML mail, and the templates that make them from an
// alert's labels and annotations. It also writes as escapes (\x3c) what
// such a reader would act on, so that it shows what was written and
// nothing else:
//   - <, > and &: Slack's mentions and links (<!channel>,
//     <https://…|text>), HTML's tags and entities;
//   - [ and ]: a Markdown link whose text hides its target, an image
//     fetched when shown (Teams, Discord, Mattermost);
//   - the colon of http://, https:// and ftp://, and the dot of a word
//     www.: a bare link made live;
//   - @: a mention that notifies a channel (@channel, @here, @everyone);
//   - *, ~, `, a _ not inside a word, a pipe beside another and a # that
//     opens the text: emphasis, strike-through, code, a spoiler or a
//     heading, which hide or eat the characters that make them;
//   - a backslash before punctuation (one of these escapes included) or
//     at the end, which Markdown reads as an escape and drops.
//
// An identity (spiffe://…), an address, a path, a word's underscore, a
// lone pipe and the escapes of PrintableText stay as they are.
func InertText(s string) string {
	s = PrintableText(s)
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inert(s, i) {
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

const hexDigits = "0123456789abcdef"

// inert says whether s[i] is one that InertText writes as an escape.
func inert(s string, i int) bool {
	before := func(j int) byte {
		if j < 0 {
			return ' '
		}
		return s[j]
	}
	after := func(j int) byte {
		if j >= len(s) {
			return ' '
		}
		return s[j]
	}
	switch s[i] {
	case '<', '>', '&', '[', ']', '@', '*', '~', '`':
		return true
	case '\\':
		// At the end, what a template puts next may be punctuation.
		c := after(i + 1)
		return i+1 == len(s) || c > ' ' && c <= '~' && !alnum(c)
	case '_':
		// Inside a word it opens and closes no emphasis.
		return !alnum(before(i-1)) || !alnum(after(i+1))
	case '|':
		return before(i-1) == '|' || after(i+1) == '|'
	case '#':
		return i == 0
	case ':':
		if !strings.HasPrefix(s[i:], "://") {
			return false
		}
		for _, scheme := range []string{"http", "https", "ftp"} {
			j := i - len(scheme)
			if j >= 0 && strings.EqualFold(s[j:i], scheme) && !alnum(before(j-1)) {
				return true
			}
		}
	case '.':
		j := i - 3
		return j >= 0 && strings.EqualFold(s[j:i], "www") && !alnum(before(j-1))
	}
	return false
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// PrintableRecord makes every text field of r printable (PrintableText),
// for a reader who sees the text itself rather than JSON's spelling of
// it: the dashboard's page, which shows a record's fields as text, where
// a direction override or an invisible character of a client's path or a
// node's names would turn them round or hide them.
func PrintableRecord(r *Record) { printableValue(reflect.ValueOf(r).Elem()) }

func printableValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); !printableASCII(s) {
			v.SetString(PrintableText(s))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			printableValue(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				printableValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			printableValue(v.Index(i))
		}
	}
}

// printableASCII says whether s is printable ASCII alone, as nearly every
// name and address a record holds is.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// PrintableJSON returns the JSON text b with every character that does
// not print written as a \u escape: C1 controls (which some terminals obey
// as the escape sequences they stand for), direction overrides, line and
// paragraph separators and the other format characters. encoding/json
// escapes the C0 controls, not these. The value is the same; it is how
// moat writes JSON holding text that others wrote (a client's User-Agent,
// a record a node sent) for a reader who sees it as text: the CLI's
// output, export files read in a terminal or a SIEM's console.
func PrintableJSON(b []byte) []byte {
	i := bytes.IndexFunc(b, hidden)
	if i < 0 {
		return b
	}
	out := append(make([]byte, 0, len(b)+16), b[:i]...)
	for _, r := range string(b[i:]) {
		if !hidden(r) {
			out = utf8.AppendRune(out, r)
			continue
		}
		if r > 0xffff { // a surrogate pair, as JSON spells it
			r -= 0x10000
			out = fmt.Appendf(out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}

// hidden says whether r, outside ASCII, does not print.
func hidden(r rune) bool { return r >= utf8.RuneSelf && !strconv.IsPrint(r) }
