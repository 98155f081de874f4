package flow

import (
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
