package check

import (
	"fmt"
	"strconv"
	"strings"

	"moat/internal/check/tf"
)

// Accessors over a resource's plain values. A missing attribute reads as the
// zero value; callers that care whether it was set use has.

func str(m map[string]any, k string) string {
	switch v := m[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func boolean(m map[string]any, k string, def bool) bool {
	switch v := m[k].(type) {
	case bool:
		return v
	case string:
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

func num(m map[string]any, k string, def int) int {
	switch v := m[k].(type) {
	case float64:
		return int(v)
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
	}
	return def
}

func unknown(m map[string]any, k string) bool {
	_, ok := m[k].(tf.Unknown)
	return ok
}

// unknownFrom returns the resources that the unknown value m[k] can only
// have come from (tf.Unknown.From); nil when it may be anything.
func unknownFrom(m map[string]any, k string) []string {
	u, _ := m[k].(tf.Unknown)
	return u.From
}

// strs reads a list of strings; a single string reads as a list of one.
// Unknown elements are dropped and reported through the second result.
func strs(m map[string]any, k string) ([]string, bool) {
	switch v := m[k].(type) {
	case string:
		return []string{v}, false
	case tf.Unknown:
		return nil, true
	case []any:
		var out []string
		unk := false
		for _, e := range v {
			switch e := e.(type) {
			case string:
				out = append(out, e)
			case tf.Unknown:
				unk = true
			}
		}
		return out, unk
	}
	return nil, false
}

func strList(m map[string]any, k string) []string {
	s, _ := strs(m, k)
	return s
}

// blocks reads a nested block list (or a single object) as maps.
func blocks(m map[string]any, k string) []map[string]any {
	switch v := m[k].(type) {
	case map[string]any:
		return []map[string]any{v}
	case []any:
		out := make([]map[string]any, 0, len(v))
		for _, e := range v {
			if b, ok := e.(map[string]any); ok {
				out = append(out, b)
			}
		}
		return out
	}
	return nil
}

// blocksUnknown tells whether the block list k of m, or one of its
// elements, is not known statically (an attribute set from a variable
// without a value, or a list with such an element): blocks reads only the
// known ones.
func blocksUnknown(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case tf.Unknown:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(tf.Unknown); ok {
				return true
			}
		}
	}
	return false
}

func block(m map[string]any, k string) map[string]any {
	if b := blocks(m, k); len(b) > 0 {
		return b[0]
	}
	return nil
}

func has(m map[string]any, k string) bool {
	v, ok := m[k]
	return ok && v != nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
