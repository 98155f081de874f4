package flow

import "testing"

func TestPrintableText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, spaces kept: é ü 日本", "plain text, spaces kept: é ü 日本"},
		{"\x1b]52;c;ZXZpbA==\x07", `\x1b]52;c;ZXZpbA==\a`},
		{"row\nforged\trow\r", `row\nforged\trow\r`},
		{"\u202egnp.exe", `\u202egnp.exe`},
		{"\u009b31m", `\u009b31m`},
		{"bad \xff byte", `bad \xff byte`},
		{`a \n already`, `a \n already`},
	} {
		if got := PrintableText(c.in); got != c.want {
			t.Errorf("PrintableText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
