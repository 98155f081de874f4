package cmdline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// PrintJSON writes v to w as indented JSON, as TerminalJSON writes it.
func PrintJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(TerminalJSON(b), '\n'))
	return err
}

// WriteJSONLine writes v to w as one line of JSON, as TerminalJSON
// writes it.
func WriteJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(TerminalJSON(b), '\n'))
	return err
}

// TerminalJSON returns the JSON text b with every character that does not
// print written as a \u escape: C1 controls (which some terminals obey as
// the escape sequences they stand for), direction overrides and the other
// format characters. encoding/json escapes the C0 controls, not these.
// The value is the same; what the CLI prints is text that others wrote
// (a client's User-Agent, a record a node sent), and it reaches the
// administrator's terminal as text.
func TerminalJSON(b []byte) []byte {
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
