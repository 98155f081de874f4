package tf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The subset of `terraform show -json` (format 1.x) the reader uses.
type planJSON struct {
	FormatVersion   string       `json:"format_version"`
	PlannedValues   *planValues  `json:"planned_values"`
	ResourceChanges []planChange `json:"resource_changes"`
	Configuration   *planConfig  `json:"configuration"`
	Variables       map[string]struct {
		Value any `json:"value"`
	} `json:"variables"`
}

type planValues struct {
	RootModule planModule `json:"root_module"`
}

type planModule struct {
	Address      string         `json:"address"`
	Resources    []planResource `json:"resources"`
	ChildModules []planModule   `json:"child_modules"`
}

type planResource struct {
	Address string         `json:"address"`
	Mode    string         `json:"mode"`
	Type    string         `json:"type"`
	Name    string         `json:"name"`
	Index   any            `json:"index"`
	Values  map[string]any `json:"values"`
}

type planChange struct {
	Address string `json:"address"`
	Change  struct {
		AfterUnknown any `json:"after_unknown"`
	} `json:"change"`
}

type planConfig struct {
	RootModule cfgModule `json:"root_module"`
}

type cfgModule struct {
	Resources   []cfgResource      `json:"resources"`
	ModuleCalls map[string]cfgCall `json:"module_calls"`
	Outputs     map[string]struct {
		Expression map[string]any `json:"expression"`
	} `json:"outputs"`
	Variables map[string]struct {
		Default any `json:"default"`
	} `json:"variables"`
}

type cfgResource struct {
	Address     string         `json:"address"`
	Mode        string         `json:"mode"`
	Expressions map[string]any `json:"expressions"`
}

type cfgCall struct {
	Source      string         `json:"source"`
	Expressions map[string]any `json:"expressions"`
	Module      cfgModule      `json:"module"`
}

// ReadPlan reads a plan in the JSON form of `terraform show -json`. Values
// the plan leaves unknown (IDs assigned on apply) are resolved through the
// configuration's references, to the referenced resource's ID or, when that
// is unknown too, its address, as LoadDir does. What still cannot be
// resolved reads as Unknown.
func ReadPlan(name string, data []byte) (*Project, error) {
	var pj planJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&pj); err != nil {
		return nil, fmt.Errorf("tf: %s:%d: %s", name, jsonLine(data, err, dec), strings.TrimPrefix(err.Error(), "json: "))
	}
	if pj.PlannedValues == nil {
		return nil, fmt.Errorf("tf: %s:1: not a Terraform plan: no planned_values (want the output of terraform show -json)", name)
	}
	p := &Project{Files: map[string][]byte{}}
	r := &planReader{name: name, p: p, byAddr: map[string]*Resource{}, unknown: map[string]any{},
		lines: addressLines(data)}
	for _, c := range pj.ResourceChanges {
		r.unknown[c.Address] = c.Change.AfterUnknown
	}
	var root cfgModule
	if pj.Configuration != nil {
		root = pj.Configuration.RootModule
	}
	r.rootVars = map[string]any{}
	for k, v := range pj.Variables {
		r.rootVars[k] = v.Value
	}
	r.collect(pj.PlannedValues.RootModule, "")
	r.resolveAll(pj.PlannedValues.RootModule, &scope{mod: &root})
	p.sort()
	return p, nil
}

func jsonLine(data []byte, err error, dec *json.Decoder) int {
	off := dec.InputOffset()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

var addressRe = regexp.MustCompile(`"address"\s*:\s*"((?:[^"\\]|\\.)*)"`)

// addressLines maps each address to the line where it first appears.
func addressLines(data []byte) map[string]int {
	out := map[string]int{}
	line, last := 1, 0
	for _, m := range addressRe.FindAllSubmatchIndex(data, -1) {
		line += bytes.Count(data[last:m[0]], []byte("\n"))
		last = m[0]
		var a string
		if json.Unmarshal(data[m[2]-1:m[3]+1], &a) == nil {
			if _, ok := out[a]; !ok {
				out[a] = line
			}
		}
	}
	return out
}

type planReader struct {
	name     string
	p        *Project
	byAddr   map[string]*Resource
	unknown  map[string]any
	rootVars map[string]any
	lines    map[string]int
	depth    int // of the reference being resolved
}

// scope is one module of the configuration, with its caller.
type scope struct {
	mod    *cfgModule
	prefix string // "" or "module.x."
	parent *scope
	call   *cfgCall
}

func (r *planReader) collect(m planModule, prefix string) {
	for _, pr := range m.Resources {
		if pr.Mode != "" && pr.Mode != "managed" {
			continue
		}
		vals := pr.Values
		if vals == nil {
			vals = map[string]any{}
		}
		mod := strings.TrimSuffix(prefix, ".")
		r.p.Resources = append(r.p.Resources, Resource{Address: pr.Address, Module: mod, Type: pr.Type, Name: pr.Name,
			Values: vals, Pos: Pos{File: r.name, Line: r.lines[pr.Address]}, Planned: true})
	}
	for _, c := range m.ChildModules {
		r.collect(c, c.Address+".")
	}
	for i := range r.p.Resources {
		r.byAddr[r.p.Resources[i].Address] = &r.p.Resources[i]
	}
}

var indexRe = regexp.MustCompile(`\[[^\]]*\]`)

// stripIndex turns module.a["x"].aws_s.b[0] into module.a.aws_s.b.
func stripIndex(a string) string { return indexRe.ReplaceAllString(a, "") }

func (r *planReader) resolveAll(m planModule, sc *scope) {
	cfg := map[string]*cfgResource{}
	for i := range sc.mod.Resources {
		cfg[sc.mod.Resources[i].Address] = &sc.mod.Resources[i]
	}
	for _, pr := range m.Resources {
		res := r.byAddr[pr.Address]
		if res == nil {
			continue
		}
		c := cfg[strings.TrimPrefix(stripIndex(pr.Address), stripIndex(sc.prefix))]
		if c == nil {
			continue
		}
		r.fill(res.Values, r.unknown[pr.Address], c.Expressions, sc, pr.Address)
	}
	for _, cm := range m.ChildModules {
		name := strings.TrimPrefix(stripIndex(cm.Address), stripIndex(sc.prefix)+"module.")
		call, ok := sc.mod.ModuleCalls[name]
		if !ok {
			continue
		}
		r.resolveAll(cm, &scope{mod: &call.Module, prefix: cm.Address + ".", parent: sc, call: &call})
	}
}

// fill sets the attributes of vals that the plan leaves unknown (or out)
// from their configuration expressions.
func (r *planReader) fill(vals map[string]any, unk any, exprs map[string]any, sc *scope, addr string) {
	um, _ := unk.(map[string]any)
	for k, e := range exprs {
		u := um[k]
		_, present := vals[k]
		switch {
		case u == true || !present || vals[k] == nil:
			if v, ok := r.expr(e, sc, addr); ok {
				vals[k] = v
			} else if u == true {
				vals[k] = Unknown{Why: "not known until apply", From: planSources(e, sc)}
			}
		case u != nil:
			// Partly unknown nested blocks: fill element by element.
			ul, _ := u.([]any)
			vl, _ := vals[k].([]any)
			el, _ := e.([]any)
			for i := range vl {
				vm, ok := vl[i].(map[string]any)
				if !ok || i >= len(ul) || i >= len(el) {
					continue
				}
				em, _ := el[i].(map[string]any)
				r.fill(vm, ul[i], em, sc, addr)
			}
		}
	}
}

// expr evaluates a configuration expression as far as the plan allows.
func (r *planReader) expr(e any, sc *scope, addr string) (any, bool) {
	switch e := e.(type) {
	case []any:
		out := make([]any, 0, len(e))
		for _, x := range e {
			v, _ := r.expr(x, sc, addr)
			out = append(out, v)
		}
		return out, true
	case map[string]any:
		if c, ok := e["constant_value"]; ok {
			return c, true
		}
		if refs, ok := e["references"].([]any); ok {
			return r.refs(refs, sc, addr)
		}
		out := map[string]any{}
		for k, x := range e {
			if v, ok := r.expr(x, sc, addr); ok {
				out[k] = v
			}
		}
		return out, true
	}
	return nil, false
}

// refs resolves a reference list: one value per distinct referenced object
// (Terraform lists both aws_vpc.main.id and aws_vpc.main).
func (r *planReader) refs(refs []any, sc *scope, addr string) (any, bool) {
	var names []string
	for _, x := range refs {
		s, _ := x.(string)
		if s == "" {
			continue
		}
		dup := false
		for _, n := range names {
			if strings.HasPrefix(n, s+".") || strings.HasPrefix(n, s+"[") {
				dup = true
			}
		}
		if !dup {
			names = append(names, s)
		}
	}
	var vals []any
	for _, n := range names {
		v, ok := r.ref(n, sc, addr)
		if !ok {
			r.p.Notes = append(r.p.Notes, Note{Pos: Pos{File: r.name, Line: r.lines[addr]}, Address: addr,
				Msg: fmt.Sprintf("value is not known from the plan (depends on %s)", n)})
			return nil, false
		}
		if l, ok := v.([]any); ok && len(names) > 1 {
			vals = append(vals, l...)
		} else {
			vals = append(vals, v)
		}
	}
	switch len(vals) {
	case 0:
		return nil, false
	case 1:
		return vals[0], true
	}
	return vals, true
}

var refRe = regexp.MustCompile(`^([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)((?:\[[^\]]*\])?)(?:\.([A-Za-z_][\w-]*))?`)

// maxRefDepth bounds reference chains (variables, module outputs), which a
// malformed plan could make circular.
const maxRefDepth = 64

func (r *planReader) ref(n string, sc *scope, addr string) (any, bool) {
	if r.depth >= maxRefDepth {
		return nil, false
	}
	r.depth++
	defer func() { r.depth-- }()
	m := refRe.FindStringSubmatch(n)
	if m == nil {
		return nil, false
	}
	head, name, index, attr := m[1], m[2], m[3], m[4]
	switch head {
	case "var":
		if sc.call == nil {
			v, ok := r.rootVars[name]
			return v, ok && v != nil
		}
		if e, ok := sc.call.Expressions[name]; ok {
			return r.expr(e, sc.parent, addr)
		}
		if v, ok := sc.mod.Variables[name]; ok && v.Default != nil {
			return v.Default, true
		}
		return nil, false
	case "module":
		call, ok := sc.mod.ModuleCalls[name]
		if !ok || index != "" {
			return nil, false
		}
		out, ok := call.Module.Outputs[attr]
		if !ok {
			return nil, false
		}
		return r.expr(out.Expression, &scope{mod: &call.Module, prefix: sc.prefix + "module." + name + ".", parent: sc, call: &call}, addr)
	case "local", "data", "count", "each", "path", "terraform", "self":
		return nil, false
	}
	base := sc.prefix + head + "." + name
	if index != "" {
		t := r.byAddr[base+index]
		if t == nil {
			return nil, false
		}
		return attrOf(t, attr)
	}
	if t := r.byAddr[base]; t != nil {
		return attrOf(t, attr)
	}
	// A whole counted resource: one value per instance.
	var out []any
	for i := range r.p.Resources {
		t := &r.p.Resources[i]
		if strings.HasPrefix(t.Address, base+"[") {
			v, ok := attrOf(t, attr)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
	}
	return out, len(out) > 0
}

// attrOf reads attr of t as LoadDir would: a known value, else the
// address standing for an ID, ARN or name.
func attrOf(t *Resource, attr string) (any, bool) {
	if attr == "" {
		attr = "id"
	}
	if v, ok := t.Values[attr]; ok && v != nil {
		if _, unk := v.(Unknown); !unk {
			return v, true
		}
	}
	switch attr {
	case "id", "arn", "name":
		if id, ok := t.Values["id"].(string); ok && attr == "id" {
			return id, true
		}
		return t.Address, true
	}
	if t.Type == "aws_vpc" || t.Type == "aws_default_vpc" {
		if v, ok := VPCDefaults(t.Address)[attr]; ok {
			return v, true
		}
	}
	if t.Type == "aws_ec2_transit_gateway" {
		if v, ok := TGWDefaults(t.Address)[attr]; ok {
			return v, true
		}
	}
	return nil, false
}
