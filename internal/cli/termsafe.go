package cli

import (
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"moat/internal/flow"
)

// termSafe writes a recorded terminal's output to the replaying
// administrator's terminal, keeping what draws (text, colours, cursor
// movement, erasing, scrolling, the alternate screen) and dropping what
// acts on the terminal or answers into its input: operating system
// commands (clipboard writes, hyperlinks, titles, colour queries), device
// control and other control strings, status and attribute reports, window
// operations, mouse and focus reporting, printer control and C1 controls.
// A recording holds whatever the node's programs printed, so someone who
// could make a program print (a log line, a file name) could otherwise
// type into the administrator's shell or write their clipboard when the
// session is replayed. Sequences may span writes.
type termSafe struct {
	w       io.Writer
	state   int
	seq     []byte // the CSI or charset sequence being read
	part    []byte // an incomplete UTF-8 character at the end of a write
	dropped int    // sequences and controls removed
	// What the recording left set, for restore: the modes it set or
	// reset (true: set), whether it set attributes, a scroll region, a
	// G0 character set other than ASCII, the application keypad.
	modes                    map[string]bool
	sgr, margins, g0, keypad bool
}

const (
	tsGround = iota
	tsEsc
	tsCSI
	tsCSISkip    // an oversized CSI, dropped to its final byte
	tsString     // OSC, DCS, SOS, PM, APC: dropped to its terminator
	tsStringEsc  // an ESC inside a control string (ST is ESC \)
	tsCharset    // ESC ( and its kin: one more byte
	maxCSILength = 32
)

// privateModes are the DEC private modes a replay may set or reset:
// cursor keys, wrap, cursor blink and visibility, the alternate screen,
// bracketed paste. Reporting modes (mouse, focus) are not among them.
var privateModes = map[string]bool{"1": true, "7": true, "12": true, "25": true, "47": true, "1047": true, "1048": true, "1049": true, "2004": true}

// drawing are the final bytes of CSI sequences that only draw: cursor
// movement and position, insert and delete, erase, scroll, tab stops,
// margins, SGR, save and restore.
const drawing = "@ABCDEFGHIJKLMPSTXZ`adefgmrsu"

func (t *termSafe) Write(p []byte) (int, error) {
	var out []byte
	b := append(t.part, p...)
	for len(b) > 0 {
		if !utf8.FullRune(b) {
			break
		}
		r, n := utf8.DecodeRune(b)
		out = t.rune(out, r)
		b = b[n:]
	}
	t.part = append([]byte(nil), b...)
	if len(out) > 0 {
		if _, err := t.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// rune feeds one character of the recording and appends what may pass.
func (t *termSafe) rune(out []byte, r rune) []byte {
	switch t.state {
	case tsGround:
		switch {
		case r == 0x1b:
			t.state, t.seq = tsEsc, t.seq[:0]
		case r == '\n' || r == '\r' || r == '\t' || r == '\b':
			out = append(out, byte(r))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			t.dropped++
		default:
			out = append(out, string(r)...)
		}
	case tsEsc:
		t.state = tsGround
		switch {
		case r == '[':
			t.state = tsCSI
		case r == ']' || r == 'P' || r == 'X' || r == '^' || r == '_':
			t.state = tsString
			t.dropped++
		case r == '(' || r == ')':
			t.state, t.seq = tsCharset, append(t.seq, byte(r))
		case strings.ContainsRune("78DEM=>", r):
			out = append(out, 0x1b, byte(r))
			if r == '=' || r == '>' {
				t.keypad = r == '='
			}
		default:
			t.dropped++
			if r == 0x1b {
				t.state = tsEsc
			}
		}
	case tsCharset:
		t.state = tsGround
		if r == 'B' || r == '0' {
			out = append(append(append(out, 0x1b), t.seq...), byte(r))
			if t.seq[0] == '(' {
				t.g0 = r == '0'
			}
		} else {
			t.dropped++
		}
	case tsCSI, tsCSISkip:
		switch {
		case r >= 0x40 && r <= 0x7e:
			if t.state == tsCSI && t.allowedCSI(byte(r)) {
				out = append(append(append(out, 0x1b, '['), t.seq...), byte(r))
				t.passed(byte(r))
			} else {
				t.dropped++
			}
			t.state = tsGround
		case r >= 0x20 && r <= 0x3f:
			if len(t.seq) >= maxCSILength {
				t.state = tsCSISkip
			} else if t.state == tsCSI {
				t.seq = append(t.seq, byte(r))
			}
		default: // a control or another character inside a CSI: cancelled
			t.dropped++
			t.state = tsGround
			if r == 0x1b {
				t.state = tsEsc
			}
		}
	case tsString:
		if r == 0x1b {
			t.state = tsStringEsc
		} else if r == 0x07 || r == 0x9c {
			t.state = tsGround
		}
	case tsStringEsc:
		t.state = tsString
		if r == '\\' {
			t.state = tsGround
		}
	}
	return out
}

// allowedCSI says whether the CSI sequence read so far, ending with final,
// only draws.
func (t *termSafe) allowedCSI(final byte) bool {
	params := string(t.seq)
	if i := strings.IndexFunc(params, func(r rune) bool { return r >= 0x20 && r <= 0x2f }); i >= 0 {
		// Intermediates: only the cursor style (CSI n SP q).
		return final == 'q' && params[i:] == " " && digitsOnly(params[:i])
	}
	if final == 'h' || final == 'l' {
		modes, ok := strings.CutPrefix(params, "?")
		if !ok {
			return params == "4" || params == "20" // insert, newline
		}
		for _, m := range strings.Split(modes, ";") {
			if !privateModes[m] {
				return false
			}
		}
		return true
	}
	if !strings.ContainsRune(drawing, rune(final)) {
		return false
	}
	for _, r := range params {
		if (r < '0' || r > '9') && r != ';' && r != ':' {
			return false // private markers (<, =, >, ?) ask for reports
		}
	}
	return true
}

// passed notes what a CSI sequence that was played, ending with final,
// leaves set.
func (t *termSafe) passed(final byte) {
	switch final {
	case 'm':
		t.sgr = true
	case 'r':
		t.margins = true
	case 'h', 'l':
		if t.modes == nil {
			t.modes = map[string]bool{}
		}
		params := string(t.seq)
		private := strings.HasPrefix(params, "?")
		for _, m := range strings.Split(strings.TrimPrefix(params, "?"), ";") {
			if private {
				m = "?" + m
			}
			t.modes[m] = final == 'h'
		}
	}
}

// modeDefaults are the modes a replay may change, in the order restore
// puts them back, each with the state a terminal starts in: the
// alternate screens first, so that what follows applies to the main one.
var modeDefaults = []struct {
	mode string
	set  bool
}{{"?1049", false}, {"?1047", false}, {"?47", false}, {"?1", false}, {"?7", true}, {"?12", false}, {"?25", true}, {"?2004", false}, {"4", false}, {"20", false}}

// restore writes what puts back the modes, attributes, scroll region,
// character set and keypad the recording left changed: after the
// recording come the replay's own lines, which must not be drawn
// concealed, in another screen or in a scroll region of its making, and
// the administrator's shell. A recording that changed none of them gets
// nothing.
func (t *termSafe) restore() error {
	var out []byte
	for _, d := range modeDefaults {
		if set, ok := t.modes[d.mode]; ok && set != d.set {
			final := byte('l')
			if d.set {
				final = 'h'
			}
			out = append(append(append(out, "\x1b["...), d.mode...), final)
		}
	}
	if t.margins {
		out = append(out, "\x1b7\x1b[r\x1b8"...) // the whole screen, the cursor where it was
	}
	if t.g0 {
		out = append(out, "\x1b(B"...)
	}
	if t.keypad {
		out = append(out, "\x1b>"...)
	}
	if t.sgr {
		out = append(out, "\x1b[0m"...)
	}
	if len(out) == 0 {
		return nil
	}
	_, err := t.w.Write(out)
	return err
}

func digitsOnly(s string) bool {
	_, err := strconv.Atoi(s)
	return s == "" || err == nil
}

// maxCell bounds a table cell, in bytes of its escaped form.
const maxCell = 512

// cell is s as a table cell on the administrator's terminal. Cells hold
// what others wrote (flow records and listener reports a node sends, text
// a client gave the gateway), so what would act on the terminal or
// reshape the table is escaped as flow.PrintableText escapes it: control
// characters (escape sequences, tabs, line breaks), direction overrides,
// invalid UTF-8. A cell longer than maxCell is cut, marked with "…";
// --output json has the whole value.
func cell(s string) string {
	s = flow.PrintableText(s)
	if len(s) <= maxCell {
		return s
	}
	n := maxCell
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
