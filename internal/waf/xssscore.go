package waf

import (
	"html"
	"strings"
)

// This file judges whether a value would run script in a browser. Markup
// runs script only in a few places: a <script> element, an event handler
// attribute, a URL attribute whose scheme is javascript:, vbscript: or an
// HTML data: URL, a frame's srcdoc, the elements that load other documents
// (iframe, object, embed, base…), CSS expressions, and template
// expressions that reach a constructor. JavaScript runs something only
// when it calls or hands over one of the functions that run or show code
// (alert, eval, Function, setTimeout…) or touches the document's cookie,
// domain or location. Rich text (<p style=…>, <h2 id=…>), an XML document,
// a search for "JavaScript: Basics" and a function's source that calls
// none of these do nothing.

// maxXSSTags bounds the tags xssScore parses in one value.
const maxXSSTags = 1024

// xssScore judges v: scoreAttack when it holds an executable context,
// scoreWeak when it holds markup or script that executes nothing,
// scoreNone otherwise. It looks at v and at its normal form (entities,
// escapes, concatenations undone; see normalize).
// xssMarks are the bytes of markup, a scheme, a call, a template, an
// escape or a computed member; xssNeed adds the "." of ".constructor": a
// value xssScore scores holds one of them (the gate decides the rest by
// the value's bytes).
const (
	xssMarks = "<>:(`{}=&%\\["
	xssNeed  = xssMarks + "."
)

func xssScore(v string) int { return xssScoreNorm(v, normalize) }

// xssScoreNorm is xssScore with norm for normalize.
func xssScoreNorm(v string, norm func(string) (string, bool)) int {
	if !strings.ContainsAny(v, xssMarks) && !strings.Contains(v, ".constructor") {
		// No markup, no URL scheme, no call, no template, nothing
		// escaped, no computed member, no constructor: nothing a
		// browser runs.
		return scoreNone
	}
	best := scoreNone
	v = stripStackFrames(v)
	forms := []string{v}
	if n, ok := norm(v); ok {
		forms = append(forms, n)
	}
	if d := unescapeMarkup(v); d != v {
		forms = append(forms, d)
	}
	for _, s := range forms {
		if len(s) > maxNormalizeLen {
			s = s[:maxNormalizeLen]
		}
		if sc := xssForm(s); sc > best {
			best = sc
			if best == scoreAttack {
				return best
			}
		}
	}
	return best
}

func xssForm(s string) int {
	best := scoreNone
	lower := strings.ToLower(s)
	if sc := htmlScore(s, lower); sc > best {
		best = sc
	}
	if best == scoreAttack {
		return best
	}
	if scriptURL(lower) {
		return scoreAttack
	}
	if jsSinkScore(jsFold(lower)) == scoreAttack || obfuscatedMember(lower) || literalConstructor(lower) {
		return scoreAttack
	}
	if strings.Contains(lower, "expression(") || strings.Contains(lower, "-moz-binding") || strings.Contains(lower, "behavior:url") || strings.Contains(lower, "<!entity") {
		return scoreAttack
	}
	if templateScore(lower) {
		return scoreAttack
	}
	if handlerText(lower) {
		return scoreAttack
	}
	if best == scoreNone && (strings.Contains(lower, "javascript") || strings.Contains(lower, "script") || strings.ContainsAny(s, "<>")) {
		best = scoreWeak
	}
	return best
}

// Elements that load or become another document or script wherever they
// appear, given any attribute.
var loadingElements = map[string]bool{
	"iframe": true, "frame": true, "frameset": true, "object": true, "embed": true, "applet": true,
	"base": true, "portal": true, "isindex": true, "import": true, "xss": false,
}

// URL-valued attributes, where a javascript: URL runs.
var urlAttributes = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "data": true, "xlink:href": true,
	"background": true, "dynsrc": true, "lowsrc": true, "poster": true, "code": true, "codebase": true,
	"values": true, "to": true, "from": true, "by": true, "ping": true, "manifest": true, "icon": true,
	"content": true, "style": true, "srcset": true, "cite": true, "longdesc": true, "usemap": true, "folder": true,
}

// htmlScore parses the tags in s (every "<" followed by a name starts
// one, wherever it is, so that a tag hidden in another's attribute is
// still seen) and judges the worst.
func htmlScore(s, lower string) int {
	best := scoreNone
	n := 0
	for i := strings.IndexByte(lower, '<'); i >= 0 && i < len(lower); {
		n++
		if n > maxXSSTags {
			break
		}
		if sc := tagScore(lower[i+1:]); sc > best {
			best = sc
			if best == scoreAttack {
				return best
			}
		}
		j := strings.IndexByte(lower[i+1:], '<')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return best
}

// tagScore judges the tag whose text (after "<") starts s.
func tagScore(s string) int {
	if s == "" {
		return scoreNone
	}
	if s[0] == '/' {
		s = s[1:]
	}
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z') {
		return scoreNone
	}
	end := 0
	for end < len(s) && (isAlnum(s[end]) || s[end] == ':' || s[end] == '-' || s[end] == '_') {
		end++
	}
	name := s[:end]
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[i+1:] // svg:script, html:iframe
	}
	rest := s[end:]
	closed := false
	attrs, closedAt := parseAttrs(rest)
	if closedAt >= 0 {
		closed = true
	}
	switch {
	case name == "script":
		if closed || attrs["src"] != "" || attrs["href"] != "" || attrs["xlink:href"] != "" || attrs["x:href"] != "" {
			return scoreAttack
		}
	case loadingElements[name]:
		if closed || len(attrs) > 0 {
			return scoreAttack
		}
	case name == "meta":
		if strings.Contains(attrs["http-equiv"], "refresh") || strings.Contains(attrs["content"], "url=") ||
			strings.Contains(attrs["content"], "utf-7") || strings.Contains(attrs["charset"], "utf-7") {
			// A refresh to a script URL, or a page switched to UTF-7,
			// where "+ADw-script+AD4-" is a script tag.
			return scoreAttack
		}
	case name == "link":
		if rel := attrs["rel"]; strings.Contains(rel, "import") || strings.Contains(rel, "stylesheet") && schemeRuns(attrs["href"]) {
			return scoreAttack
		}
	case name == "style":
		if closed && (strings.Contains(rest, "@import") || strings.Contains(rest, "expression(") || strings.Contains(rest, "javascript:") || strings.Contains(rest, "url(") || strings.Contains(rest, "behavior")) {
			return scoreAttack
		}
	case name == "xml":
		if attrs["src"] != "" {
			return scoreAttack
		}
	}
	for k, v := range attrs {
		switch {
		case len(k) > 4 && strings.HasPrefix(k, "on") && isLetters(k[2:]):
			return scoreAttack
		case k == "srcdoc" && strings.ContainsAny(v, "<&"):
			return scoreAttack
		case urlAttributes[k] && schemeRuns(v):
			return scoreAttack
		case k == "style" && (strings.Contains(v, "expression(") || strings.Contains(v, "javascript:") || strings.Contains(v, "-moz-binding") || strings.Contains(v, "behavior")):
			return scoreAttack
		case k == "attributename" && (strings.Contains(v, "href") || strings.HasPrefix(v, "on")):
			// SVG <animate>/<set> rewriting a link or a handler.
			return scoreAttack
		case k == "datasrc" || k == "datafld" || k == "dataformatas":
			// Internet Explorer's data binding renders data as HTML.
			return scoreAttack
		case k == "style" && cssOverlay(v):
			return scoreAttack
		}
	}
	if !closed && truncatedScriptURL(rest) {
		return scoreAttack
	}
	if knownTag[name] || closed {
		return scoreWeak
	}
	return scoreNone
}

// truncatedScriptURL reports a tag cut off inside the value of a URL
// attribute (a Referer, a log line or a field cut at its length limit)
// where what is left of the value begins a script URL: at least
// "javas" or "vbscr", or fewer letters hidden behind character
// references ("&#106;a"), which no link writes for the letters of its
// scheme but to hide "javascript:". An e-mail address hidden the same
// way ("&#109;&#97;…", mailto:) begins no script URL.
func truncatedScriptURL(rest string) bool {
	eq := strings.LastIndexByte(rest, '=')
	if eq < 0 {
		return false
	}
	name := strings.TrimRight(rest[:eq], " \t\n\r\f")
	if i := strings.LastIndexAny(name, " \t\n\r\f/\"'"); i >= 0 {
		name = name[i+1:]
	}
	if !urlAttributes[name] {
		return false
	}
	raw := strings.TrimLeft(rest[eq+1:], " \t\n\r\f")
	if raw != "" && (raw[0] == '"' || raw[0] == '\'' || raw[0] == '`') {
		if strings.IndexByte(raw[1:], raw[0]) >= 0 {
			return false // the value ends: not cut off
		}
		raw = raw[1:]
	} else if strings.ContainsAny(raw, " \t\n\r\f>") {
		return false
	}
	// A reference cut off at the end ("&col", "&#x6") says nothing yet.
	if i := strings.LastIndexByte(raw, '&'); i >= 0 && strings.IndexByte(raw[i:], ';') < 0 {
		raw = raw[:i]
	}
	var b strings.Builder
	for _, r := range html.UnescapeString(raw) {
		if r > ' ' && r != 0x7f && b.Len() < 16 {
			b.WriteRune(r | 0x20)
		}
	}
	u := b.String()
	if u == "" {
		return false
	}
	for _, scheme := range []string{"javascript:", "vbscript:"} {
		if strings.HasPrefix(scheme, u) && (len(u) >= 5 || strings.HasPrefix(raw, "&#") || strings.Contains(raw, "&#")) {
			return true
		}
	}
	return false
}

// obfuscatedMember reports a member of the global object whose name is
// hidden in the brackets of a computed access: JavaScript escapes of
// its letters ("self['\\x61\\x6c…", "frames['\\145…"), string literals
// joined by "+" ("top['al'+'ert']") or comments around a string
// ("window[/*x*/'pro"). No program writes a property's name that way
// but to hide it; read on the value as given, so that a value cut off
// before the call still shows it.
func obfuscatedMember(lower string) bool {
	for _, g := range jsGlobals {
		for i := range indexes(lower, g+"[") {
			off := i + len(g) + 1
			if !nameAt(lower, i, off-1, ".") {
				continue
			}
			inner := lower[off:min(len(lower), off+64)]
			if j := strings.IndexByte(inner, ']'); j >= 0 {
				inner = inner[:j]
			}
			if strings.Contains(inner, "/*") {
				return true
			}
			if inner == "" || inner[0] != '\'' && inner[0] != '"' && inner[0] != '`' {
				continue
			}
			if strings.Contains(inner, "\\x") || strings.Contains(inner, "\\u") ||
				strings.Contains(inner, "'+'") || strings.Contains(inner, "\"+\"") || strings.Contains(inner, "' + '") {
				return true
			}
			for k := 0; k+1 < len(inner); k++ {
				if inner[k] == '\\' && inner[k+1] >= '0' && inner[k+1] <= '7' {
					return true // an octal escape
				}
			}
		}
	}
	return false
}

// literalConstructor reports the constructor reached from a literal
// ("\"\".constructor", "[].filter.constructor",
// "'a'.constructor.prototype"): Function, or a prototype to overwrite, got without naming
// either, what script injections do and programs have no use for.
func literalConstructor(lower string) bool {
	for i := range indexes(lower, ".constructor") {
		j := i
		// Back over a chain of names: "[].filter.constructor".
		for j > 0 {
			k := j
			for k > 0 && identByte(lower[k-1]) {
				k--
			}
			if k > 0 && k < j && lower[k-1] == '.' {
				j = k - 1
				continue
			}
			break
		}
		if j < 2 {
			continue
		}
		switch lower[j-2 : j] {
		case "''", "\"\"", "[]", "{}", "``":
			return true
		}
		if q := lower[j-1]; q == '\'' || q == '"' || q == '`' {
			// A string literal: "'a'.constructor".
			if k := strings.LastIndexByte(lower[:j-1], q); k >= 0 && j-1-k <= 16 && !strings.ContainsAny(lower[k+1:j-1], " \t\n") {
				return true
			}
		}
	}
	return false
}

// cssOverlay reports inline CSS that lays an element over the page or
// breaks out of its declaration: a fixed position (clickjacking and
// phishing overlays) or a url( that closes itself early.
func cssOverlay(v string) bool {
	c := strings.Join(strings.Fields(v), "")
	if strings.Contains(c, "position:fixed") || strings.Contains(c, "binding:") || strings.ContainsAny(c, "{}") {
		return true
	}
	if i := strings.Index(c, "url("); i >= 0 {
		arg := c[i+4:]
		if j := strings.IndexByte(arg, ')'); j >= 0 {
			arg = arg[:j]
		}
		return strings.ContainsAny(arg, ";{}") || strings.Contains(arg, "/*")
	}
	return false
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= 'a' && s[i] <= 'z') {
			return false
		}
	}
	return s != ""
}

// knownTag holds common HTML element names: markup, not prose with "<".
var knownTag = map[string]bool{
	"a": true, "b": true, "i": true, "u": true, "p": true, "br": true, "hr": true, "div": true, "span": true,
	"img": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "ul": true, "ol": true,
	"li": true, "table": true, "tr": true, "td": true, "th": true, "em": true, "strong": true, "font": true,
	"body": true, "html": true, "head": true, "title": true, "input": true, "form": true, "svg": true,
	"math": true, "video": true, "audio": true, "source": true, "details": true, "select": true, "textarea": true,
	"button": true, "marquee": true, "style": true, "script": true, "iframe": true, "object": true, "embed": true,
	"meta": true, "link": true, "base": true, "pre": true, "code": true, "blockquote": true, "section": true,
	"article": true, "nav": true, "header": true, "footer": true, "label": true, "option": true, "template": true,
	"animate": true, "set": true, "image": true, "frameset": true, "frame": true, "applet": true, "keygen": true,
}

// parseAttrs reads attributes the way a browser's tokenizer does ("/" and
// white space separate them, values quoted or not) up to the tag's ">".
// It returns the attributes (lower-case names, values with entities
// decoded) and the offset of ">", or -1 when the tag is not closed.
func parseAttrs(s string) (map[string]string, int) {
	attrs := map[string]string{}
	i := 0
	for i < len(s) && len(attrs) < 64 {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '/') {
			i++
		}
		if i >= len(s) {
			return attrs, -1
		}
		if s[i] == '>' {
			return attrs, i
		}
		if s[i] == '<' {
			return attrs, -1
		}
		start := i
		for i < len(s) && !strings.ContainsRune(" \t\n\r\f/>=", rune(s[i])) {
			i++
		}
		name := s[start:i]
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f') {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			attrs[name] = ""
			continue
		}
		i++
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f') {
			i++
		}
		var val string
		if i < len(s) && (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
			q := s[i]
			end := strings.IndexByte(s[i+1:], q)
			if end < 0 {
				val = s[i+1:]
				i = len(s)
			} else {
				val = s[i+1 : i+1+end]
				i += end + 2
			}
		} else {
			start := i
			for i < len(s) && !strings.ContainsRune(" \t\n\r\f>", rune(s[i])) {
				i++
			}
			val = s[start:i]
		}
		attrs[name] = html.UnescapeString(val)
	}
	return attrs, -1
}

// schemeRuns reports whether URL v runs script when followed: a
// javascript:, vbscript: or livescript: URL, or a data: URL of HTML or
// SVG. Browsers ignore white space and control characters inside the
// scheme.
func schemeRuns(v string) bool {
	var b strings.Builder
	for i := 0; i < len(v) && b.Len() < 32; i++ {
		c := v[i]
		if c <= ' ' || c == 0x7f {
			continue
		}
		b.WriteByte(c | 0x20)
	}
	u := b.String()
	for _, p := range []string{"javascript:", "vbscript:", "livescript:", "mocha:", "data:text/html", "data:image/svg", "data:application/xhtml", "data:text/xml", "data:application/x-javascript", "data:text/javascript"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

// scriptURL reports whether the value is itself a script URL that does
// something: "javascript:" followed by code that calls, assigns or
// evaluates, rather than by words.
func scriptURL(lower string) bool {
	t := strings.TrimLeft(lower, " \t\n\r\f\v\x00\"'")
	if !schemeRuns(t) {
		return false
	}
	i := strings.IndexByte(t, ':')
	rest := t[i+1:]
	if strings.HasPrefix(t, "data:") {
		return true
	}
	return strings.ContainsAny(rest, "(`=") || jsSinkScore(rest) == scoreAttack
}

// jsSinks are the names whose call, or whose handing over as a value, is
// what an XSS payload is for.
var jsSinks = []string{
	"alert", "prompt", "confirm", "eval", "function", "settimeout", "setinterval", "execscript",
	"msgbox", "import", "fetch", "open", "print", "write", "writeln", "atob", "fromcharcode",
	"constructor", "innerhtml", "outerhtml", "insertadjacenthtml", "srcdoc", "createelement",
	"appendchild", "postmessage", "xmlhttprequest", "sendbeacon", "websocket", "showmodaldialog",
	"navigate", "assign", "replace",
}

// jsSinkScore judges folded JavaScript: scoreAttack when it calls a sink
// ("alert(1)", "alert`1`", "eval.call(…)", "x.constructor.constructor(…)"),
// hands one over ("onerror=alert", "[1].map(alert)", "throw onerror=…")
// or touches document.cookie, document.domain or the location.
func jsSinkScore(js string) int {
	if strings.Contains(js, "document.cookie") || strings.Contains(js, "document.domain") ||
		strings.Contains(js, "document.location") || strings.Contains(js, "window.location") ||
		strings.Contains(js, "location.href=") || strings.Contains(js, "location.hash") ||
		strings.Contains(js, "localstorage.") || strings.Contains(js, "document.write") || assignsLocation(js) {
		if strings.ContainsAny(js, "(=`") {
			return scoreAttack
		}
	}
	if globalComputedCall(js) {
		return scoreAttack
	}
	for _, name := range jsSinks {
		for i := range indexes(js, name) {
			j := i + len(name)
			if !nameAt(js, i, j, "-") {
				continue
			}
			for j < len(js) && (js[j] == ' ' || js[j] == '\t' || js[j] == '\n' || js[j] == '\r' || js[j] == ')') {
				j++
			}
			switch {
			case j < len(js) && (js[j] == '(' || js[j] == '`'):
				if weakSink(name, js, i, j) {
					continue
				}
				return scoreAttack
			case strings.HasPrefix(js[j:], ".call") || strings.HasPrefix(js[j:], ".apply") || strings.HasPrefix(js[j:], ".bind"):
				return scoreAttack
			case name == "constructor" && strings.HasPrefix(js[j:], ".constructor"):
				return scoreAttack
			case (name == "alert" || name == "prompt" || name == "confirm" || name == "eval") && handedOver(js, i, j):
				return scoreAttack
			}
		}
	}
	return scoreNone
}

// jsGlobals are the names of the global object and its aliases.
var jsGlobals = []string{"window", "self", "top", "parent", "frames", "content", "globalthis", "this", "document"}

// globalComputedCall reports a call of a global's property whose name is
// computed ("content[y](1)", "top[name](…)"): how obfuscated script calls
// a sink without naming it. A call through a literal name has been
// folded to a plain access by jsFold and is judged by its name.
func globalComputedCall(js string) bool {
	for _, g := range jsGlobals {
		for i := range indexes(js, g+"[") {
			off := i + len(g)
			if !nameAt(js, i, off, ".") {
				continue
			}
			end := strings.IndexByte(js[off:], ']')
			if end < 0 || end > 64 {
				continue
			}
			inner := js[off+1 : off+end]
			if inner == "" || isNumber(inner) {
				continue // an index: this[0](…)
			}
			rest := strings.TrimLeft(js[off+end+1:], " \t")
			if strings.HasPrefix(rest, "(") || strings.HasPrefix(rest, "`") {
				return true
			}
		}
	}
	return false
}

// assignsLocation reports "location=…" where location is the global
// (not "schemaLocation=" or "location==").
func assignsLocation(js string) bool {
	for i := range indexes(js, "location") {
		if !nameAt(js, i, i+8, "-:") {
			continue
		}
		rest := strings.TrimLeft(js[i+8:], " \t")
		if strings.HasPrefix(rest, "=") && !strings.HasPrefix(rest, "==") {
			return true
		}
	}
	return false
}

// weakSink reports a call that is ordinary in JavaScript and HTML-free
// text unless something marks it as script: "function (x) {…}" defines
// rather than calls; open(), print(), write(), replace(), assign(),
// fetch(), import() and the like need an object or a URL, and prose uses
// the words with parentheses.
func weakSink(name, js string, i, j int) bool {
	switch name {
	case "function":
		// A definition, "function (a) {", not "Function('code')()".
		return !strings.HasPrefix(js[j:], "('") && !strings.HasPrefix(js[j:], "(\"") && !strings.HasPrefix(js[j:], "(`")
	case "open", "print", "write", "writeln", "replace", "assign", "navigate", "import", "fetch",
		"atob", "fromcharcode", "createelement", "appendchild", "postmessage", "sendbeacon", "websocket", "xmlhttprequest":
		// Only as a method of the window or document, or with a URL or
		// markup argument.
		prefix := js[max(0, i-12):i]
		if strings.HasSuffix(prefix, "document.") || strings.HasSuffix(prefix, "window.") || strings.HasSuffix(prefix, "top.") || strings.HasSuffix(prefix, "self.") || strings.HasSuffix(prefix, "parent.") {
			return false
		}
		arg := js[j+1 : min(len(js), j+24)]
		return !(strings.Contains(arg, "//") || strings.Contains(arg, "<") || strings.Contains(arg, "javascript:") || strings.Contains(arg, "data:"))
	case "constructor":
		return !strings.HasPrefix(js[j:], "('") && !strings.HasPrefix(js[j:], "(\"") && !strings.HasPrefix(js[j:], "(`")
	}
	return false
}

// handedOver reports whether the sink name at js[i:j] is passed as a
// value rather than named in text: after "=", "(" or "," and followed by
// a delimiter.
func handedOver(js string, i, j int) bool {
	k := i - 1
	for k >= 0 && (js[k] == ' ' || js[k] == '\t') {
		k--
	}
	if k < 0 || strings.IndexByte("=(,[:", js[k]) < 0 {
		return false
	}
	return j >= len(js) || strings.IndexByte(";,)]}\"' ", js[j]) >= 0
}

// handlerText reports an event handler attribute written into text, as
// an injection that breaks out of an attribute writes it
// ("\" onmouseover=alert(1) x=\""), also when tags are strewn inside the
// words to split them ("o<x>nfocus=confirm<x>(1)"): "on" and letters,
// "=", then a value that calls a sink.
func handlerText(lower string) bool {
	s := lower
	if strings.IndexByte(s, '<') >= 0 {
		s = stripTags(s)
	}
	for i := range indexes(s, "on") {
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '_') {
			continue
		}
		j := i + 2
		for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
			j++
		}
		if j-i < 5 {
			continue
		}
		for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '/') {
			j++
		}
		if j >= len(s) || s[j] != '=' {
			continue
		}
		val := strings.TrimLeft(s[j+1:], " \t'\"")
		if jsSinkScore(jsFold(val)) == scoreAttack || handedOverAt(val) {
			return true
		}
	}
	return false
}

// handedOverAt reports a sink handed over as a handler's whole value
// ("onerror=alert").
func handedOverAt(val string) bool {
	for _, n := range []string{"alert", "prompt", "confirm", "eval"} {
		if strings.HasPrefix(val, n) && (len(val) == len(n) || !identByte(val[len(n)])) {
			return true
		}
	}
	return false
}

// stripTags removes everything between "<" and the next ">".
func stripTags(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return b.String()
		}
		s = s[i+j+1:]
	}
}

// templateScore reports a template expression that reaches code: Angular
// and Vue interpolations ("{{…}}") and template literals ("${…}") that
// name a constructor, $eval or $on, or call a sink.
func templateScore(lower string) bool {
	for _, open := range []string{"{{", "${"} {
		i := strings.Index(lower, open)
		if i < 0 {
			continue
		}
		body := lower[i+2:]
		if strings.Contains(body, "constructor") || strings.Contains(body, "$eval") || strings.Contains(body, "$on") || strings.Contains(body, "__proto__") {
			return true
		}
		if jsSinkScore(body) == scoreAttack {
			return true
		}
	}
	return false
}
