package flow

import (
	"encoding/json"
	"testing"
)

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

func TestInertText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text: é 日本", "plain text: é 日本"},
		{"<!channel> <https://evil.example|sign in>", `\x3c!channel\x3e \x3chttps\x3a//evil.example|sign in\x3e`},
		{`<a href="x">&amp;</a>`, `\x3ca href="x"\x3e\x26amp;\x3c/a\x3e`},
		{"line\n<b>\u202e", `line\n\x3cb\x3e\u202e`},
		// Markdown (Teams, Discord, Mattermost): no link whose text hides
		// its target, no image, no bare link, no mention, nothing that
		// hides or eats characters (emphasis, code, spoilers, a heading,
		// a backslash escape).
		{"[sign in](https://evil.example/sso) ![x](http://evil.example/p.png)", `\x5bsign in\x5d(https\x3a//evil.example/sso) !\x5bx\x5d(http\x3a//evil.example/p.png)`},
		{"HTTPS://a.example www.evil.example WWW.b.example xwww.c", `HTTPS\x3a//a.example www\x2eevil.example WWW\x2eb.example xwww.c`},
		{"@channel @here a@b.example", `\x40channel \x40here a\x40b.example`},
		{"*bold* _it_ ~~del~~ `code` ||hid||", `\x2abold\x2a \x5fit\x5f \x7e\x7edel\x7e\x7e \x60code\x60 \x7c\x7chid\x7c\x7c`},
		{"# title", `\x23 title`},
		{`..\..\win \* \x3c \\`, `..\x5c..\win \x5c\x2a \x3c \x5c\x5c`},
		{"\n*", `\n\x2a`},
		// What Markdown leaves alone stays as it is: a word's underscore,
		// one pipe, an identity, a path.
		{"unknown_authority a|b spiffe://example.org/svc/db /a/b#c 1.2.3.4", "unknown_authority a|b spiffe://example.org/svc/db /a/b#c 1.2.3.4"},
		{"_x x_ a__b", `\x5fx x\x5f a\x5f\x5fb`},
	} {
		if got := InertText(c.in); got != c.want {
			t.Errorf("InertText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPrintableRecord(t *testing.T) {
	r := Record{Message: "ok", SrcEndpoint: &Endpoint{SvcName: "web\u202e"},
		HTTPRequest: &HTTPRequest{UserAgent: "\x1b]0;t\a", URL: &URL{Path: "/a\nb"}},
		Unmapped:    &Moat{Rules: []string{"1", "\u200b2"}}}
	PrintableRecord(&r)
	if r.Message != "ok" || r.SrcEndpoint.SvcName != `web\u202e` || r.HTTPRequest.UserAgent != `\x1b]0;t\a` ||
		r.HTTPRequest.URL.Path != `/a\nb` || r.Unmapped.Rules[1] != `\u200b2` {
		t.Errorf("PrintableRecord: %+v %+v %+v %v", r.SrcEndpoint, r.HTTPRequest, r.HTTPRequest.URL, r.Unmapped.Rules)
	}
}

func TestPrintableJSON(t *testing.T) {
	for _, s := range []string{"plain é 日本 \u00e9", "\u009b31m", "\u202egnp.exe", "\u2066x\u2069 \u200f", "\U000e0041 tag", "\x1b\n\u2028"} {
		b, err := json.Marshal(map[string]string{"k": s})
		if err != nil {
			t.Fatal(err)
		}
		out := PrintableJSON(b)
		for _, r := range string(out) {
			if r < 0x20 || hidden(r) {
				t.Errorf("PrintableJSON(%s) = %s: holds %U", b, out, r)
			}
		}
		var back map[string]string
		if err := json.Unmarshal(out, &back); err != nil || back["k"] != s {
			t.Errorf("PrintableJSON(%s) = %s: reads back as %q (%v)", b, out, back["k"], err)
		}
	}
}
