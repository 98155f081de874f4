package cli

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPlayCast: the output events of an asciicast v2 recording are written
// in order; input and markers are not; a recording that is not one is
// refused, naming the bad line.
func TestPlayCast(t *testing.T) {
	rec := "{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"hello \"]\n[0.2,\"i\",\"secret\"]\n[0.3,\"m\",\"mark\"]\n[0.4,\"o\",\"world\\r\\n\"]\n"
	var out bytes.Buffer
	if _, err := playCast(context.Background(), &out, []byte(rec), 1, time.Second, true); err != nil || out.String() != "hello world\r\n" {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	for _, tc := range []struct{ name, rec, want string }{
		{"empty", "", "empty recording"},
		{"version 1", "{\"version\":1}\n", "not an asciicast v2 recording"},
		{"a bad event", "{\"version\":2}\n[1,\"o\"]\n", "malformed event on line 2"},
	} {
		if _, err := playCast(context.Background(), &out, []byte(tc.rec), 1, time.Second, true); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// FuzzPlayCast: whatever a recording holds, playing it never panics, and
// only the data of its output events is written.
func FuzzPlayCast(f *testing.F) {
	f.Add([]byte("{\"version\":2}\n[0.5,\"o\",\"x\"]\n"))
	f.Add([]byte("{\"version\":2}\n[1e308,\"o\",\"\\u001b[2J\"]\n[-1,\"o\",\"y\"]\n"))
	f.Add([]byte("{\"version\":2}\n[\"a\",\"o\",1]\n"))
	f.Add([]byte("{\"version\":2}\n[0.1,\"m\",\"program: \\u001b]52;\\u202e\\n\\ud800\"]\n"))
	f.Fuzz(func(t *testing.T, rec []byte) {
		var out bytes.Buffer
		_, _ = playCast(context.Background(), &out, rec, 1, time.Millisecond, true)
		if out.Len() > len(rec)*6 {
			t.Fatalf("%d bytes written from a recording of %d", out.Len(), len(rec))
		}
		for _, bad := range []string{"\x1b]", "\x1bP", "\x1b_", "\x1b^", "\x1bX", "\x1b[6n", "\x1b[21t", "\u009b", "\u009d", "\x07"} {
			if strings.Contains(out.String(), bad) {
				t.Fatalf("%q played from %q", bad, rec)
			}
		}
		// The markers shown beside it hold printable text and newlines only.
		var marks bytes.Buffer
		_, _ = playCastMarks(context.Background(), io.Discard, rec, 1, time.Millisecond, true, &castMarks{w: &marks})
		for _, r := range marks.String() {
			if r != '\n' && (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || !strconv.IsPrint(r) && r != ' ') {
				t.Fatalf("marker shown with %U from %q", r, rec)
			}
		}
	})
}

// TestTermSafe: what a replay writes to the administrator's terminal keeps
// the drawing of the session (text, colours, cursor, alternate screen) and
// none of what acts on the terminal or answers into its input, even when a
// sequence is split between output events.
func TestTermSafe(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"text and colour", "\x1b[1;31mred\x1b[0m ok\r\n", "\x1b[1;31mred\x1b[0m ok\r\n"},
		{"cursor and erase", "\x1b[2J\x1b[H\x1b[10;5Hx\x1b[K", "\x1b[2J\x1b[H\x1b[10;5Hx\x1b[K"},
		{"alternate screen, cursor, bracketed paste", "\x1b[?1049h\x1b[?25l\x1b[?2004h", "\x1b[?1049h\x1b[?25l\x1b[?2004h"},
		{"clipboard write (OSC 52)", "a\x1b]52;c;ZWNobyBwd25lZAo=\x07b", "ab"},
		{"title with ST", "a\x1b]2;title\x1b\\b", "ab"},
		{"hyperlink", "\x1b]8;;http://evil/\x1b\\x\x1b]8;;\x1b\\", "x"},
		{"DECRQSS (DCS)", "\x1bP$q\"p\x1b\\z", "z"},
		{"APC, PM, SOS", "\x1b_a\x1b\\\x1b^b\x1b\\\x1bXc\x1b\\d", "d"},
		{"title report", "\x1b[21t\x1b[14t", ""},
		{"device status and attributes", "\x1b[6n\x1b[c\x1b[>c\x1b[?6n", ""},
		{"DECRQM", "\x1b[?2004$p", ""},
		{"mouse and focus reporting", "\x1b[?1000h\x1b[?1004h\x1b[?1049;1006h", ""},
		{"printer", "\x1b[5i", ""},
		{"repeat", "x\x1b[999999999b", "x"},
		{"C1 controls", "a\u009b6n\u009d52;c;x\u009cb", "a6n52;c;xb"},
		{"C0 controls", "a\x07\x05\x0eb\tc", "ab\tc"},
		{"an oversized CSI", "\x1b[" + strings.Repeat("1;", 100) + "mx", "x"},
		{"a full reset", "\x1bcx", "x"},
		{"charsets", "\x1b(0q\x1b(B\x1b(%5", "\x1b(0q\x1b(B5"},
		{"cursor style", "\x1b[2 q", "\x1b[2 q"},
	} {
		for split := 0; split <= len(tc.in); split++ {
			var out bytes.Buffer
			w := &termSafe{w: &out}
			w.Write([]byte(tc.in[:split]))
			w.Write([]byte(tc.in[split:]))
			if out.String() != tc.want {
				t.Errorf("%s (split at %d): wrote %q, want %q", tc.name, split, out.String(), tc.want)
				break
			}
		}
	}
}
