package waf

import (
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/tidwall/gjson"
)

// Limits on what one nested JSON value may expand to. A value past them is
// left whole, so it is still inspected as text.
const (
	nestedMaxDepth  = 32
	nestedMaxLeaves = 4096
)

// expandJSON is the moatExpandJSON action. It rewrites ARGS_GET and
// ARGS_POST (form fields and multipart parts) so that a value holding a
// JSON object or array is replaced by its leaves, named as Coraza names a
// JSON body's ("field.key.0.name"), with arrays' lengths under their own
// name. Rules then see each string as it was meant, as they do when the
// same document arrives as an application/json body, rather than JSON
// syntax, whose quotes, braces and colons read as SQL and script to CRS.
// Every string, key and number of the document is still inspected; only
// the punctuation between them is gone. A value that is not valid JSON,
// or is too deep or too large, stays as it came.
type expandJSON struct{}

func newExpandJSON() plugintypes.Action { return expandJSON{} }

func (expandJSON) Init(_ plugintypes.RuleMetadata, data string) error { return nil }

func (expandJSON) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

func (expandJSON) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	v := tx.Variables()
	expandMap(v.ArgsGet())
	expandMap(v.ArgsPost())
}

// expandMap replaces, in m, each value that is a JSON document by its
// leaves. Keys are visited in the order the request gave them.
func expandMap(m collection.Map) {
	var keys []string
	seen := map[string]bool{}
	for _, md := range m.FindAll() {
		if !seen[md.Key()] && looksJSON(md.Value()) {
			seen[md.Key()] = true
			keys = append(keys, md.Key())
		}
	}
	for _, k := range keys {
		vals := m.Get(k)
		var out [][2]string
		changed := false
		for _, val := range vals {
			if leaves, ok := flattenJSON(k, val); ok {
				out = append(out, leaves...)
				changed = true
				continue
			}
			out = append(out, [2]string{k, val})
		}
		if !changed {
			continue
		}
		m.Remove(k)
		for _, kv := range out {
			m.Add(kv[0], kv[1])
		}
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
