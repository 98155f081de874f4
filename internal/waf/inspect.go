package waf

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// maxDerived bounds the values the inspection pass adds to one request;
// past it the pass stops and rule 90004 refuses the request.
const maxDerived = 8192

// Transaction variables the inspection pass sets.
const (
	txIncomplete = "moat_inspect_incomplete" // "1" when maxDerived was reached
	txStart      = "moat_start"              // the thread's CPU clock when phase 2 began, for the budget (see budget.go)
)

// inspectAction is the moatInspect action (rule 90002), first in phase 2.
// It puts in front of the attack rules what they would otherwise not see
// or not see as the target will:
//
//   - JSON documents and query strings carried inside ARGS, taken apart
//     (see expandMap);
//   - the query parameters, and the path when it holds more than path
//     characters, of every header that carries a URL (Referer, Origin,
//     X-Forwarded-Host, X-Original-URL and the like), and the whole value
//     of custom X-* headers that hold syntax, as ARGS_PATH "referer.q",
//     "x-custom";
//   - path segments that hold more than path characters, and matrix
//     parameters (";name=value"), as ARGS_PATH "path" and "path.name";
//   - the normal form (see normalize) of every argument and cookie, where
//     it differs, as ARGS_PATH under the argument's own name and in
//     REQUEST_COOKIES under the cookie's.
//
// What is added is for matching only; the request is forwarded as it came.
type inspectAction struct{}

func newInspectAction() plugintypes.Action { return inspectAction{} }

func (inspectAction) Init(plugintypes.RuleMetadata, string) error { return nil }

func (inspectAction) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

func (inspectAction) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	v := tx.Variables()
	if argsBytes(v) >= budgetFloor {
		// The CPU clock is read only for requests big enough to spend
		// the budget: the rules are linear in what they read, and a
		// small request cannot (reading the clock is a system call).
		v.TX().Set(txStart, []string{strconv.FormatInt(int64(threadCPU()), 10)})
	}
	expandMap(v.ArgsGet())
	expandMap(v.ArgsPost())
	d := &derived{path: v.ArgsPath(), memo: memoOf(tx)}
	d.headers(v.RequestHeaders())
	d.uriPath(v.RequestURIRaw().Get())
	for _, m := range []collection.Map{v.ArgsGet(), v.ArgsPost(), v.ArgsPath()} {
		d.normalizeInto(m, d.path, false)
	}
	d.normalizeInto(v.RequestCookies(), v.RequestCookies(), true)
	if d.n > maxDerived {
		v.TX().Set(txIncomplete, []string{"1"})
	}
}

// derived adds values to ARGS_PATH, counting them.
type derived struct {
	path collection.Map
	n    int
	memo *txMemo // the transaction's, may be nil
}

// add adds value to m under a copy of key.
func (d *derived) add(m collection.Map, key, value string) {
	d.n++
	if d.n > maxDerived {
		return
	}
	// A fresh copy of the name: Coraza caches a value's transformations
	// under the address of its name's bytes and its position in the
	// collection, and positions change between rules (a map's order), so a
	// derived value named by the same string as its original could be
	// given the original's transformations, or the reverse.
	m.Add(strings.Clone(key), value)
}

// URL headers are the request headers whose values are URLs or hosts.
var urlHeaders = map[string]bool{
	"referer": true, "origin": true, "x-forwarded-host": true, "x-original-url": true,
	"x-rewrite-url": true, "x-forwarded-uri": true, "x-forwarded-prefix": true,
	"x-original-uri": true, "content-location": true, "x-host": true, "x-http-destinationurl": true,
	"destination": true,
}

// plainXHeaders are X-* headers whose values browsers and proxies set and
// that carry no text a user chose; they are left to the rules that
// already read them.
var plainXHeaders = map[string]bool{
	"x-forwarded-for": true, "x-forwarded-proto": true, "x-forwarded-port": true, "x-real-ip": true,
	"x-requested-with": true, "x-request-id": true, "x-correlation-id": true, "x-amzn-trace-id": true,
	"x-client-data": true, "x-csrf-token": true, "x-xsrf-token": true, "x-csrftoken": true,
}

// addressHeaders are the plain headers that hold client addresses, which
// a proxy writes as a list of addresses; applications log them and store
// them (a visitor's IP in a SQL insert), and a client may send any
// value. One that is no list of addresses was written by no proxy and is
// inspected as a custom header is.
var addressHeaders = map[string]bool{"x-forwarded-for": true, "x-real-ip": true}

// addressList reports whether v is a list of client addresses as proxies
// write them: IPv4 or IPv6 addresses, with a port or in brackets,
// "unknown", or RFC 7239's obfuscated identifiers ("_hidden"), separated
// by commas.
func addressList(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		a := strings.TrimSpace(part)
		switch {
		case a == "", strings.EqualFold(a, "unknown"):
			continue
		case a[0] == '_':
			for i := 1; i < len(a); i++ {
				if !isAlnum(a[i]) && a[i] != '.' && a[i] != '_' && a[i] != '-' {
					return false
				}
			}
			continue
		}
		// No zone ("fe80::1%eth0"): a zone may hold any text.
		if ip, err := netip.ParseAddr(a); err == nil && ip.Zone() == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(a); err == nil && ap.Addr().Zone() == "" {
			continue
		}
		return false
	}
	return true
}

// headers adds what URL headers and custom X-* headers carry.
func (d *derived) headers(h collection.Map) {
	for _, md := range h.FindAll() {
		name := strings.ToLower(md.Key())
		val := md.Value()
		if (urlHeaders[name] || strings.HasPrefix(name, "x-")) && fileRefScore(val) == scoreAttack {
			// A share or a wrapper, which no URL header or custom
			// header of a browser holds: read whole.
			d.add(d.path, name, val)
		}
		switch {
		case urlHeaders[name]:
			d.url(name, val)
		case strings.HasPrefix(name, "x-") && (!plainXHeaders[name] || addressHeaders[name] && !addressList(val)):
			switch {
			case looksURL(val):
				d.url(name, val)
			case hasSyntax(val) || hasDotSegment(val):
				d.add(d.path, name, val)
			default:
				// A token: inspected only if it decodes to something
				// (Base64 text, escapes): as an application that
				// unescapes it reads it, for the rules to decode
				// further as they decode arguments, and in its normal
				// form (which folds JavaScript, and may read a path's
				// "//" as a comment) and in each decoded layer, which
				// keeps what the normal form reads as comments.
				if n, ok, layers := d.memo.normalForms(val); ok {
					u := dropControls(percentDecodeAll(val))
					if u != val && (hasSyntax(u) || hasDotSegment(u)) {
						d.add(d.path, name, u)
					}
					n = dropControls(n)
					d.add(d.path, name, n)
					for _, l := range layers {
						if l != n && l != u {
							d.add(d.path, name, l)
						}
					}
				}
			}
		}
	}
}

// looksURL reports whether s is an absolute or scheme-relative URL or an
// absolute path.
func looksURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(s, "/")
}

// url adds a header's URL parts: each query parameter as "name.key", the
// path when it holds syntax as "name.path", a fragment as
// "name.fragment", and the host when it holds more than host characters
// as "name.host". A value that is no URL is added whole when it holds
// syntax.
func (d *derived) url(name, val string) {
	if cut := cutPartialEscape(val); cut != val {
		// A URL cut inside an escape: its last parameter is also
		// read without the half escape, which would otherwise join
		// the word before it ("onfocus%3").
		if _, q, ok := strings.Cut(cut, "?"); ok && !strings.Contains(q, "#") {
			if i := strings.LastIndexByte(q, '&'); i >= 0 {
				q = q[i+1:]
			}
			k, v, _ := strings.Cut(q, "=")
			d.add(d.path, name+"."+formDecode(k), formDecode(v))
		}
	}
	rest := val
	if i := strings.Index(rest, "://"); i >= 0 && i < 16 && urlScheme(rest[:i]) {
		rest = rest[i+3:]
		hostEnd := strings.IndexAny(rest, "/?#")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		if host := rest[:hostEnd]; hasSyntax(percentDecodeOnce(host)) {
			d.add(d.path, name+".host", percentDecodeOnce(host))
		}
		rest = rest[hostEnd:]
	} else if !strings.HasPrefix(rest, "/") {
		if hasSyntax(val) {
			d.add(d.path, name, val)
		}
		return
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		if frag := formDecode(rest[i+1:]); frag != "" {
			d.add(d.path, name+".fragment", frag)
		}
		rest = rest[:i]
	}
	path, query, _ := strings.Cut(rest, "?")
	if p := percentDecodeOnce(path); hasSyntax(p) {
		d.add(d.path, name+".path", p)
	}
	if query == "" {
		return
	}
	for pair := range strings.SplitSeq(query, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		d.add(d.path, name+"."+formDecode(k), formDecode(v))
	}
}

// urlScheme reports whether s is a URL scheme as RFC 3986 spells one: a
// letter, then letters, digits, "+", "-" or ".". What stands before "://"
// in "$(curl http://…)" is none, and the value is no URL.
func urlScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || i > 0 && (s[i] >= '0' && s[i] <= '9' || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
			return false
		}
	}
	return s != ""
}

// cutPartialEscape drops an escape cut off at the end of a URL ("…%3",
// "…%"), as a client that truncates a Referer to a length leaves it: the
// byte it began says nothing.
func cutPartialEscape(u string) string {
	switch n := len(u); {
	case n >= 1 && u[n-1] == '%':
		return u[:n-1]
	case n >= 2 && u[n-2] == '%':
		if _, ok := unhex(u[n-1]); ok {
			return u[:n-2]
		}
	}
	return u
}

// uriPath adds path segments that hold syntax and matrix parameters.
func (d *derived) uriPath(uri string) {
	path, _, _ := strings.Cut(uri, "?")
	if i := strings.Index(path, "://"); i >= 0 && i < 16 && !strings.HasPrefix(path, "/") {
		// An absolute-form request target: drop scheme and host.
		path = path[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j:]
		} else {
			path = ""
		}
	}
	if whole, ok := commentedPath(percentDecodeOnce(path)); ok {
		// SQL written across segments with comments for spaces
		// ("/item/1/**/union/**/select/**/…"), as a route with a
		// catch-all parameter hands it over: the path whole, the
		// comments read as the spaces they stand for.
		d.add(d.path, "path", whole)
	}
	if p := percentDecodeOnce(path); spansSegments(p) {
		// A quote, a substitution or a group opened in one segment and
		// closed in a later one ("/files/$(/usr/bin/id)/view",
		// "/x/1' / 2 like '0"): the segments say nothing alone; the
		// path is read whole, as a catch-all parameter hands it over.
		d.add(d.path, "path", p)
	}
	for rest := path; rest != ""; {
		seg, after, _ := strings.Cut(rest, "/")
		rest = after
		if seg == "" {
			continue
		}
		base, params, hasParams := strings.Cut(seg, ";")
		if hasParams {
			var k, v string
			for p := range strings.SplitSeq(params, ";") {
				k, v, _ = strings.Cut(p, "=")
				d.add(d.path, "path."+percentDecodeOnce(k), percentDecodeOnce(v))
			}
			switch v := percentDecodeOnce(v); {
			case rest == "":
			case k == "" && v == "":
				// The segment ends in a bare ";" and the path goes on
				// ("/files/x;/usr/bin/id"): no parameter, a separator,
				// read from it to the end as a catch-all route hands it
				// over.
				d.add(d.path, "path", percentDecodeOnce(";"+params+"/"+rest))
			case hasSyntax(v):
				// A segment's last parameter holds syntax and the path
				// goes on ("/files/x;p=%3B/usr/bin/id"): read up to the
				// end, as a handler that takes the parameter from the
				// raw path, or a catch-all route, hands it over.
				d.add(d.path, "path."+percentDecodeOnce(k), v+"/"+percentDecodeOnce(rest))
			}
		}
		// Judged by what the segment says under every layer of
		// escapes (a router decodes once, a handler may decode again:
		// "%2527%2520union" is "' union" to it); added decoded once, as
		// the router hands it over, for the normal form to follow.
		if s := percentDecodeOnce(base); hasSyntax(s) || strings.IndexByte(s, '%') >= 0 && hasSyntax(percentDecodeAll(s)) || fileRefScore(s) == scoreAttack {
			d.add(d.path, "path", s)
		}
	}
	if ref, ok := refInPath(percentDecodeOnce(path)); ok {
		// A wrapper or share written across segments
		// ("/view/php://filter/resource=index.php"): from where it
		// opens, as a catch-all route parameter hands it over.
		d.add(d.path, "path", ref)
	}
}

// commentedPath returns p with its block comments ("/**/", "/*x*/")
// replaced by spaces, when it holds at least one comment that spans a
// separator: what no router writes and SQL reads as white space.
func commentedPath(p string) (string, bool) {
	if !strings.Contains(p, "/*") {
		return p, false
	}
	var b strings.Builder
	found := false
	for {
		i := strings.Index(p, "/*")
		if i < 0 {
			break
		}
		j := strings.Index(p[i+2:], "*/")
		if j < 0 {
			break
		}
		found = true
		b.WriteString(p[:i])
		b.WriteByte(' ')
		p = p[i+2+j+2:]
	}
	if !found {
		return "", false
	}
	b.WriteString(p)
	return b.String(), true
}

// spansSegments reports whether p has a quote, a backquote or a "("
// that one segment opens and a later segment closes.
func spansSegments(p string) bool {
	if !strings.ContainsAny(p, "'\"`(") {
		return false
	}
	open := byte(0) // the quote or "(" a segment left open
	for seg := range strings.SplitSeq(p, "/") {
		if open != 0 {
			if strings.IndexByte(seg, open) >= 0 {
				return true
			}
			continue
		}
		depth := 0
		var q byte
		for i := 0; i < len(seg); i++ {
			switch c := seg[i]; {
			case q != 0:
				if c == q {
					q = 0
				}
			case c == '\'' || c == '"' || c == '`':
				q = c
			case c == '(':
				depth++
			case c == ')' && depth > 0:
				depth--
			}
		}
		switch {
		case q != 0:
			open = q
		case depth > 0:
			open = ')'
		}
	}
	return false
}

// hasDotSegment reports whether s holds a run of two dots or more before
// a slash or a backslash: a step up a directory tree, however padded
// ("../", "....//", "..\\").
func hasDotSegment(s string) bool {
	for i := strings.Index(s, ".."); i >= 0; {
		j := i
		for j < len(s) && s[j] == '.' {
			j++
		}
		if j < len(s) && (s[j] == '/' || s[j] == '\\') {
			return true
		}
		k := strings.Index(s[j:], "..")
		if k < 0 {
			break
		}
		i = j + k
	}
	return false
}

// hasSyntax reports whether s holds a character that means something to
// SQL, HTML, JavaScript or a shell, or white space: what a value made only
// of words, numbers and path characters does not.
func hasSyntax(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '<', '>', '(', ')', '[', ']', '{', '}', '|', ';', '$', '`', '\\', ' ', '\t', '\n', '\r', '*', '^', '!':
			return true
		default:
			if c < 0x20 {
				return true
			}
		}
	}
	return false
}

// normalizeInto adds to dst, under the same name, the normal form of each
// value of src that has one and each layer of encoding under it (see
// decodedLayers) that differs from it, and the parts of a normal form or
// a layer that is a JSON document or a query string. With formEncoded
// (cookies, which arrive as the client wrote them, undecoded), a value
// holding percent escapes and "+" also has its form-decoded normal form,
// "+" read as a space as PHP's $_COOKIE and most frameworks' cookie
// readers do ("%3B+nc+-e+%2Fbin%2Fsh" is "; nc -e /bin/sh" to them),
// beside the form that keeps "+" (Base64 in a cookie).
func (d *derived) normalizeInto(src, dst collection.Map, formEncoded bool) {
	var adds [][2]string
	for _, md := range src.FindAll() {
		v := md.Value()
		n, ok, layers := d.memo.normalForms(v)
		if ok {
			n = dropControls(n)
			adds = append(adds, [2]string{md.Key(), n})
			if parts, ok := expandValue(md.Key(), n); ok {
				adds = append(adds, parts...)
			}
		}
		for _, l := range layers {
			if ok && l == n {
				continue
			}
			adds = append(adds, [2]string{md.Key(), l})
			if parts, ok := expandValue(md.Key(), l); ok {
				adds = append(adds, parts...)
			}
		}
		if !formEncoded || strings.IndexByte(v, '%') < 0 || strings.IndexByte(v, '+') < 0 {
			continue
		}
		if f, ok := d.memo.normalize(strings.ReplaceAll(v, "+", " ")); ok && f != n {
			adds = append(adds, [2]string{md.Key(), dropControls(f)})
		}
	}
	for _, kv := range adds {
		d.add(dst, kv[0], kv[1])
	}
}

// dropControls removes C0 controls other than white space, which
// decoding can produce from escapes and which would otherwise read as
// protocol violations rather than as the text they hide in. A form feed
// and a vertical tab, white space to SQL, HTML and JavaScript, become
// spaces ("1%0Cunion%0Cselect").
func dropControls(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\f' || c == '\v':
			b.WriteByte(' ')
		case !(c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f):
			b.WriteByte(c)
		}
	}
	return b.String()
}

// budgetFloor is the size of arguments, cookies and headers below which
// a request is not timed against the budget.
const budgetFloor = 16 << 10

// argsBytes is the size of what the attack rules read most: arguments
// with their names, cookies and headers.
func argsBytes(v plugintypes.TransactionVariables) int {
	n := 0
	for _, m := range []collection.Map{v.ArgsGet(), v.ArgsPost(), v.RequestCookies(), v.RequestHeaders()} {
		for _, md := range m.FindAll() {
			n += len(md.Key()) + len(md.Value())
		}
	}
	return n
}

// processStart anchors monotonic time for the budget.
var processStart = time.Now()

// monotonicNow is the time since processStart, on the monotonic clock.
func monotonicNow() time.Duration { return time.Since(processStart) }
