package check

import (
	"fmt"
	"math"
	"slices"
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

// document returns the JSON document at m[k]: its text, or, when parts of
// it are not known statically, what is known of it (tf.Unknown.JSON), and
// why it is partial ("" when it is known).
func document(m map[string]any, k string) (text, partial string) {
	if u, ok := m[k].(tf.Unknown); ok && u.JSON != "" {
		return u.JSON, " (parts of the policy are not known statically; those read are)"
	}
	return str(m, k), ""
}

// unknownFrom returns the resources that the unknown value m[k] can only
// have come from (tf.Unknown.From); nil when it may be anything.
func unknownFrom(m map[string]any, k string) []string {
	u, _ := m[k].(tf.Unknown)
	return u.From
}

// strs reads a list of strings; a single string reads as a list of one. A
// number or bool reads as the text Terraform makes of it for a string
// attribute. Unknown elements, and those that are no string Terraform
// could pass (unreadable), are dropped and reported through the second
// result: the caller reads them at their worst.
func strs(m map[string]any, k string) ([]string, bool) {
	switch v := m[k].(type) {
	case nil:
		return nil, false
	case []any:
		var out []string
		unk := false
		for _, e := range v {
			if s, ok := asText(e); ok {
				out = append(out, s)
			} else {
				unk = true
			}
		}
		return out, unk
	default:
		if s, ok := asText(v); ok {
			return []string{s}, false
		}
		return nil, true
	}
}

// asText is the string Terraform passes for v, an element of a string
// attribute; false for a value not known statically or one Terraform
// cannot write as a string.
func asText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "", false
		}
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// anyUnknown tells whether m[k], or an element of it, is not known
// statically.
func anyUnknown(m map[string]any, k string) bool {
	l, _ := m[k].([]any)
	return unknown(m, k) || slices.ContainsFunc(l, func(e any) bool { return isUnknown(e) })
}

func isUnknown(v any) bool {
	_, ok := v.(tf.Unknown)
	return ok
}

// unreadable describes the values of m[k] (the attribute or the elements
// of its list) that are known and yet no string (a number that is not
// finite, a list, an object, a null in a list): "+Inf, a list".
// mistyped reports whether m[k], a list of strings, holds a list or an
// object: a value of the wrong type, which Terraform rejects.
func mistyped(m map[string]any, k string) bool {
	vs, ok := m[k].([]any)
	if !ok {
		vs = []any{m[k]}
	}
	for _, e := range vs {
		switch e.(type) {
		case []any, map[string]any:
			return true
		}
	}
	return false
}

func unreadable(m map[string]any, k string) string {
	vs, ok := m[k].([]any)
	if !ok {
		vs = []any{m[k]}
		if m[k] == nil {
			return ""
		}
	}
	var out []string
	for _, e := range vs {
		if _, ok := asText(e); ok {
			continue
		}
		switch e := e.(type) {
		case tf.Unknown:
		case float64:
			out = append(out, strconv.FormatFloat(e, 'g', -1, 64))
		case []any:
			out = append(out, "a list")
		case map[string]any:
			out = append(out, "an object")
		case nil:
			out = append(out, "null")
		default:
			out = append(out, fmt.Sprintf("%T", e))
		}
	}
	return strings.Join(out, ", ")
}

// unknownBits returns the prefix lengths of the elements of m[k] that are
// not known statically, when each is an address range of a known length
// (tf.Unknown.Bits: "${chomp(data.http.myip.response_body)}/32"); ok is
// false when one may be any range.
func unknownBits(m map[string]any, k string) (bits []int, ok bool) {
	var vs []any
	switch v := m[k].(type) {
	case nil:
	case []any:
		vs = v
	default:
		vs = []any{v}
	}
	for _, e := range vs {
		if u, isU := e.(tf.Unknown); isU {
			if u.Bits <= 0 {
				return nil, false
			}
			bits = append(bits, u.Bits)
		} else if _, ok := asText(e); !ok {
			return nil, false // unreadable: any range
		}
	}
	return bits, true
}

// boundedText names ranges of known prefix lengths whose addresses are not
// known statically: "a /32 range", "2 ranges (/32, /24)".
func boundedText(bits []int) string {
	length := func(b int) string {
		if b == oneNetwork {
			return "one network's"
		}
		return fmt.Sprintf("/%d", b)
	}
	if len(bits) == 1 {
		return fmt.Sprintf("a %s range", length(bits[0]))
	}
	ls := make([]string, len(bits))
	for i, b := range bits {
		ls[i] = length(b)
	}
	return fmt.Sprintf("%d ranges (%s)", len(bits), strings.Join(ls, ", "))
}

// oneNetwork stands, among the prefix lengths of bounded ranges, for
// addresses no wider than one network holds in either family (an
// AWS-managed prefix list: one AWS service's ranges).
const oneNetwork = -1

// boundedShare is the share of an address family, whose widest range one
// network holds is a /netBits, that ranges of these prefix lengths make up
// at most, wherever they are.
func boundedShare(bits []int, netBits int) float64 {
	var f float64
	for _, b := range bits {
		if b == oneNetwork {
			b = netBits
		}
		f += math.Ldexp(1, -b)
	}
	return f
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

// eachKey calls visit for every key of every object in v, at any depth
// (objects in objects and in lists), the object first, then what the key
// holds.
func eachKey(v any, visit func(m map[string]any, k string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			visit(v, k)
			eachKey(x, visit)
		}
	case []any:
		for _, x := range v {
			eachKey(x, visit)
		}
	}
}
