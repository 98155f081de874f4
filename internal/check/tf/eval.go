package tf

import (
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxPasses bounds how often the evaluator re-evaluates what is still
// unknown; each pass resolves one more level of references between
// resources, locals and modules.
const maxPasses = 6

// maxInstances bounds count, so that a mistaken count cannot exhaust memory.
const maxInstances = 100000

type evaluator struct {
	root  *instance
	p     *Project
	funcs map[string]function.Function
	notes []Note // of the current pass; only the last pass's are kept
}

type instance struct {
	mod      *module
	addr     string // "" for the root, else e.g. "module.net"
	call     *callBlock
	parent   *instance
	rootVars map[string]cty.Value // tfvars, root only
	vars     map[string]cty.Value
	locals   map[string]cty.Value
	res      []*resState
	children []*instance // aligned with mod.calls; nil entries for remote modules
	outputs  map[string]cty.Value
	scope    map[string]cty.Value // the evaluation context's variables
}

const (
	modeSingle = iota
	modeCount
	modeEach
)

type resState struct {
	rb       *resBlock
	base     string // address without instance key
	mode     int
	expanded bool
	keys     []cty.Value // count: numbers; for_each: strings
	eachVals []cty.Value // for_each values, aligned with keys
	vals     []cty.Value // evaluated bodies, aligned with keys; unknown until evaluated
	known    bool
}

func newEvaluator(root *module, vars map[string]cty.Value, p *Project) *evaluator {
	ev := &evaluator{p: p, funcs: functions()}
	ev.root = newInstance(root, "", nil, nil)
	ev.root.rootVars = vars
	return ev
}

func newInstance(m *module, addr string, call *callBlock, parent *instance) *instance {
	in := &instance{mod: m, addr: addr, call: call, parent: parent}
	prefix := ""
	if addr != "" {
		prefix = addr + "."
	}
	for _, rb := range m.resources {
		rs := &resState{rb: rb, base: prefix + rb.typ + "." + rb.name}
		if _, ok := rb.block.Body.Attributes["count"]; ok {
			rs.mode = modeCount
		} else if _, ok := rb.block.Body.Attributes["for_each"]; ok {
			rs.mode = modeEach
		} else {
			rs.expanded = true
			rs.keys = []cty.Value{cty.NilVal}
			rs.vals = []cty.Value{cty.DynamicVal}
		}
		in.res = append(in.res, rs)
	}
	for _, c := range m.calls {
		if c.mod == nil {
			in.children = append(in.children, nil)
			continue
		}
		in.children = append(in.children, newInstance(c.mod, prefix+"module."+c.name, c, in))
	}
	return in
}

func (ev *evaluator) run() {
	prev := -1
	for pass := 0; pass < maxPasses; pass++ {
		ev.notes = nil
		unknown := ev.instance(ev.root)
		if unknown == 0 || unknown == prev {
			break
		}
		prev = unknown
	}
	ev.p.Notes = append(ev.p.Notes, ev.notes...)
	ev.emit(ev.root)
}

func (ev *evaluator) note(r hcl.Range, addr, format string, args ...any) {
	ev.notes = append(ev.notes, Note{Pos: rangePos(r), Address: addr, Msg: fmt.Sprintf(format, args...)})
}

// instance evaluates one module instance and its children once and returns
// how many values are still unknown.
func (ev *evaluator) instance(in *instance) int {
	unknown := 0
	in.scope = map[string]cty.Value{
		"path":      cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(in.mod.dir), "root": cty.StringVal(ev.root.mod.dir), "cwd": cty.StringVal(".")}),
		"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.StringVal("default")}),
		"data":      cty.DynamicVal,
		"module":    ev.moduleOutputs(in),
	}
	unknown += ev.variables(in)
	in.scope["var"] = objectOf(in.vars)
	ev.resourceScope(in)
	unknown += ev.locals(in)
	for _, rs := range in.res {
		if !rs.expanded {
			ev.expand(in, rs)
			if !rs.expanded {
				unknown++
			}
		}
	}
	ev.resourceScope(in)
	ctx := ev.ctx(in)
	for _, rs := range in.res {
		if rs.known || !rs.expanded {
			continue
		}
		rs.known = true
		for i := range rs.keys {
			c := ctx
			switch rs.mode {
			case modeCount:
				c = ctx.NewChild()
				c.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": rs.keys[i]})}
			case modeEach:
				c = ctx.NewChild()
				c.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": rs.keys[i], "value": rs.eachVals[i]})}
			}
			v := ev.body(rs.rb.block.Body, c, rs.addr(i), true)
			rs.vals[i] = v
			if !v.IsWhollyKnown() {
				rs.known = false
			}
		}
		if !rs.known {
			unknown++
		}
	}
	for _, ch := range in.children {
		if ch != nil {
			unknown += ev.instance(ch)
		}
	}
	in.scope["module"] = ev.moduleOutputs(in)
	ctx = ev.ctx(in)
	in.outputs = map[string]cty.Value{}
	for i, a := range in.mod.outputs {
		v := ev.expr(a.Expr, ctx, in.addr)
		in.outputs[in.mod.outNames[i]] = v
		if !v.IsWhollyKnown() {
			unknown++
		}
	}
	return unknown
}

func (ev *evaluator) ctx(in *instance) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: in.scope, Functions: ev.funcs}
}

func (ev *evaluator) moduleOutputs(in *instance) cty.Value {
	m := map[string]cty.Value{}
	for i, ch := range in.children {
		if ch == nil || ch.outputs == nil {
			m[in.mod.calls[i].name] = cty.DynamicVal
			continue
		}
		m[in.mod.calls[i].name] = objectOf(ch.outputs)
	}
	return objectOf(m)
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

// variables sets in.vars: for the root from tfvars and defaults, for a
// module from the call's arguments (evaluated in the parent) and defaults.
func (ev *evaluator) variables(in *instance) int {
	unknown := 0
	in.vars = map[string]cty.Value{}
	var args map[string]*hclsyntax.Attribute
	var pctx *hcl.EvalContext
	if in.call != nil {
		args = in.call.block.Body.Attributes
		pctx = ev.ctx(in.parent)
	}
	names := make([]string, 0, len(in.mod.variables))
	for n := range in.mod.variables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := in.mod.variables[n]
		var val cty.Value
		switch {
		case in.call == nil && hasKey(in.rootVars, n):
			val = in.rootVars[n]
		case in.call != nil && args[n] != nil:
			val = ev.expr(args[n].Expr, pctx, in.addr)
		case v.def != nil:
			val = ev.expr(v.def, nil, in.addr)
		default:
			ev.notes = append(ev.notes, Note{Pos: v.pos, Address: in.addr, Msg: fmt.Sprintf("variable %q has no value (no default and none given)", n)})
			val = cty.DynamicVal
		}
		if !val.IsWhollyKnown() {
			unknown++
		}
		in.vars[n] = val
	}
	return unknown
}

// locals evaluates the module's locals, repeating while some local that
// depends on another becomes known.
func (ev *evaluator) locals(in *instance) int {
	in.locals = map[string]cty.Value{}
	pending := in.mod.locals
	for round := 0; round <= len(in.mod.locals) && len(pending) > 0; round++ {
		in.scope["local"] = objectOf(in.locals)
		ctx := ev.ctx(in)
		var rest []*hclsyntax.Attribute
		for _, a := range pending {
			v, diags := a.Expr.Value(ctx)
			if diags.HasErrors() || !v.IsWhollyKnown() {
				rest = append(rest, a)
				continue
			}
			in.locals[a.Name] = v
		}
		if len(rest) == len(pending) {
			break
		}
		pending = rest
	}
	in.scope["local"] = objectOf(in.locals)
	unknown := 0
	if len(pending) > 0 {
		ctx := ev.ctx(in)
		for _, a := range pending {
			in.locals[a.Name] = ev.expr(a.Expr, ctx, in.addr)
			unknown++
		}
		in.scope["local"] = objectOf(in.locals)
	}
	return unknown
}

// expand evaluates count or for_each.
func (ev *evaluator) expand(in *instance, rs *resState) {
	ctx := ev.ctx(in)
	body := rs.rb.block.Body
	if rs.mode == modeCount {
		a := body.Attributes["count"]
		v := ev.expr(a.Expr, ctx, rs.base)
		if !v.IsKnown() || v.IsNull() || v.Type() != cty.Number {
			ev.note(a.Expr.Range(), rs.base, "count is not known statically; the resource is read as one instance")
			return
		}
		n, acc := v.AsBigFloat().Int64()
		if acc != big.Exact || n < 0 || n > maxInstances {
			ev.note(a.Expr.Range(), rs.base, "count %s is not a whole number in range", v.AsBigFloat())
			return
		}
		for i := int64(0); i < n; i++ {
			rs.keys = append(rs.keys, cty.NumberIntVal(i))
			rs.vals = append(rs.vals, cty.DynamicVal)
		}
		rs.expanded = true
		return
	}
	a := body.Attributes["for_each"]
	v := ev.expr(a.Expr, ctx, rs.base)
	if !v.IsWhollyKnown() || v.IsNull() || !(v.Type().IsMapType() || v.Type().IsObjectType() || v.Type().IsSetType()) {
		ev.note(a.Expr.Range(), rs.base, "for_each is not a known map or set; the resource is read as one instance")
		return
	}
	v, _ = v.UnmarkDeep()
	if v.Type().IsSetType() {
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if e.Type() != cty.String {
				ev.note(a.Expr.Range(), rs.base, "for_each over a set of non-strings")
				rs.keys, rs.eachVals, rs.vals = nil, nil, nil
				return
			}
			rs.keys = append(rs.keys, e)
			rs.eachVals = append(rs.eachVals, e)
			rs.vals = append(rs.vals, cty.DynamicVal)
		}
	} else {
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			rs.keys = append(rs.keys, k)
			rs.eachVals = append(rs.eachVals, e)
			rs.vals = append(rs.vals, cty.DynamicVal)
		}
	}
	rs.expanded = true
}

func (rs *resState) addr(i int) string {
	switch rs.mode {
	case modeCount:
		if rs.expanded {
			n, _ := rs.keys[i].AsBigFloat().Int64()
			return fmt.Sprintf("%s[%d]", rs.base, n)
		}
	case modeEach:
		if rs.expanded {
			return fmt.Sprintf("%s[%q]", rs.base, rs.keys[i].AsString())
		}
	}
	return rs.base
}

// resourceScope puts every resource's current value into in.scope: what was
// evaluated so far, with id and arn standing for the address.
func (ev *evaluator) resourceScope(in *instance) {
	byType := map[string]map[string]cty.Value{}
	for _, rs := range in.res {
		m := byType[rs.rb.typ]
		if m == nil {
			m = map[string]cty.Value{}
			byType[rs.rb.typ] = m
		}
		m[rs.rb.name] = rs.value()
	}
	for t, m := range byType {
		in.scope[t] = cty.ObjectVal(m)
	}
}

func (rs *resState) value() cty.Value {
	if !rs.expanded {
		return cty.DynamicVal
	}
	objs := make([]cty.Value, len(rs.keys))
	for i := range rs.keys {
		addr := cty.StringVal(rs.addr(i))
		m := map[string]cty.Value{}
		if v := rs.vals[i]; v.IsKnown() && v.Type().IsObjectType() && v.IsKnown() && !v.IsNull() {
			for k, x := range v.AsValueMap() {
				m[k] = x
			}
		}
		if _, ok := m["id"]; !ok {
			m["id"] = addr
		}
		if _, ok := m["arn"]; !ok {
			m["arn"] = addr
		}
		if _, ok := m["name"]; !ok {
			m["name"] = addr
		}
		if rs.rb.typ == "aws_vpc" {
			for k, v := range VPCDefaults(rs.addr(i)) {
				m[k] = cty.StringVal(v)
			}
		}
		objs[i] = cty.ObjectVal(m)
	}
	switch rs.mode {
	case modeCount:
		if len(objs) == 0 {
			return cty.EmptyTupleVal
		}
		return cty.TupleVal(objs)
	case modeEach:
		m := map[string]cty.Value{}
		for i, k := range rs.keys {
			m[k.AsString()] = objs[i]
		}
		return objectOf(m)
	}
	return objs[0]
}

var metaArgs = map[string]bool{"count": true, "for_each": true, "depends_on": true, "provider": true}

// body evaluates the attributes and nested blocks of b into an object; a
// nested block type becomes a tuple of objects.
func (ev *evaluator) body(b *hclsyntax.Body, ctx *hcl.EvalContext, addr string, top bool) cty.Value {
	m := map[string]cty.Value{}
	for name, a := range b.Attributes {
		if top && metaArgs[name] {
			continue
		}
		m[name] = ev.expr(a.Expr, ctx, addr)
	}
	blocks := map[string][]cty.Value{}
	for _, nb := range b.Blocks {
		switch nb.Type {
		case "lifecycle", "provisioner", "connection":
			continue
		case "dynamic":
			ev.dynamic(nb, ctx, addr, blocks)
		default:
			blocks[nb.Type] = append(blocks[nb.Type], ev.body(nb.Body, ctx, addr, false))
		}
	}
	for t, vs := range blocks {
		m[t] = cty.TupleVal(vs)
	}
	return objectOf(m)
}

func (ev *evaluator) dynamic(b *hclsyntax.Block, ctx *hcl.EvalContext, addr string, blocks map[string][]cty.Value) {
	if len(b.Labels) != 1 {
		ev.note(b.DefRange(), addr, "dynamic block needs one label")
		return
	}
	label := b.Labels[0]
	iter := label
	if a, ok := b.Body.Attributes["iterator"]; ok {
		if t := hcl.ExprAsKeyword(a.Expr); t != "" {
			iter = t
		}
	}
	var content *hclsyntax.Body
	for _, nb := range b.Body.Blocks {
		if nb.Type == "content" {
			content = nb.Body
		}
	}
	fe, ok := b.Body.Attributes["for_each"]
	if !ok || content == nil {
		ev.note(b.DefRange(), addr, "dynamic %q block needs for_each and content", label)
		return
	}
	v := ev.expr(fe.Expr, ctx, addr)
	if !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() {
		ev.note(fe.Expr.Range(), addr, "dynamic %q block: for_each is not known statically", label)
		blocks[label] = append(blocks[label], cty.DynamicVal)
		return
	}
	v, _ = v.UnmarkDeep()
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		c := ctx.NewChild()
		c.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": k, "value": e})}
		blocks[label] = append(blocks[label], ev.body(content, c, addr, false))
	}
}

// expr evaluates e; on error or an unknown result it records a Note and
// returns an unknown value.
func (ev *evaluator) expr(e hcl.Expression, ctx *hcl.EvalContext, addr string) cty.Value {
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		var msgs []string
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				msgs = append(msgs, strings.TrimSuffix(d.Summary+": "+d.Detail, ": "))
			}
		}
		ev.note(e.Range(), addr, "cannot evaluate: %s", strings.Join(msgs, "; "))
		return cty.DynamicVal
	}
	v, _ = v.UnmarkDeep()
	if !v.IsWhollyKnown() {
		var refs []string
		for _, t := range e.Variables() {
			refs = append(refs, traversalString(t))
		}
		ev.note(e.Range(), addr, "value is not known statically (depends on %s)", strings.Join(refs, ", "))
	}
	return v
}

func traversalString(t hcl.Traversal) string {
	var b strings.Builder
	for _, s := range t {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			b.WriteString("[…]")
		}
	}
	return b.String()
}

// emit appends the resources of in and its children to the project.
func (ev *evaluator) emit(in *instance) {
	for _, rs := range in.res {
		if !rs.expanded {
			ev.p.Resources = append(ev.p.Resources, Resource{Address: rs.base, Module: in.addr, Type: rs.rb.typ,
				Name: rs.rb.name, Values: map[string]any{}, Pos: rs.rb.pos, End: rs.rb.end})
			continue
		}
		for i := range rs.keys {
			vals, _ := toGo(rs.vals[i]).(map[string]any)
			if vals == nil {
				vals = map[string]any{}
			}
			ev.p.Resources = append(ev.p.Resources, Resource{Address: rs.addr(i), Module: in.addr, Type: rs.rb.typ,
				Name: rs.rb.name, Values: vals, Pos: rs.rb.pos, End: rs.rb.end})
		}
	}
	for _, ch := range in.children {
		if ch != nil {
			ev.emit(ch)
		}
	}
}

// toGo converts a cty value to plain Go values; unknowns become Unknown.
func toGo(v cty.Value) any {
	if !v.IsKnown() {
		return Unknown{}
	}
	if v.IsNull() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f
	case t == cty.Bool:
		return v.True()
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, toGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = toGo(e)
		}
		return out
	}
	return Unknown{Why: "value of type " + t.FriendlyName()}
}

func hasKey(m map[string]cty.Value, k string) bool {
	_, ok := m[k]
	return ok
}

// VPCDefaults returns the IDs, stood in by strings derived from the VPC's
// address, of what AWS creates with every VPC: the main route table, the
// default network ACL and the default security group. Both readers use them.
func VPCDefaults(vpcAddr string) map[string]string {
	return map[string]string{
		"main_route_table_id":       vpcAddr + ":main-route-table",
		"default_route_table_id":    vpcAddr + ":main-route-table",
		"default_network_acl_id":    vpcAddr + ":default-network-acl",
		"default_security_group_id": vpcAddr + ":default-security-group",
	}
}
