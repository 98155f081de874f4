package waf

import "strings"

// Code shown in a document. Comments, issues, chat messages and API
// documents show commands and queries as Markdown code: a fenced block
// ("```sh" … "```") or a code span in a sentence ("also `rm -rf build/`
// before running"). What such code says is shown to a reader, not handed
// to a shell after a separator the application did not mean; the scorers
// judge it as text (shownCode, shellScore) and keep as attacks only what
// no document shows but an attack sends (a reverse shell, a function
// definition for Shellshock, output redirected into a page the server
// runs).

// Bounds of shownCode: the bytes it reads and the code spans it takes.
const (
	maxShownLen   = 64 << 10
	maxCodeSpans  = 64
	minSpanWords  = 4 // words of text around code spans
	maxSpanLength = 256
)

// shownCode splits v into the text a reader reads and the code it shows:
// the lines of fenced code blocks (their fences blanked), and the code
// spans of text that reads as words around them (each span replaced in
// the text by the word "code"). code is nil when v shows none; v longer
// than maxShownLen is not split.
func shownCode(v string) (text string, code []string) {
	if len(v) > maxShownLen || strings.IndexByte(v, '`') < 0 && !strings.Contains(v, "~~~") {
		return v, nil
	}
	text = v
	if hasFencedCode(v) {
		var t strings.Builder
		var block strings.Builder
		open := false
		for rest := v; rest != ""; {
			line, next, found := strings.Cut(rest, "\n")
			rest = next
			if fence, _ := fenceLine(line); fence {
				if open {
					code = append(code, block.String())
					block.Reset()
				}
				open = !open
				line = ""
			} else if open {
				block.WriteString(line)
				block.WriteByte('\n')
				line = ""
			}
			t.WriteString(line)
			if found {
				t.WriteByte('\n')
			}
		}
		if open {
			// A block left open is not shown code: its lines are
			// judged as the text they are.
			return v, nil
		}
		if !fencedDocument(t.String(), code) {
			// A fence around one line and nothing else ("```\n;cat
			// /etc/passwd\n```") shows nothing: it wraps a payload.
			return v, nil
		}
		text = t.String()
	}
	spans, rest := codeSpans(text)
	if spans != nil {
		code = append(code, spans...)
		text = rest
	}
	return text, code
}

// fencedDocument reports whether fenced blocks are part of a document:
// words stand outside them, or they hold two lines of code or more.
func fencedDocument(text string, code []string) bool {
	words := 0
	for _, f := range strings.Fields(text) {
		if isWord(strings.Trim(f, "\"'()[],.;:!?-—")) {
			words++
		}
	}
	if words >= 2 {
		return true
	}
	lines := 0
	for _, c := range code {
		for _, l := range strings.Split(c, "\n") {
			if strings.TrimSpace(l) != "" {
				lines++
			}
		}
	}
	return lines >= 2
}

// codeSpans returns the code spans of text ("`…`" on one line, not
// empty, at most maxSpanLength bytes) when the text around them reads as
// words (at least minSpanWords, two in three of its tokens), and the text
// with each span replaced by the word "code"; nil when it has none or the
// text around them is no sentence.
func codeSpans(text string) ([]string, string) {
	if strings.IndexByte(text, '`') < 0 {
		return nil, text
	}
	var spans []string
	var b strings.Builder
	for len(spans) < maxCodeSpans {
		i := strings.IndexByte(text, '`')
		if i < 0 {
			break
		}
		j := strings.IndexByte(text[i+1:], '`')
		if j < 0 {
			return nil, text // a backquote left open
		}
		span := text[i+1 : i+1+j]
		if strings.TrimSpace(span) == "" || len(span) > maxSpanLength || strings.ContainsAny(span, "\n\r") ||
			i > 0 && !spanEdge(text[i-1]) || i+2+j < len(text) && !spanEdge(text[i+2+j]) {
			// A span stands apart from the words around it, as a
			// writer sets code in a sentence ("AND`id`" is no span).
			return nil, text
		}
		spans = append(spans, span)
		b.WriteString(text[:i])
		b.WriteString(" code ")
		text = text[i+2+j:]
	}
	if strings.IndexByte(text, '`') >= 0 {
		return nil, text
	}
	b.WriteString(text)
	rest := b.String()
	words, tokens := 0, 0
	for _, f := range strings.Fields(rest) {
		f = strings.Trim(f, "\"'()[]{},.;:!?-+*&#|/%<>=“”‘’«»（）：，。！？、")
		if f == "" {
			continue
		}
		if f == "code" {
			continue
		}
		tokens++
		if isWord(f) {
			words++
		}
	}
	if words < minSpanWords || words*3 < tokens*2 {
		return nil, text
	}
	return spans, rest
}

// spanEdge reports whether c may stand next to a code span: white
// space or a sentence's punctuation.
func spanEdge(c byte) bool {
	return strings.IndexByte(" \t\n\r.,;:!?()[]\"'", c) >= 0
}

// shellShownCode judges code a document shows as a shell would run it,
// whole: scoreAttack only for what is an attack wherever it stands (a
// reverse shell, a Shellshock function definition, output redirected
// into a script the server runs), scoreWeak for any other command, as
// documents show them ("set -euo pipefail", "rm -rf build/").
func shellShownCode(code string) int {
	shellOnce.Do(loadShellCommands)
	s := strings.ToLower(code)
	if strings.Contains(s, "/dev/tcp/") || strings.Contains(s, "/dev/udp/") || strings.HasPrefix(strings.TrimSpace(s), "() {") || redirectsToScript(s) ||
		strings.Contains(s, "-e /bin/") || strings.Contains(s, "-e/bin/") || strings.Contains(s, "exec:/bin/") {
		// A reverse shell (bash's /dev/tcp, a network program handed a
		// shell to run), Shellshock, a page written for the server.
		return scoreAttack
	}
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if strings.IndexByte(";|&", l[0]) >= 0 || strings.HasPrefix(l, "$(") || l[0] == '`' {
			// A line that opens with a separator or is a substitution
			// is written to end another command, not as a script's
			// line: judged as any value.
			if sc := shellForm(l); sc == scoreAttack {
				return sc
			}
		}
	}
	if shellForm(s) > scoreNone {
		return scoreWeak
	}
	return scoreNone
}
