// Package config decodes moat's YAML files strictly: an unknown key, a value
// of the wrong kind or a bad duration is an error that names the key path
// (`gateway.routes[2].service`) and the line, and nothing is returned with it.
//
// Every component decodes its raw file with Decode, validates the raw values
// (naming paths with Path), and only then builds its typed config.
package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Error is a configuration error at one key path.
type Error struct {
	File string // may be empty
	Path string // e.g. "routes[2].service"; empty for the document itself
	Line int    // 0 when unknown
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns an *Error at path.
func Errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Join returns a path below parent: Join("routes[2]", "service").
func Join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// Index returns the path of element i of the list at parent.
func Index(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// DecodeFile reads and decodes the YAML file at name into v.
func DecodeFile(name string, v any) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := Decode(data, v); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = name
			return ce
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Decode decodes one YAML document into v (a pointer to a struct) strictly.
// An empty document leaves v unchanged.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("config: Decode needs a non-nil pointer")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return &Error{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &Error{Line: extra.Line, Msg: "more than one YAML document"}
	}
	if err := check(&doc, rv.Type().Elem(), ""); err != nil {
		return err
	}
	if err := doc.Decode(v); err != nil {
		return &Error{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return nil
}

var (
	unmarshalerType     = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// check walks n against t and reports the first unknown key or ill-typed
// scalar with its path, so that the decode that follows cannot fail.
func check(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return check(n.Content[0], t, path)
	}
	if n.Kind == yaml.AliasNode {
		return &Error{Path: path, Line: n.Line, Msg: "YAML aliases are not allowed"}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Tag == "!!null" {
		return nil
	}
	pt := reflect.PointerTo(t)
	if t.Implements(unmarshalerType) || pt.Implements(unmarshalerType) {
		var err error
		if n.Kind == yaml.ScalarNode || n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
			err = n.Decode(reflect.New(t).Interface())
		}
		if err != nil {
			return &Error{Path: path, Line: n.Line, Msg: cleanYAML(err)}
		}
		return nil
	}
	if t == durationType {
		if n.Kind != yaml.ScalarNode {
			return &Error{Path: path, Line: n.Line, Msg: "want a duration such as \"90s\" or \"1h\""}
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("bad duration %q (want e.g. \"90s\", \"15m\", \"1h\")", n.Value)}
		}
		return nil
	}
	if pt.Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			return &Error{Path: path, Line: n.Line, Msg: "want a single value"}
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return &Error{Path: path, Line: n.Line, Msg: err.Error()}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &Error{Path: path, Line: n.Line, Msg: "want a mapping of keys"}
		}
		fields := structFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			kp := Join(path, k.Value)
			if seen[k.Value] {
				return &Error{Path: kp, Line: k.Line, Msg: "key given twice"}
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				return &Error{Path: kp, Line: k.Line, Msg: "unknown key" + suggest(k.Value, fields)}
			}
			if err := check(val, ft, kp); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return &Error{Path: path, Line: n.Line, Msg: "want a mapping of keys"}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if err := check(k, t.Key(), path); err != nil {
				return err
			}
			if err := check(val, t.Elem(), Join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return &Error{Path: path, Line: n.Line, Msg: "want a list"}
		}
		for i, el := range n.Content {
			if err := check(el, t.Elem(), Index(path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Interface:
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return &Error{Path: path, Line: n.Line, Msg: "want a single value, not a list or mapping"}
	}
	return checkScalar(n, t, path)
}

func checkScalar(n *yaml.Node, t reflect.Type, path string) error {
	bad := func(want string) error {
		return &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("want %s, got %q", want, n.Value)}
	}
	switch t.Kind() {
	case reflect.Bool:
		if n.Tag != "!!bool" {
			return bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(n.Value, 0, t.Bits()); err != nil || n.Tag != "!!int" {
			return bad("a whole number")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(n.Value, 0, t.Bits()); err != nil || n.Tag != "!!int" {
			return bad("a whole number ≥ 0")
		}
	case reflect.Float32, reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			return bad("a number")
		}
	case reflect.String:
		// Any scalar reads as a string.
	}
	return nil
}

func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for k := range fields {
		if d := distance(key, k); d < bestD || (d == bestD && best != "" && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance, for "did you mean" hints.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev = cur
	}
	return prev[len(b)]
}

func cleanYAML(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:\n  ")
	return s
}

// Duration is a time.Duration written in YAML as "90s", "15m" or "1h"; it
// also accepts "d" for days ("30d"), as retention settings do.
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ParseDuration is time.ParseDuration plus a whole-day suffix ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n >= 0 && n < 100000 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (want e.g. \"90s\", \"15m\", \"1h\", \"30d\")", s)
	}
	return v, nil
}

// byteUnits are the suffixes ParseBytes takes, longest first.
var byteUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// ParseBytes reads a size such as "512KiB", "32MiB", "1GB" or "4096"
// (bytes).
func ParseBytes(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.n
			break
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("bad size %q (want e.g. \"32MiB\", \"1GB\" or a number of bytes)", s)
	}
	return v * mult, nil
}
