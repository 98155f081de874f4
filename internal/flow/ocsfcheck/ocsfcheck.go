// Package ocsfcheck checks moat's records against the OCSF 1.3.0 definitions
// of the classes it writes (Network Activity 4001, HTTP Activity 4002,
// Detection Finding 2004): every attribute defined by the class or by a
// profile the record declares in metadata.profiles, every required one
// present, every value of its type and, for enumerations, one of the
// defined values, type_uid and category_uid consistent with the class. It
// exists for tests: whatever moat writes is held to what a SIEM that knows
// OCSF will expect.
package ocsfcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Version is the OCSF version the facts here describe.
const Version = "1.3.0"

// Classes lists the class UIDs Check knows.
func Classes() []int {
	var out []int
	for uid := range classes {
		out = append(out, uid)
	}
	sort.Ints(out)
	return out
}

// Check returns every way the JSON record b departs from OCSF 1.3.0, joined,
// or nil.
func Check(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return fmt.Errorf("ocsf: not a JSON object: %w", err)
	}
	c := &checker{}
	uid, ok := intOf(rec["class_uid"])
	cl, known := classes[int(uid)]
	if !ok || !known {
		return fmt.Errorf("ocsf: class_uid %v is not a class moat writes (%v)", rec["class_uid"], Classes())
	}
	if md, ok := rec["metadata"].(map[string]any); ok {
		if v, _ := md["version"].(string); v != Version {
			c.errorf("metadata.version", "%q, want %q", v, Version)
		}
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				if s, ok := p.(string); ok {
					c.profiles = append(c.profiles, s)
				}
			}
		}
	}
	c.object(cl.name, rec, cl.attrs)
	if cat, ok := intOf(rec["category_uid"]); ok && int(cat) != cl.category {
		c.errorf("category_uid", "%d, want %d for %s", cat, cl.category, cl.name)
	}
	act, ok1 := intOf(rec["activity_id"])
	typ, ok2 := intOf(rec["type_uid"])
	if ok1 && ok2 && typ != uid*100+act {
		c.errorf("type_uid", "%d, want class_uid*100+activity_id = %d", typ, uid*100+act)
	}
	return errors.Join(c.errs...)
}

type checker struct {
	profiles []string
	errs     []error
}

func (c *checker) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf("ocsf: %s: %s", path, fmt.Sprintf(format, args...)))
}

// object checks the attributes of v, an instance of the object or class
// described by attrs, at path.
func (c *checker) object(path string, v map[string]any, attrs map[string]attr) {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		a, ok := attrs[k]
		p := join(path, k)
		switch {
		case !ok:
			c.errorf(p, "not an attribute of %s in OCSF %s", path, Version)
			continue
		case a.profile != "" && !slices.Contains(c.profiles, a.profile):
			c.errorf(p, "belongs to the %s profile, which metadata.profiles does not name", a.profile)
		}
		c.value(p, v[k], a)
	}
	req := make([]string, 0)
	for k, a := range attrs {
		if a.req == required && (a.profile == "" || slices.Contains(c.profiles, a.profile)) {
			if _, ok := v[k]; !ok {
				req = append(req, k)
			}
		}
	}
	sort.Strings(req)
	for _, k := range req {
		c.errorf(join(path, k), "required, missing")
	}
}

func (c *checker) value(path string, v any, a attr) {
	typ := a.typ
	if elem, ok := strings.CutPrefix(typ, "[]"); ok {
		list, ok := v.([]any)
		if !ok {
			c.errorf(path, "want an array of %s, got %T", elem, v)
			return
		}
		for i, x := range list {
			c.value(fmt.Sprintf("%s[%d]", path, i), x, attr{typ: elem, enum: a.enum})
		}
		return
	}
	if name, ok := strings.CutPrefix(typ, "object:"); ok {
		m, ok := v.(map[string]any)
		if !ok {
			c.errorf(path, "want an object (%s), got %T", name, v)
			return
		}
		attrs, known := objects[name]
		if !known {
			c.errorf(path, "object %s is one moat does not write; its attributes are not checked here", name)
			return
		}
		c.object(path, m, attrs)
		return
	}
	switch typ {
	case "json":
		return
	case "string":
		if _, ok := v.(string); !ok {
			c.errorf(path, "want a string, got %T", v)
		}
		return
	case "boolean":
		if _, ok := v.(bool); !ok {
			c.errorf(path, "want a boolean, got %T", v)
		}
		return
	case "float":
		if _, ok := v.(json.Number); !ok {
			c.errorf(path, "want a number, got %T", v)
		}
		return
	}
	n, ok := intOf(v)
	if !ok {
		c.errorf(path, "want an integer (%s), got %v", typ, v)
		return
	}
	switch typ {
	case "integer":
		if n < math.MinInt32 || n > math.MaxInt32 {
			c.errorf(path, "%d does not fit a 32-bit integer", n)
		}
	case "timestamp":
		// Milliseconds since the epoch: a value of seconds (or of
		// microseconds) lands far outside this century.
		if n < 946684800000 || n > 4102444800000 {
			c.errorf(path, "%d is not a time in milliseconds since the epoch", n)
		}
	}
	if len(a.enum) > 0 && !slices.Contains(a.enum, int(n)) {
		c.errorf(path, "%d is not one of the defined values %v", n, a.enum)
	}
}

// intOf reads a JSON integer.
func intOf(v any) (int64, bool) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	n, err := num.Int64()
	return n, err == nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
