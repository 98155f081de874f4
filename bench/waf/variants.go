package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"mime/multipart"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// The variant generator: what attack tools do to a payload a WAF already
// blocks (case changes, encodings, comments and whitespace in SQL, other
// command separators, the same value carried in another place of the
// request), and benign requests of the kinds that trip WAFs (rich text,
// code, prose with SQL and shell words, non-ASCII text, JSON APIs). It
// takes the payloads from a corpus of the waf-dev format (the "group" of
// the payload-list categories is the payload as the list gives it) and
// writes a corpus of the same format, so the figures come from the same
// harness and, with the default mode, the real gateway. Nothing random:
// every choice is a hash of the payload, so a run is reproduced by running
// it again.

// A variant is one generated request's provenance.
type variant struct {
	family   string // sqli, xss, traversal, cmdexe, log4shell, other, benign
	mutation string
	carrier  string
}

// familyOfCategory maps the payload-list categories to the families
// whose mutations keep the payload working.
func familyOfCategory(cat string) string {
	switch cat {
	case "libinj/sqli", "mgm/sqli":
		return "sqli"
	case "libinj/xss", "mgm/xss":
		return "xss"
	case "mgm/traversal":
		return "traversal"
	case "mgm/cmdexe", "mgm/shellshock":
		return "cmdexe"
	case "mgm/log4shell":
		return "log4shell"
	case "mgm/xxe":
		return "other"
	case "libinj/false-positives", "mgm/false-positives":
		return "benign"
	}
	return ""
}

// mutations lists, per family, the changes that keep a payload working
// where it lands. "none" is the payload as the list gives it (to separate
// what the carrier does from what the mutation does).
var mutations = map[string][]string{
	"sqli":      {"none", "case", "sql-comment-space", "sql-whitespace", "sql-versioned-comment", "url", "double-url", "unicode-url"},
	"xss":       {"none", "case", "js-escape", "html-entity-attr", "url", "double-url", "unicode-url", "tab-newline-in-tag"},
	"traversal": {"none", "url", "double-url", "unicode-url", "overlong-utf8", "backslash"},
	"cmdexe":    {"none", "separator-newline", "separator-pipe", "separator-and", "separator-subst", "ifs-space", "quote-insertion", "url", "double-url"},
	"log4shell": {"none", "lookup-case", "url", "double-url"},
	"other":     {"none", "url", "double-url"},
	"benign":    {"none", "url"},
}

// carriers are the places of a request a value reaches an application
// from.
var carriers = []string{"query", "form", "json", "json-nested", "multipart", "cookie", "header", "path"}

// documentCarriers are where applications take documents (rich text,
// code, JSON): form fields, JSON and multipart bodies, and a query when
// the document is short. No application takes a multi-line document in a
// path, a cookie or a custom header.
var documentCarriers = []string{"form", "json", "json-nested", "multipart", "query"}

// genVariants returns, for each distinct payload of the payload-list
// categories in reqs, up to perPayload variants: a mutation of its family
// in a carrier, both walked from a hash of the payload so that each
// payload is tried with different changes in different places; then the
// generated benign requests (see benignTexts), each in two carriers.
func genVariants(reqs []request, perPayload int) []request {
	var out []request
	seen := map[string]bool{}
	for _, c := range reqs {
		fam := familyOfCategory(c.Category)
		if fam == "" || seen[c.Category+"\x00"+c.Group] {
			continue
		}
		seen[c.Category+"\x00"+c.Group] = true
		// libinjection's groups are "category\x00payload".
		payload := c.Group
		if _, p, ok := strings.Cut(payload, "\x00"); ok {
			payload = p
		}
		h := hash64(payload)
		muts := mutations[fam]
		for k := 0; k < perPayload; k++ {
			mut := muts[int((h>>8+uint64(k))%uint64(len(muts)))]
			car := carriers[int((h>>24+uint64(k)*3)%uint64(len(carriers)))]
			m, ok := mutate(fam, mut, payload, h+uint64(k))
			if !ok {
				continue
			}
			r, ok := carry(c, m, car)
			if !ok {
				continue
			}
			r.ID = fmt.Sprintf("%016x-%d", h, k)
			r.Group = c.Group
			r.Category = "gen/" + fam
			r.Attack = c.Attack
			r.Mutation, r.Carrier = mut, car
			out = append(out, r)
		}
	}
	// One more variant of each payload with an evasion of those below,
	// in categories of their own ("gen/evasion-sqli"), so that the
	// variants above stay the same set from round to round.
	seen = map[string]bool{}
	for _, c := range reqs {
		fam := familyOfCategory(c.Category)
		ev := evasions[fam]
		if len(ev) == 0 || seen[c.Category+"\x00"+c.Group] {
			continue
		}
		seen[c.Category+"\x00"+c.Group] = true
		payload := c.Group
		if _, p, ok := strings.Cut(payload, "\x00"); ok {
			payload = p
		}
		h := hash64(payload)
		mut := ev[int((h>>40)%uint64(len(ev)))]
		car := carriers[int((h>>48)%uint64(len(carriers)))]
		r, car, ok := evade(c, mut, payload, car)
		if !ok {
			continue
		}
		r.ID = fmt.Sprintf("%016x-e", h)
		r.Group = c.Group
		r.Category = "gen/evasion-" + fam
		r.Attack = c.Attack
		r.Mutation, r.Carrier = mut, car
		out = append(out, r)
	}
	for i, t := range benignTexts() {
		h := hash64(t.text)
		cars := carriers
		if t.document {
			cars = documentCarriers
		}
		for k, car := range []string{cars[h%uint64(len(cars))], cars[(h>>16)%uint64(len(cars))]} {
			tmpl := request{Method: "GET", Headers: browserHeaders()}
			r, ok := carry(tmpl, t.text, car)
			if !ok {
				continue
			}
			if t.json && (car == "json" || car == "json-nested") {
				// A JSON API's own document, not a string in one.
				r.Body = t.text
				r.BodyB64 = base64.StdEncoding.EncodeToString([]byte(r.Body))
			}
			r.ID = fmt.Sprintf("benign-%d-%d", i, k)
			r.Group = fmt.Sprintf("benign-%d", i)
			r.Category = "gen/benign-" + t.kind
			r.Mutation, r.Carrier = "none", car
			out = append(out, r)
		}
	}
	return out
}

// writeCorpus writes reqs as JSON lines, the corpus format.
func writeCorpus(name string, reqs []request) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func browserHeaders() []header {
	return []header{
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
		{"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		{"Accept-Language", "en-US,en;q=0.5"},
	}
}

// mutate applies mutation mut of family fam to p, as the application
// receives it after the carrier's own decoding. It reports false when the
// mutation does not apply to p (nothing to change).
func mutate(fam, mut, p string, h uint64) (string, bool) {
	switch mut {
	case "none":
		return p, true
	case "case":
		if fam == "xss" {
			return changed(p, htmlNameCase(p, h))
		}
		return changed(p, outsideQuotes(p, func(s string) string { return altCase(s, h) }))
	case "sql-comment-space":
		return changed(p, outsideQuotes(p, func(s string) string { return strings.ReplaceAll(s, " ", "/**/") }))
	case "sql-whitespace":
		ws := []string{"\t", "\n", "\r\n", "\f", "  \t"}
		return changed(p, outsideQuotes(p, func(s string) string { return strings.ReplaceAll(s, " ", ws[h%uint64(len(ws))]) }))
	case "sql-versioned-comment":
		// MySQL runs what is in "/*!…*/": the first keyword wrapped.
		return changed(p, wrapFirstWord(p, []string{"union", "select", "or", "and", "sleep", "benchmark", "having", "order"}, "/*!", "*/"))
	case "url":
		return url.PathEscape(p), true
	case "double-url":
		return strings.ReplaceAll(url.PathEscape(p), "%", "%25"), true
	case "unicode-url":
		// IIS's %uXXXX for the syntax characters.
		var b strings.Builder
		for _, r := range p {
			if strings.ContainsRune("<>'\"()=;/ .", r) {
				fmt.Fprintf(&b, "%%u%04X", r)
			} else {
				b.WriteRune(r)
			}
		}
		return changed(p, b.String())
	case "overlong-utf8":
		return changed(p, strings.NewReplacer("../", "%c0%ae%c0%ae%c0%af", "..\\", "%c0%ae%c0%ae%c1%9c").Replace(p))
	case "backslash":
		return changed(p, strings.ReplaceAll(p, "/", "\\"))
	case "js-escape":
		// A JavaScript identifier may be written with \u escapes:
		// \u0061lert(1) calls alert.
		for _, sink := range []string{"alert", "prompt", "confirm", "eval"} {
			if i := strings.Index(p, sink+"("); i >= 0 {
				return p[:i] + fmt.Sprintf("\\u%04x", sink[0]) + p[i+1:], true
			}
		}
		return p, false
	case "html-entity-attr":
		// Attribute values are entity-decoded before they run.
		for _, scheme := range []string{"javascript:", "alert(", "prompt(", "confirm("} {
			if i := strings.Index(strings.ToLower(p), scheme); i >= 0 && strings.Contains(p[:i], "=") {
				var b strings.Builder
				for j, r := range p[i : i+len(scheme)] {
					if j%2 == 0 {
						fmt.Fprintf(&b, "&#x%x;", r)
					} else {
						fmt.Fprintf(&b, "&#%d;", r)
					}
				}
				return p[:i] + b.String() + p[i+len(scheme):], true
			}
		}
		return p, false
	case "tab-newline-in-tag":
		if i := strings.Index(p, "<"); i >= 0 {
			if j := strings.IndexByte(p[i:], ' '); j > 0 {
				return p[:i+j] + "\n\t" + p[i+j+1:], true
			}
		}
		return p, false
	case "separator-newline", "separator-pipe", "separator-and", "separator-subst":
		return separators(p, mut)
	case "ifs-space":
		return changed(p, outsideQuotes(p, func(s string) string { return strings.ReplaceAll(s, " ", "${IFS}") }))
	case "quote-insertion":
		// sh joins w''hoami into whoami.
		for _, cmd := range []string{"cat", "id", "whoami", "uname", "ls", "ping", "echo", "wget", "curl", "nslookup", "sleep", "bash", "sh", "nc", "type", "dir", "ifconfig", "netstat", "passwd"} {
			if i := wordIndex(p, cmd); i >= 0 && len(cmd) > 1 {
				return p[:i+1] + "''" + p[i+1:], true
			}
		}
		return p, false
	case "lookup-case":
		return changed(p, strings.Replace(p, "jndi", "${lower:J}ndi", 1))
	}
	return p, false
}

func changed(p, q string) (string, bool) { return q, q != p }

// evasions lists, per family, encodings and placements that servers,
// frameworks and parsers undo before the application reads the value:
// fullwidth forms NFKC folds to ASCII ("．．／", "％２ｅ"), IIS's "%u"
// mixed with overlong UTF-8, a matrix parameter of a path segment
// ("/files/a;x=../../etc/passwd"), JSON's "\u" escapes in keys and
// values, and the value in Base64 in a JSON field.
var evasions = map[string][]string{
	"sqli":      {"json-unicode-escape", "json-base64", "matrix"},
	"xss":       {"json-unicode-escape", "json-base64", "matrix"},
	"traversal": {"fullwidth", "fullwidth-percent", "unicode-overlong-mixed", "matrix", "json-unicode-escape"},
	"cmdexe":    {"json-unicode-escape", "json-base64", "matrix"},
}

// spellings are the evasions that respell a payload's separators and
// dots, carried as the payload would be.
var spellings = map[string]*strings.Replacer{
	"fullwidth":              strings.NewReplacer(".", "\uff0e", "/", "\uff0f", "\\", "\uff3c"),
	"fullwidth-percent":      strings.NewReplacer("..", "\uff05\uff12\uff45\uff05\uff12\uff45", "/", "\uff05\uff12\uff46"),
	"unicode-overlong-mixed": strings.NewReplacer("../", "%u002e%c0%ae/", "..\\", "%c0%ae%u002e\\"),
}

// evade applies evasion mut to p and carries it: in car, or in the
// carrier the evasion needs (JSON, a path's matrix parameter), which it
// returns.
func evade(c request, mut, p, car string) (request, string, bool) {
	if rep, ok := spellings[mut]; ok {
		q, ok := changed(p, rep.Replace(p))
		if !ok {
			return request{}, car, false
		}
		r, ok := carry(c, q, car)
		return r, car, ok
	}
	switch mut {
	case "matrix":
		r := request{Method: "GET", Headers: withoutBodyHeaders(c.Headers), Target: "/files/a;x=" + formEscape(p)}
		return r, "path-matrix", true
	case "json-base64":
		r, ok := carry(c, base64.StdEncoding.EncodeToString([]byte(p)), "json")
		return r, "json", ok
	case "json-unicode-escape":
		// Every character that is no letter or digit, and the key's
		// first letter, as \uXXXX.
		var b strings.Builder
		b.WriteString(`{"\u0070":"`)
		for _, r := range p {
			switch {
			case r < 0x80 && isWordByte(byte(r)):
				b.WriteRune(r)
			case r > 0xffff:
				b.WriteString(strings.Trim(strconv.QuoteToASCII(string(r)), `"`))
			default:
				fmt.Fprintf(&b, "\\u%04x", r)
			}
		}
		b.WriteString(`"}`)
		r := request{Method: "POST", Target: "/api/v1/items", Headers: append(withoutBodyHeaders(c.Headers), header{"Content-Type", "application/json"}), Body: b.String()}
		r.BodyB64 = base64.StdEncoding.EncodeToString([]byte(r.Body))
		return r, "json", true
	}
	return request{}, car, false
}

// outsideQuotes applies f to the parts of p outside '…' and "…" strings.
func outsideQuotes(p string, f func(string) string) string {
	var b strings.Builder
	start, quote := 0, byte(0)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case quote == 0 && (c == '\'' || c == '"'):
			b.WriteString(f(p[start:i]))
			start, quote = i, c
		case quote != 0 && c == quote:
			b.WriteString(p[start : i+1])
			start, quote = i+1, 0
		}
	}
	if quote != 0 {
		b.WriteString(p[start:])
	} else {
		b.WriteString(f(p[start:]))
	}
	return b.String()
}

// altCase changes the case of every other letter, from a hash.
func altCase(s string, h uint64) string {
	rs := []rune(s)
	k := int(h & 1)
	for i, r := range rs {
		if r < 0x80 && unicode.IsLetter(r) {
			if k%2 == 0 {
				rs[i] = unicode.ToUpper(r)
			} else {
				rs[i] = unicode.ToLower(r)
			}
			k++
		}
	}
	return string(rs)
}

// htmlNameCase changes the case of tag and attribute names only: HTML
// reads them in any case, JavaScript's names it does not.
func htmlNameCase(p string, h uint64) string {
	var b strings.Builder
	inTag, inName := false, false
	var quote byte
	k := int(h & 1)
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '<':
			inTag, inName = true, true
		case inTag && c == '>':
			inTag, inName = false, false
		case inTag && (c == '"' || c == '\''):
			quote = c
		case inTag && (c == ' ' || c == '\t' || c == '/'):
			inName = true
		case inTag && c == '=':
			inName = false
		case inName && c < 0x80 && unicode.IsLetter(rune(c)):
			if k%2 == 0 {
				c = byte(unicode.ToUpper(rune(c)))
			} else {
				c = byte(unicode.ToLower(rune(c)))
			}
			k++
		}
		b.WriteByte(c)
	}
	return b.String()
}

// wrapFirstWord wraps the first of words found in p (as a word, outside
// quotes, any case) in open…close.
func wrapFirstWord(p string, words []string, open, close string) string {
	l := strings.ToLower(p)
	best := -1
	var bw string
	for _, w := range words {
		if i := wordIndex(l, w); i >= 0 && (best < 0 || i < best) {
			best, bw = i, w
		}
	}
	if best < 0 {
		return p
	}
	return p[:best] + open + p[best:best+len(bw)] + close + p[best+len(bw):]
}

// wordIndex returns where w stands in s as a whole word, or -1.
func wordIndex(s, w string) int {
	for off := 0; ; {
		i := strings.Index(s[off:], w)
		if i < 0 {
			return -1
		}
		i += off
		before := i == 0 || !isWordByte(s[i-1])
		after := i+len(w) == len(s) || !isWordByte(s[i+len(w)])
		if before && after {
			return i
		}
		off = i + 1
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// separators replaces the first command separator (";", "|", "&&", "||",
// a line break) with another one that also starts a command.
func separators(p, mut string) (string, bool) {
	for _, sep := range []string{"&&", "||", ";", "|", "\n", "%0a", "%0A"} {
		i := strings.Index(p, sep)
		if i < 0 {
			continue
		}
		rest := p[i+len(sep):]
		switch mut {
		case "separator-newline":
			return changed(p, p[:i]+"\n"+rest)
		case "separator-pipe":
			return changed(p, p[:i]+"|"+rest)
		case "separator-and":
			return changed(p, p[:i]+"&&"+rest)
		case "separator-subst":
			// The rest of the line as a command substitution.
			return changed(p, p[:i]+"$("+strings.TrimSpace(rest)+")")
		}
	}
	return p, false
}

// carry puts v where carrier car reaches an application, as v, into a
// request built from c's headers. v is the value the application reads.
func carry(c request, v string, car string) (request, bool) {
	r := request{Method: "GET", Headers: withoutBodyHeaders(c.Headers)}
	q := formEscape(v)
	switch car {
	case "query":
		r.Target = "/search?p=" + q
	case "form":
		r.Method, r.Target, r.Body = "POST", "/submit", "p="+q
		r.Headers = append(r.Headers, header{"Content-Type", "application/x-www-form-urlencoded"})
	case "json", "json-nested":
		var doc any = map[string]any{"p": v}
		if car == "json-nested" {
			doc = map[string]any{"data": map[string]any{"items": []any{map[string]any{"id": 7, "p": v}}}}
		}
		b, err := json.Marshal(doc)
		if err != nil {
			return r, false
		}
		r.Method, r.Target, r.Body = "POST", "/api/v1/items", string(b)
		r.Headers = append(r.Headers, header{"Content-Type", "application/json"})
	case "multipart":
		var b strings.Builder
		mw := multipart.NewWriter(&b)
		if err := mw.SetBoundary("----moatbench" + fmt.Sprintf("%08x", hash64(v)&0xffffffff)); err != nil {
			return r, false
		}
		if err := mw.WriteField("p", v); err != nil {
			return r, false
		}
		mw.Close()
		r.Method, r.Target, r.Body = "POST", "/upload", b.String()
		r.Headers = append(r.Headers, header{"Content-Type", mw.FormDataContentType()})
	case "cookie":
		// Cookie values are percent-decoded by the frameworks that read
		// them (PHP, Express's cookie parser, Rails), once, as a query's.
		r.Target = "/account"
		r.Headers = append(r.Headers, header{"Cookie", "session=8f14e45fceea167a; p=" + q})
	case "header":
		// A custom header read whole by the application; what is not
		// printable ASCII is percent-encoded, as a client must.
		r.Target = "/api/v1/items"
		hv := v
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			hv = url.QueryEscape(v)
		}
		r.Headers = append(r.Headers, header{"X-Search", hv})
	case "path":
		// A path parameter ("/files/{p}/view"), decoded once by the
		// router as a query value is; "/" in it stays a separator, as
		// a traversal needs.
		r.Target = "/files/" + q + "/view"
	default:
		return r, false
	}
	r.BodyB64 = base64.StdEncoding.EncodeToString([]byte(r.Body))
	return r, true
}

// formEscape escapes v for a query or a form, leaving percent escapes the
// payload already holds as they are (a payload list writes "%0a" meaning
// the byte, and a tool sends it so).
func formEscape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isWordByte(c) || strings.IndexByte("-._~/%", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func withoutBodyHeaders(hs []header) []header {
	var out []header
	for _, h := range hs {
		switch strings.ToLower(h.Name) {
		case "content-type", "cookie", "content-length":
			continue
		}
		out = append(out, h)
	}
	return out
}
