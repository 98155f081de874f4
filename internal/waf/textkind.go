package waf

import (
	"iter"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file tells what kind of text a value is, so that the scorers'
// verdicts apply where they are sound: a rule that matched SQL, shell or
// HTML syntax in prose, in a program's source or in rich-text markup is
// discounted when the family's scorer finds nothing the text would do
// (context.go); in anything else (fragments, encodings, values made of
// syntax) the rule's match stands.

type textKind int

const (
	kindOther  textKind = iota
	kindProse           // words of a natural language, with its punctuation and search syntax
	kindCode            // the source of a JavaScript (or similar) program, a GraphQL document, a saved SQL query
	kindMarkup          // HTML or XML markup around text
	kindTrace           // a stack trace: an error message and its frames
)

// maxKindLen bounds what textKindOf reads.
const maxKindLen = 64 << 10

// textKindOf classifies v.
func textKindOf(v string) textKind {
	if len(v) > maxKindLen {
		v = v[:maxKindLen]
	}
	switch {
	case isTrace(v):
		return kindTrace
	case isMarkup(v):
		return kindMarkup
	case isCode(v), hasFencedCode(v), isGraphQL(v), isSQLQuery(v):
		return kindCode
	case isProse(v):
		return kindProse
	}
	return kindOther
}

// isProse reports whether v is words of a natural language: at least two
// words, most tokens words, and none of the syntax that gives text a
// meaning to an interpreter (assignment and comparison, statement
// separators between words, comment openers, substitutions, braces).
// Search syntax counts as prose: quoted phrases, "-word" and "+word",
// "site:example.com".
func isProse(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, bad := range []string{"=", "<", ">", "/*", "*/", "`", "$(", "${", "||", "&&", "{", "}", "\\", "@@", "0x", "--\r", "--\n", "#\n", "#\r", "# ", "\x00"} {
		if strings.Contains(v, bad) {
			return false
		}
	}
	for i := range indexes(v, "-- ") {
		// A dash written as two hyphens between words ("list -- 2nd
		// ed.") is punctuation; after a number, a parenthesis or a
		// lone quote, or at the start, it is SQL's comment.
		j := i - 2
		if j >= 1 && isQuote(v[j]) {
			j-- // a quoted word's closing quote ("'and' -- twice")
		}
		if j < 0 || v[i-1] != ' ' || !unicode.IsLetter(rune(v[j])) && v[j] < 0x80 {
			return false
		}
	}
	if strings.HasSuffix(v, "--") || strings.HasSuffix(v, "#") || strings.HasPrefix(v, "@") || strings.Contains(v, " @") || strings.Contains(v, "(@") {
		return false
	}
	// Quotes and parentheses used as syntax: a quote or parenthesis
	// against an operator, a comma or another quote ("'-'", "')", "('",
	// "'||'", "',").
	for i := 0; i+1 < len(v); i++ {
		a, b := v[i], v[i+1]
		if b == '(' && (isAlnum(a) || a == '_') && !(i+3 < len(v) && v[i+2] == ')' && v[i+3] == ' ') || a == ',' && b == '(' {
			// A call, "sin(1)", or a list of groups, "(1),(2)": code,
			// where prose puts a space before a parenthesis. A
			// function named in a sentence, "the system() call", is
			// prose: its empty parentheses are how text names it.
			return false
		}
		if (isQuote(a) && strings.IndexByte("|^*%!~,;+", b) >= 0) || (isQuote(b) && strings.IndexByte("|^*%!~,;+", a) >= 0) ||
			(isParen(a) && strings.IndexByte("|^*%!~+", b) >= 0) || (isParen(b) && strings.IndexByte("|^*%!~+", a) >= 0) ||
			(a == '\'' || a == '"') && (b == '(' || b == ')') || (a == '(' || a == ')') && (b == '\'' || b == '"') {
			return false
		}
	}
	fields := strings.Fields(v)
	if len(fields) < 2 {
		return false
	}
	words, tokens := 0, 0
	for _, f := range fields {
		f = strings.Trim(f, "\"'()[],.;:!?-+*&#|/%“”‘’«»（）：，。！？、")
		if k := strings.IndexByte(f, ':'); k > 0 && k+1 < len(f) && isQuote(f[k+1]) && isWord(f[:k]) {
			// A search field and its phrase ("title:\"select\"").
			f = strings.Trim(f[k+1:], "\"'")
		}
		if f == "" {
			continue
		}
		tokens++
		if isWord(f) {
			words++
		}
	}
	return tokens > 0 && words >= 2 && words*3 >= tokens*2
}

func isQuote(c byte) bool { return c == '\'' || c == '"' }

func isParen(c byte) bool { return c == '(' || c == ')' }

// isWord reports whether f is a word: letters (any script) with digits,
// apostrophes, hyphens, dots, "&", "@" or "/" inside, or a number.
func isWord(f string) bool {
	letters, digits := 0, 0
	for i, r := range f {
		switch {
		case unicode.IsLetter(r):
			letters++
		case unicode.IsDigit(r):
			digits++
		case i > 0 && strings.ContainsRune("'’-.&@/:_", r):
		default:
			return false
		}
	}
	return letters >= 1 || (digits > 0 && digits == utf8.RuneCountInString(f))
}

// jsKeywords mark program source.
var jsKeywords = []string{"function", "var ", "let ", "const ", "return", "if (", "if(", "for (", "for(", "else", "typeof", "this.", "=>", "null", "throw ", "try{", "try {", "catch(", "catch ("}

// isCode reports whether v is program source: it has braces, and at least
// three marks of statements and functions.
func isCode(v string) bool {
	if !strings.Contains(v, "{") || !strings.Contains(v, "}") {
		return false
	}
	n := 0
	for _, k := range jsKeywords {
		if strings.Contains(v, k) {
			n++
		}
	}
	return n >= 3
}

// isGraphQL reports whether v is a GraphQL document, as single-page
// applications send in a "query" parameter or field: an operation
// ("query", "mutation", "subscription", "fragment", or a bare selection
// set) whose braces and parentheses balance, made only of GraphQL's
// tokens outside its double-quoted strings and "#" comments: names,
// numbers, "$" variables, "!:,=@|&." punctuation. A quote of SQL's,
// a ";" or a "--" outside a string makes it no GraphQL, and a quoted key
// ("{\"id\": 1}") makes it JSON.
func isGraphQL(v string) bool {
	t := strings.TrimSpace(v)
	if t == "" {
		return false
	}
	if t[0] != '{' {
		word := t
		if i := strings.IndexAny(t, " \t\r\n({"); i > 0 {
			word = t[:i]
		}
		switch word {
		case "query", "mutation", "subscription", "fragment":
		default:
			return false
		}
	}
	braces, parens, pairs := 0, 0, 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c == '"':
			// A string, with its escapes; a block string ("""…""")
			// reads as empty strings around one.
			for i++; i < len(t) && t[i] != '"'; i++ {
				if t[i] == '\\' {
					i++
				}
			}
			if i >= len(t) {
				return false
			}
			if rest := strings.TrimLeft(t[i+1:], " \t\r\n"); rest != "" && rest[0] == ':' {
				// A quoted key: JSON, not GraphQL, whose names are bare.
				return false
			}
		case c == '#':
			for i < len(t) && t[i] != '\n' {
				i++
			}
		case c == '{':
			braces++
			pairs++
		case c == '}':
			braces--
		case c == '(':
			parens++
		case c == ')':
			parens--
		case c == '-':
			if i+1 < len(t) && t[i+1] == '-' {
				return false
			}
		case isAlnum(c), c == '_', c == '$', c == '!', c == ':', c == ',', c == '=', c == '@', c == '|', c == '&', c == '.',
			c == '[', c == ']', c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return false
		}
		if braces < 0 || parens < 0 {
			return false
		}
	}
	return braces == 0 && parens == 0 && pairs > 0
}

// isSQLQuery reports whether v is one whole query that reads a table, as
// a dashboard, a report or a SQL console saves it and a search box is
// sometimes given: comment lines, then "SELECT … FROM …" to its end. It
// holds nothing an injection adds to a query: no UNION, no second
// statement, no comment after the query starts, no variable, no OR
// (XOR, ||) of a literal ("or 1=1", "or 'a'='a'", "or true"), no
// function or catalogue only injections use. A value placed where a
// query wants a number or a string breaks out of neither with it.
func isSQLQuery(v string) bool {
	s := strings.TrimSpace(v)
	for strings.HasPrefix(s, "--") || strings.HasPrefix(s, "#") {
		_, rest, ok := strings.Cut(s, "\n")
		if !ok {
			return false
		}
		s = strings.TrimSpace(rest)
	}
	if len(s) < 6 || !strings.EqualFold(s[:6], "select") || strings.Contains(s, "/*") {
		// The lexer drops block comments; a query a person saves needs
		// none inside it.
		return false
	}
	toks := sqlLex(s, 0)
	if len(toks) < 4 || len(toks) >= maxSQLTokens || sqlFind(toks, "from") < 2 || sqlHasTechnique(toks) {
		return false
	}
	if toks[len(toks)-1].text == ";" {
		toks = toks[:len(toks)-1]
	}
	// The query ends as a whole one does, in a name, a literal or a
	// parenthesis, not in a clause or an operator left for more
	// ("select 1 from bar where").
	switch last := toks[len(toks)-1]; {
	case last.kind == sqlWord && (sqlClause[last.text] || sqlBool[last.text] || sqlStatement[last.text] || sqlCompare[last.text] || last.text == "by" || last.text == "not"):
		return false
	case last.kind != sqlWord && last.kind != sqlNumber && last.kind != sqlString && last.text != ")":
		return false
	}
	for i, t := range toks {
		switch {
		case t.kind == sqlComment, t.kind == sqlVar, t.kind == sqlOther, t.open, t.text == "union":
			return false
		case t.text == ";":
			return false
		case t.text == "or" || t.text == "||" || t.text == "xor":
			j := i + 1
			for j < len(toks) && (toks[j].text == "not" || toks[j].text == "(") {
				j++
			}
			if end := sqlExprEnd(toks, j); end == j || sqlLiteralish(toks[j:end]) {
				return false
			}
		}
	}
	return true
}

// hasFencedCode reports whether v holds a Markdown code block: a fence
// line ("```" or "~~~", and an optional language tag) and a closing fence
// after it. What stands between is source shown as code, in a comment, an
// issue or a chat message.
func hasFencedCode(v string) bool {
	open := false
	for rest := v; rest != ""; {
		line, next, _ := strings.Cut(rest, "\n")
		rest = next
		if fence, _ := fenceLine(line); fence {
			if open {
				return true
			}
			open = true
		}
	}
	return false
}

// fenceLine reports whether line is a Markdown fence: "```" or "~~~" (three
// or more), then nothing but a language tag ("go", "c++", "objective-c",
// "sh"); tag reports whether there is one.
func fenceLine(line string) (fence, tag bool) {
	l := strings.TrimSpace(line)
	if len(l) < 3 || !strings.HasPrefix(l, "```") && !strings.HasPrefix(l, "~~~") {
		return false, false
	}
	c := l[0]
	l = strings.TrimLeft(l, string(c))
	info := strings.TrimSpace(l)
	for i := 0; i < len(info); i++ {
		if b := info[i]; !(isAlnum(b) || strings.IndexByte("+-#._", b) >= 0) {
			return false, false
		}
	}
	return true, info != ""
}

// blankFences blanks the fence lines of Markdown code blocks in v, which
// a shell would read as backquotes: the code between is judged as the
// lines it is.
func blankFences(v string) string {
	if !strings.Contains(v, "```") && !strings.Contains(v, "~~~") || !hasFencedCode(v) {
		return v
	}
	lines := strings.Split(v, "\n")
	for i, l := range lines {
		if fence, _ := fenceLine(l); fence {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// isMarkup reports whether v is markup: it has tags that close
// ("</p>", "/>") or an XML declaration, around text.
func isMarkup(v string) bool {
	if strings.HasPrefix(strings.TrimSpace(v), "<?xml") {
		return true
	}
	if !strings.Contains(v, "</") && !strings.Contains(v, "/>") {
		return false
	}
	tags := 0
	for i := strings.Index(v, "<"); i >= 0 && tags < 2; {
		rest := v[i+1:]
		if rest != "" && (rest[0] == '/' || rest[0] >= 'a' && rest[0] <= 'z' || rest[0] >= 'A' && rest[0] <= 'Z') && strings.IndexByte(rest, '>') >= 0 {
			tags++
		}
		j := strings.Index(rest, "<")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return tags >= 2
}

// isTrace reports whether v is a stack trace: at least two lines that are
// frames, and every other line (the message) without shell or markup
// syntax.
func isTrace(v string) bool {
	if !strings.Contains(v, "\n") {
		return false
	}
	frames := 0
	for _, l := range strings.Split(v, "\n") {
		if isFrameLine(l) {
			frames++
		} else if strings.ContainsAny(l, "<>`$;|&") {
			return false
		}
	}
	return frames >= 2
}

// stripStackFrames blanks the lines of v that are frames of a stack trace
// (V8's "    at fn (url:line:col)", "    at url:line:col", Java's "at
// pkg.Class.method(File.java:12)", Firefox's "fn@url:line:col"), which
// telemetry sends by the thousand: their URLs and names are not commands
// or markup. A line with anything after the position is kept.
func stripStackFrames(v string) string {
	if !strings.Contains(v, "at ") && !strings.Contains(v, "@") {
		return v
	}
	lines := strings.Split(v, "\n")
	changed := false
	for i, l := range lines {
		if isFrameLine(l) {
			lines[i] = ""
			changed = true
		}
	}
	if !changed {
		return v
	}
	return strings.Join(lines, "\n")
}

// isFrameLine reports whether l is one frame of a stack trace.
func isFrameLine(l string) bool {
	t := strings.TrimSpace(l)
	if len(t) > 2048 || strings.ContainsAny(strings.ReplaceAll(t, "<anonymous>", ""), ";|&`<>\"'") {
		return false
	}
	body, isV8 := strings.CutPrefix(t, "at ")
	if !isV8 {
		// Firefox and Safari: "fn@url:line:col".
		at := strings.IndexByte(t, '@')
		return at >= 0 && !strings.Contains(t[:at], " ") && endsWithPosition(t[at+1:])
	}
	switch {
	case strings.HasSuffix(body, "(native)"), strings.HasSuffix(body, "(<anonymous>)"), strings.HasSuffix(body, "(Native Method)"), strings.HasSuffix(body, "(Unknown Source)"):
		return true
	case strings.HasSuffix(body, ")"):
		open := strings.LastIndexByte(body, '(')
		return open >= 0 && endsWithPosition(body[open+1:len(body)-1])
	}
	return endsWithPosition(body) && !strings.Contains(body, " ")
}

// endsWithPosition reports whether s ends with ":line" or ":line:col".
func endsWithPosition(s string) bool {
	n := 0
	for n < 2 {
		i := strings.LastIndexByte(s, ':')
		if i < 0 || i == len(s)-1 || !isNumber(s[i+1:]) {
			break
		}
		s = s[:i]
		n++
	}
	return n > 0
}

// indexes yields each index at which sub occurs in s, left to right, not
// overlapping.
func indexes(s, sub string) iter.Seq[int] {
	return func(yield func(int) bool) {
		for off := 0; off < len(s); {
			i := strings.Index(s[off:], sub)
			if i < 0 || !yield(off+i) {
				return
			}
			off += i + max(1, len(sub))
		}
	}
}

// nameAt reports whether s[i:j] is a whole name: not preceded by a name
// character or a byte of notBefore, not followed by a name character.
func nameAt(s string, i, j int, notBefore string) bool {
	if i > 0 && (identByte(s[i-1]) || strings.IndexByte(notBefore, s[i-1]) >= 0) {
		return false
	}
	return j >= len(s) || !identByte(s[j])
}
