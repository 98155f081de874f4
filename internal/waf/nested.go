package waf

import (
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/tidwall/gjson"
)

// Limits on what one nested JSON value may expand to. A value past them is
// left whole, so it is still inspected as text.
const (
	nestedMaxDepth  = 32
	nestedMaxLeaves = 4096
)

// The inspection pass (inspect.go) rewrites ARGS_GET and ARGS_POST so
// that a value holding a JSON object or array is replaced by its leaves,
// named as Coraza names a JSON body's ("field.key.0.name"), with arrays'
// lengths under their own name. Rules then see each string as it was
// meant, as they do when the same document arrives as an
// application/json body, rather than JSON syntax, whose quotes, braces and
// colons read as SQL and script to CRS. A value that is not valid JSON, or
// is too deep or too large, stays as it came.

// expandMap replaces, in m, each value that is a JSON document or a
// query string by its parts, each named after its own argument. Coraza's
// maps file names case-insensitively ("Remove" and "remove" are one key),
// so the values are grouped as the map groups them, every value of a
// group keeps its own name, and groups are visited in sorted order: the
// result does not depend on the map's iteration order.
func expandMap(m collection.Map) {
	type entry struct{ key, val string }
	groups := map[string][]entry{}
	var expand []string
	for _, md := range m.FindAll() {
		lk := strings.ToLower(md.Key())
		if _, ok := groups[lk]; !ok {
			groups[lk] = nil
		}
		groups[lk] = append(groups[lk], entry{md.Key(), md.Value()})
		if looksJSON(md.Value()) || looksQuery(md.Value()) || looksCookies(md.Value()) {
			expand = append(expand, lk)
		}
	}
	slices.Sort(expand)
	expand = slices.Compact(expand)
	for _, lk := range expand {
		var out [][2]string
		changed := false
		for _, e := range groups[lk] {
			if parts, ok := expandValue(e.key, e.val); ok {
				out = append(out, parts...)
				changed = true
				continue
			}
			out = append(out, [2]string{e.key, e.val})
		}
		if !changed {
			continue
		}
		m.Remove(lk)
		for _, kv := range out {
			m.Add(kv[0], kv[1])
		}
	}
}

// expandValue returns the parts of a JSON document or a query string, or
// false when val is neither.
func expandValue(name, val string) ([][2]string, bool) {
	if looksJSON(val) {
		if leaves, ok := flattenJSON(name, val); ok {
			return leaves, true
		}
	}
	if looksQuery(val) {
		var out [][2]string
		splitQuery(name, val, &out)
		return out, true
	}
	if looksCookies(val) {
		var out [][2]string
		splitCookies(name, val, &out)
		return out, true
	}
	return nil, false
}

// looksQuery reports whether s is a URL with a query string, or a bare
// query string of at least two pairs: the form in which telemetry and
// redirects carry one URL inside another. Every pair must have a name made
// of letters, digits and "_.-[]%". A bare query string must hold nothing
// a URL would have escaped (spaces, quotes, angle brackets, parentheses);
// a URL's query values may (a search for "LIKE" in quotes): each is
// inspected on its own either way.
func looksQuery(s string) bool {
	if len(s) < 3 || len(s) > 64<<10 || strings.IndexByte(s, '=') < 0 {
		return false
	}
	q := s
	if i := strings.IndexByte(s, '?'); i >= 0 {
		if !looksURLBase(s[:i]) || hasSyntax(s[:i]) {
			return false
		}
		q = s[i+1:]
		for j := 0; j < len(q); j++ {
			if c := q[j]; c <= ' ' || c == 0x7f || c == '#' {
				return false
			}
		}
	} else {
		if strings.IndexByte(s, '&') < 0 {
			return false
		}
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c <= ' ', c == 0x7f, c == '"', c == '\'', c == '<', c == '>', c == '`', c == '(', c == ')', c == '{', c == '}', c == '\\', c == '|', c == ';', c == '$':
				return false
			}
		}
	}
	return looksFormLine(q)
}

// looksCookies reports whether s is a Cookie header's value, as scripts
// send document.cookie: at least two "name=value" pairs joined by ";"
// and optional spaces, names made of token characters, values without
// spaces or quotes other than around the whole value.
func looksCookies(s string) bool {
	if len(s) < 7 || len(s) > 64<<10 || strings.Count(s, ";") < 1 || strings.IndexByte(s, '=') < 0 {
		return false
	}
	for pair := range strings.SplitSeq(s, ";") {
		pair = strings.TrimLeft(pair, " ")
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return false
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(nameByte(c) || strings.IndexByte(".%$!#*+^|~", c) >= 0) {
				return false
			}
		}
		v = strings.Trim(v, "\"")
		for i := 0; i < len(v); i++ {
			if c := v[i]; c <= ' ' || c == '"' || c == 0x7f || c == '\\' {
				return false
			}
		}
	}
	return true
}

// splitCookies appends each cookie of s under name.cookie.
func splitCookies(name, s string, out *[][2]string) {
	for pair := range strings.SplitSeq(s, ";") {
		pair = strings.TrimLeft(pair, " ")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		*out = append(*out, [2]string{name + "." + k, strings.Trim(v, "\"")})
	}
}

// isFormName reports whether k is a form field's name as encoders write
// them: letters, digits and "_-.[]%".
func isFormName(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(nameByte(c) || c == '.' || c == '[' || c == ']' || c == '%') {
			return false
		}
	}
	return true
}

// looksURLBase reports whether s is what comes before a URL's query: an
// absolute or scheme-relative URL, or an absolute path.
func looksURLBase(s string) bool {
	for _, p := range []string{"https://", "http://", "//", "/"} {
		if strings.HasPrefix(strings.ToLower(s), p) {
			return true
		}
	}
	return false
}

// splitQuery appends the base of a URL under name, and each query pair
// under name.key. Values are left encoded, as the rules decode them.
func splitQuery(name, s string, out *[][2]string) {
	q := s
	if i := strings.IndexByte(s, '?'); i >= 0 {
		*out = append(*out, [2]string{name, s[:i]})
		q = s[i+1:]
	}
	for pair := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(pair, "=")
		*out = append(*out, [2]string{name + "." + k, v})
	}
}

// looksJSON is the cheap test before parsing: an object or an array.
func looksJSON(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return false
	}
	return (s[0] == '{' && s[len(s)-1] == '}') || (s[0] == '[' && s[len(s)-1] == ']')
}

// flattenJSON returns the leaves of the JSON document s under the name
// prefix, or false when s is not valid JSON or exceeds the limits.
func flattenJSON(prefix, s string) ([][2]string, bool) {
	if !gjson.Valid(s) {
		return nil, false
	}
	var out [][2]string
	if !flattenInto(gjson.Parse(s), []byte(prefix), 0, &out) || len(out) == 0 {
		return nil, false
	}
	return out, true
}

func flattenInto(doc gjson.Result, name []byte, depth int, out *[][2]string) bool {
	if depth >= nestedMaxDepth {
		return false
	}
	ok := true
	n := 0
	doc.ForEach(func(key, value gjson.Result) bool {
		if len(*out) >= nestedMaxLeaves {
			ok = false
			return false
		}
		child := append(name[:len(name):len(name)], '.')
		if key.Type == gjson.String {
			child = append(child, key.Str...)
		} else {
			child = strconv.AppendInt(child, int64(n), 10)
			n++
		}
		switch value.Type {
		case gjson.JSON:
			ok = flattenInto(value, child, depth+1, out)
			return ok
		case gjson.String:
			// JSON encoded once more inside a string, as clients do
			// when a field carries serialized state.
			if looksJSON(value.Str) && gjson.Valid(value.Str) {
				ok = flattenInto(gjson.Parse(value.Str), child, depth+1, out)
				return ok
			}
			if looksQuery(value.Str) {
				splitQuery(string(child), value.Str, out)
				return len(*out) < nestedMaxLeaves
			}
			if looksCookies(value.Str) {
				splitCookies(string(child), value.Str, out)
				return len(*out) < nestedMaxLeaves
			}
			*out = append(*out, [2]string{string(child), value.Str})
		case gjson.Null:
			*out = append(*out, [2]string{string(child), ""})
		default:
			*out = append(*out, [2]string{string(child), value.Raw})
		}
		return true
	})
	if ok && n > 0 {
		*out = append(*out, [2]string{string(name), strconv.Itoa(n)})
	}
	return ok
}
