package tf

import (
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// maxPasses bounds how often the evaluator re-evaluates what is still
// unknown; each pass resolves one more level of references between
// resources, locals and modules.
const maxPasses = 8

// maxInstances bounds the resource and module instances count and
// for_each expand to, in all, so that a count of a billion, or counts that
// multiply through modules, cannot exhaust memory: past it, an expansion
// reads as one instance whose key is unknown, which stands for them all.
const maxInstances = 100000

type evaluator struct {
	root  *instance
	p     *Project
	funcs map[string]function.Function
	notes []Note // of the current pass; only the last pass's are kept
	// final is set for the last pass: a count or for_each still unknown
	// then reads as one instance whose key is unknown.
	final bool
	// quiet drops notes while a body whose instance key is unknown is read.
	quiet bool
	// in is the module instance whose resources are being read: their
	// attributes' unknown address ranges get the prefix length their
	// expressions fix (withPrefixLen). nil elsewhere.
	in *instance
	// work is what is left of maxWork; every value an expression is given
	// is charged to it.
	work *budget
	// instances counts the instances expansions made, against maxInstances.
	instances int
	// unread is Options.Unread; typ and attr are the resource type and the
	// attribute being read (both "" outside a resource's attributes), leaf
	// the argument being read within it, at any depth: a note on an
	// attribute or argument unread reports is dropped.
	unread          func(typ, attr string) bool
	typ, attr, leaf string
	// readVars and nameVars are rootRead's answer, once made.
	readVars, nameVars map[string]bool
	// passing is set while a value that only passes its unknowns on is
	// read (a local, an output, a module call's argument): they are noted
	// where a resource reads them, if one does.
	passing bool
}

type instance struct {
	mod      *module
	addr     string // "" for the root, else e.g. module.net or module.net["a"]
	call     *callState
	key      cty.Value // count.index or each.key of this module instance; NilVal when single
	each     cty.Value
	parent   *instance
	rootVars map[string]cty.Value // tfvars, root only
	vars     map[string]cty.Value
	locals   map[string]cty.Value
	res      []*resState
	datas    []*dataState
	calls    []*callState
	outputs  map[string]cty.Value
	// varFrom, localFrom and outFrom hold, for a variable, local or output
	// whose value is not known, the resources whose IDs its unknown strings
	// can only be (see sources).
	varFrom, localFrom, outFrom map[string][]string
	// varBits, localBits and outBits hold, for a variable, local or output
	// whose unknown strings are address ranges of a known prefix length,
	// that length (see prefixLen).
	varBits, localBits, outBits map[string]int
	// defaultSubnets holds the lookups of the default VPC's subnets
	// (TYPE.NAME of data blocks, defaultSubnetsLookup): their IDs are
	// its default subnets' (DefaultSubnetsOf).
	defaultSubnets map[string]bool
	// eachFrom holds, while a resource whose for_each is not known
	// statically is read, what its each.key and each.value can only be
	// (see sources).
	eachFrom []string
	scope    map[string]cty.Value // the evaluation context's variables
}

const (
	modeSingle = iota
	modeCount
	modeEach
)

// expansion is the count or for_each of a resource or module call.
type expansion struct {
	base     string // address without instance key
	mode     int
	expanded bool
	// unknownKey: count or for_each could not be known; one instance is
	// read with an unknown key.
	unknownKey bool
	keys       []cty.Value // count: numbers; for_each: strings
	eachVals   []cty.Value // for_each values, aligned with keys
}

type resState struct {
	expansion
	rb   *resBlock
	vals []cty.Value // evaluated bodies, aligned with keys; unknown until evaluated
	// from holds, aligned with keys, the resources that each unknown
	// attribute can only have come from (see origins).
	from  []map[string][]string
	known bool
}

// dataState is a data block of a module instance and its count or
// for_each.
type dataState struct {
	expansion
	rb *resBlock
}

type callState struct {
	expansion
	cb    *callBlock
	insts []*instance
}

func newEvaluator(root *module, vars map[string]cty.Value, p *Project, l *loader) *evaluator {
	ev := &evaluator{p: p, funcs: functions(l), work: l.work}
	ev.root = newInstance(root, "", nil, nil)
	ev.root.rootVars = vars
	return ev
}

func modeOf(b *body) int {
	if _, ok := b.attrs["count"]; ok {
		return modeCount
	}
	if _, ok := b.attrs["for_each"]; ok {
		return modeEach
	}
	return modeSingle
}

func newInstance(m *module, addr string, call *callState, parent *instance) *instance {
	in := &instance{mod: m, addr: addr, call: call, parent: parent}
	prefix := ""
	if addr != "" {
		prefix = addr + "."
	}
	for _, rb := range m.resources {
		rs := &resState{rb: rb, expansion: expansion{base: prefix + rb.typ + "." + rb.name, mode: modeOf(rb.body)}}
		if rs.mode == modeSingle {
			rs.expanded = true
			rs.keys = []cty.Value{cty.NilVal}
			rs.eachVals = []cty.Value{cty.NilVal}
			rs.vals = []cty.Value{cty.DynamicVal}
		}
		in.res = append(in.res, rs)
	}
	for _, d := range m.datas {
		in.datas = append(in.datas, &dataState{rb: d, expansion: expansion{base: prefix + "data." + d.typ + "." + d.name, mode: modeOf(d.body)}})
	}
	for _, c := range m.calls {
		cs := &callState{cb: c, expansion: expansion{base: prefix + "module." + c.name, mode: modeOf(c.body)}}
		in.calls = append(in.calls, cs)
	}
	return in
}

func (ev *evaluator) run() {
	prev := -1
	for pass := 0; pass < maxPasses; pass++ {
		ev.notes = nil
		unknown := ev.instance(ev.root)
		if unknown == 0 || unknown == prev || ev.work.spent() {
			break
		}
		prev = unknown
	}
	if ev.pending(ev.root) {
		ev.final = true
		ev.notes = nil
		ev.instance(ev.root)
	}
	ev.p.Notes = append(ev.p.Notes, dedupe(ev.notes)...)
	ev.emit(ev.root)
	ev.sameConfigs()
}

// pending reports whether some count or for_each is still unexpanded.
func (ev *evaluator) pending(in *instance) bool {
	for _, rs := range in.res {
		if !rs.expanded {
			return true
		}
	}
	for _, cs := range in.calls {
		if !cs.expanded && cs.cb.mod != nil {
			return true
		}
		for _, ch := range cs.insts {
			if ev.pending(ch) {
				return true
			}
		}
	}
	return false
}

// Note kinds, for keeping one note per kind of construct per resource.
const (
	kindUnknown  = "unknown"
	kindComputed = "computed"
	kindError    = "error"
	kindExpand   = "expand"
	kindDynamic  = "dynamic"
	kindVariable = "variable"
	kindName     = "name" // a resource's own name (Note.Name)
)

type kindedNote struct {
	Note
	kind string
}

func (ev *evaluator) note(r hcl.Range, addr, kind, format string, args ...any) {
	if ev.quiet || ev.attr != "" && ev.unread != nil && (ev.unread(ev.typ, ev.attr) || ev.unread(ev.typ, ev.leaf)) ||
		ev.passing && (kind == kindUnknown || kind == kindComputed) {
		return
	}
	ev.notes = append(ev.notes, Note{Pos: rangePos(r), Address: addr, Msg: fmt.Sprintf(format, args...), kind: kind, Name: kind == kindName})
}

// dedupe keeps one note of each kind for each address, the first in the
// source (file, line, then text: attributes are evaluated in no fixed
// order, and the report must not change from run to run), and says how
// many more there were.
func dedupe(ns []Note) []Note {
	type k struct{ addr, kind string }
	idx := map[k]int{}
	more := map[k]int{}
	seen := map[Note]bool{} // one expression read more than once is one
	var out []Note
	for _, n := range ns {
		if seen[n] {
			continue
		}
		seen[n] = true
		key := k{n.Address, n.kind}
		if n.kind == "" || n.Address == "" {
			out = append(out, n)
			continue
		}
		if i, ok := idx[key]; ok {
			more[key]++
			if o := out[i]; n.Pos.File < o.Pos.File || n.Pos.File == o.Pos.File && (n.Pos.Line < o.Pos.Line || n.Pos.Line == o.Pos.Line && n.Msg < o.Msg) {
				out[i] = n
			}
			continue
		}
		idx[key] = len(out)
		out = append(out, n)
	}
	for key, n := range more {
		out[idx[key]].Msg += fmt.Sprintf(" (and %s like it)", plural(n, "other expression", "other expressions"))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// instance evaluates one module instance and its children once and returns
// how many values are still unknown.
func (ev *evaluator) instance(in *instance) int {
	unknown := 0
	in.scope = map[string]cty.Value{
		"path":      cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(in.mod.dir), "root": cty.StringVal(ev.root.mod.dir), "cwd": cty.StringVal(ev.root.mod.dir)}),
		"terraform": cty.ObjectVal(map[string]cty.Value{"workspace": cty.UnknownVal(cty.String)}),
		"data":      cty.DynamicVal,
		"module":    ev.moduleOutputs(in),
	}
	if len(in.mod.ephemerals) > 0 {
		types := map[string]cty.Value{}
		for t, names := range in.mod.ephemerals {
			byName := map[string]cty.Value{}
			for _, n := range names {
				byName[n] = cty.DynamicVal
			}
			types[t] = cty.ObjectVal(byName)
		}
		in.scope["ephemeral"] = cty.ObjectVal(types)
	}
	unknown += ev.variables(in)
	in.scope["var"] = objectOf(in.vars)
	ev.resourceScope(in)
	in.scope["data"] = ev.dataScope(in)
	unknown += ev.locals(in)
	in.scope["data"] = ev.dataScope(in)
	for _, ds := range in.datas {
		if !ds.expanded {
			unknown++
		}
	}
	for _, rs := range in.res {
		if !rs.expanded {
			ev.expand(ev.ctx(in), rs.rb.body, &rs.expansion)
			if rs.expanded {
				rs.vals = make([]cty.Value, len(rs.keys))
				for i := range rs.vals {
					rs.vals[i] = cty.DynamicVal
				}
			} else {
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
		// Under an unknown count or for_each, what fails to evaluate
		// follows from the unknown key, already noted.
		ev.quiet = rs.unknownKey
		ev.in, ev.typ = in, rs.rb.typ
		rs.from = make([]map[string][]string, len(rs.keys))
		if fe := rs.rb.body.attrs["for_each"]; rs.unknownKey && fe != nil {
			// each.key and each.value of a for_each not known
			// statically are what its elements can only be.
			in.eachFrom = sources(fe, ctx, in)
		}
		for i := range rs.keys {
			c := rs.child(ctx, i)
			v := ev.body(rs.rb.body, c, rs.addr(i), true)
			rs.vals[i] = v
			if !ev.work.spent() {
				rs.from[i] = origins(rs.rb.body, v, c, in)
			}
			if !v.IsWhollyKnown() {
				rs.known = false
			}
		}
		ev.quiet, ev.in, ev.typ, in.eachFrom = false, nil, "", nil
		if !rs.known {
			unknown++
		}
	}
	for _, cs := range in.calls {
		ev.checkCall(cs) // every pass: notes start afresh each time
		if cs.cb.mod == nil {
			continue
		}
		if !cs.expanded {
			ev.expand(ctx, cs.cb.body, &cs.expansion)
			if !cs.expanded {
				unknown++
				continue
			}
			for i := range cs.keys {
				ch := newInstance(cs.cb.mod, cs.addr(i), cs, in)
				ch.key, ch.each = cs.keys[i], cs.eachVals[i]
				cs.insts = append(cs.insts, ch)
			}
		}
		for _, ch := range cs.insts {
			unknown += ev.instance(ch)
		}
	}
	in.scope["module"] = ev.moduleOutputs(in)
	ctx = ev.ctx(in)
	for _, cs := range in.calls {
		if cs.cb.mod == nil {
			ev.checkUnread(cs, ctx)
		}
	}
	in.outputs = map[string]cty.Value{}
	in.outFrom = map[string][]string{}
	in.outBits = map[string]int{}
	for _, o := range in.mod.outputs {
		// What an output cannot evaluate is said of the module call (one
		// note of each kind for them all), or of a root output by name;
		// what it leaves unknown, where a resource reads it.
		addr := in.addr
		if addr == "" {
			addr = "output." + o.name
		}
		ev.passing = true
		v := ev.expr(o.expr, ctx, addr)
		ev.passing = false
		in.outputs[o.name] = v
		if !v.IsWhollyKnown() && !ev.work.spent() {
			in.outFrom[o.name] = sources(o.expr, ctx, in)
			if bits, ok := prefixLen(o.expr, ctx, in, true); ok && bits > 0 {
				in.outBits[o.name] = bits
			}
		}
		if !v.IsWhollyKnown() {
			unknown++
		}
	}
	return unknown
}

// callArgs are the meta-arguments of a module block; every other argument
// must name one of the module's variables.
var callArgs = map[string]bool{"source": true, "version": true, "providers": true, "count": true, "for_each": true, "depends_on": true}

// checkCall reports what Terraform refuses in a module call: a nested
// block (a module block takes none), and, when the module is available, an
// argument it declares no variable for. terraform plan fails on either;
// the rest of the call is read as given.
// checkUnread reports the references of the arguments of a call whose
// module is not read that the calling module does not declare: Terraform
// rejects them whether or not the module is fetched. The arguments are
// not otherwise evaluated.
func (ev *evaluator) checkUnread(cs *callState, ctx *hcl.EvalContext) {
	names := make([]string, 0, len(cs.cb.body.attrs))
	for n := range cs.cb.body.attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if callArgs[n] {
			continue // source, providers, depends_on, …: not values
		}
		e := cs.cb.body.attrs[n]
		missing := undeclaredName(e, ctx)
		if r := undeclared(e, ctx); missing == "" && r != "" {
			missing = "resource " + r
		}
		if missing != "" {
			ev.notes = append(ev.notes, Note{Pos: rangePos(e.Range()), Address: cs.base, kind: kindError, Rejected: true,
				Msg: fmt.Sprintf("reference to undeclared %s: Terraform rejects the configuration, so the plan fails", missing)})
		}
	}
}

func (ev *evaluator) checkCall(cs *callState) {
	names := make([]string, 0, len(cs.cb.body.attrs))
	for n := range cs.cb.body.attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if cs.cb.mod == nil {
			break
		}
		if _, ok := cs.cb.mod.variables[n]; !ok && !callArgs[n] {
			ev.notes = append(ev.notes, Note{Pos: rangePos(cs.cb.body.attrs[n].Range()), Address: cs.base, Rejected: true,
				Msg: fmt.Sprintf("the module declares no variable %q: Terraform rejects the argument (Unsupported argument), so the plan fails", n)})
		}
	}
	for _, b := range cs.cb.body.blocks {
		ev.notes = append(ev.notes, Note{Pos: rangePos(b.def), Address: cs.base, Rejected: true,
			Msg: fmt.Sprintf("a module block takes no nested blocks: Terraform rejects the %q block (Unsupported block type), so the plan fails", b.typ)})
	}
}

func (ev *evaluator) ctx(in *instance) *hcl.EvalContext {
	return &hcl.EvalContext{Variables: in.scope, Functions: ev.funcs}
}

// child returns ctx with count or each set for instance i.
func (x *expansion) child(ctx *hcl.EvalContext, i int) *hcl.EvalContext {
	return withKey(ctx, x.mode, x.keys[i], x.eachVals[i])
}

func withKey(ctx *hcl.EvalContext, mode int, key, each cty.Value) *hcl.EvalContext {
	switch mode {
	case modeCount:
		c := ctx.NewChild()
		c.Variables = map[string]cty.Value{"count": cty.ObjectVal(map[string]cty.Value{"index": key})}
		return c
	case modeEach:
		c := ctx.NewChild()
		c.Variables = map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": key, "value": each})}
		return c
	}
	return ctx
}

func (ev *evaluator) moduleOutputs(in *instance) cty.Value {
	m := map[string]cty.Value{}
	for _, cs := range in.calls {
		if cs.cb.mod == nil || !cs.expanded || cs.unknownKey {
			m[cs.cb.name] = cty.DynamicVal
			continue
		}
		outs := make([]cty.Value, len(cs.insts))
		for i, ch := range cs.insts {
			outs[i] = cty.DynamicVal
			if ch.outputs != nil {
				outs[i] = objectOf(ch.outputs)
			}
		}
		switch cs.mode {
		case modeSingle:
			m[cs.cb.name] = outs[0]
		case modeCount:
			m[cs.cb.name] = tupleOf(outs)
		case modeEach:
			om := map[string]cty.Value{}
			for i, k := range cs.keys {
				om[k.AsString()] = outs[i]
			}
			m[cs.cb.name] = objectOf(om)
		}
	}
	return objectOf(m)
}

func objectOf(m map[string]cty.Value) cty.Value {
	if len(m) == 0 {
		return cty.EmptyObjectVal
	}
	return cty.ObjectVal(m)
}

func tupleOf(vs []cty.Value) cty.Value {
	if len(vs) == 0 {
		return cty.EmptyTupleVal
	}
	return cty.TupleVal(vs)
}

// variables sets in.vars: for the root from tfvars and defaults, for a
// module from the call's arguments (evaluated in the parent, with the
// instance's count or each) and defaults, converted to the declared type
// with its optional attributes' defaults, as Terraform does.
func (ev *evaluator) variables(in *instance) int {
	unknown := 0
	in.vars = map[string]cty.Value{}
	in.varFrom = map[string][]string{}
	in.varBits = map[string]int{}
	var args map[string]hcl.Expression
	var pctx *hcl.EvalContext
	if in.call != nil {
		args = in.call.cb.body.attrs
		pctx = withKey(ev.ctx(in.parent), in.call.mode, in.key, in.each)
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
			ev.passing = true
			val = ev.expr(args[n], pctx, in.call.base)
			ev.passing = false
			// Past the budget, what an unknown value may be is not
			// narrowed: it may be anything.
			if !val.IsWhollyKnown() && !ev.work.spent() {
				in.varFrom[n] = sources(args[n], pctx, in.parent)
				if bits, ok := prefixLen(args[n], pctx, in.parent, true); ok && bits > 0 {
					in.varBits[n] = bits
				}
			}
			if v.notNull && val.IsKnown() && val.IsNull() && v.def != nil {
				val = ev.expr(v.def, ev.work.ctx(), in.addr)
			}
		case v.def != nil:
			val = ev.expr(v.def, ev.work.ctx(), in.addr)
		case in.call != nil:
			// A module call must give every variable without a default.
			ev.notes = append(ev.notes, Note{Pos: in.call.cb.pos, Address: in.call.base, kind: kindVariable, Rejected: true,
				Msg: fmt.Sprintf("the call gives no value for the module's required variable %q: Terraform rejects it (Missing required argument), so the plan fails", n)})
			val = cty.DynamicVal
		default:
			read, names := map[string]bool{n: true}, map[string]bool(nil)
			if ev.unread != nil {
				read, names = ev.rootRead()
			}
			if read[n] || names[n] {
				ev.notes = append(ev.notes, Note{Pos: v.pos, Address: "var." + n, kind: kindVariable, Name: !read[n],
					Msg: fmt.Sprintf("variable %q has no value (no default and none given)", n)})
			}
			val = cty.DynamicVal
		}
		if v.ty != cty.NilType {
			switch {
			case !val.IsKnown():
				val = cty.UnknownVal(v.ty)
			default:
				if v.defaults != nil && !val.IsNull() {
					val = v.defaults.Apply(val)
				}
				c, err := convert.Convert(val, v.ty)
				if err != nil {
					addr := in.addr
					if addr == "" {
						addr = "var." + n
					}
					ev.notes = append(ev.notes, Note{Pos: v.pos, Address: addr, kind: kindVariable, Rejected: true,
						Msg: fmt.Sprintf("variable %q: the value does not have the declared type (%v): Terraform rejects it, so the plan fails; the value is read as given", n, err)})
					break
				}
				val = c
			}
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
	in.localFrom = map[string][]string{}
	in.localBits = map[string]int{}
	pending := in.mod.locals
	for round := 0; round <= len(in.mod.locals) && len(pending) > 0; round++ {
		// A local not settled yet reads as unknown, not as missing: a
		// missing one is an error that try() and can() would take for a
		// failure and answer with their fallback, a known value that is
		// not the local's.
		scope := map[string]cty.Value{}
		for _, a := range pending {
			scope[a.name] = cty.DynamicVal
		}
		for k, v := range in.locals {
			scope[k] = v
		}
		in.scope["local"] = objectOf(scope)
		ctx := ev.ctx(in)
		var rest []local
		for _, a := range pending {
			v, diags := a.expr.Value(ctx)
			// Charged first: a value too large to build is not walked.
			if diags.HasErrors() || ev.work.charge(v) != nil || !v.IsWhollyKnown() {
				rest = append(rest, a)
				continue
			}
			v, _ = v.UnmarkDeep()
			in.locals[a.name] = v
		}
		if len(rest) == len(pending) || ev.work.spent() {
			break
		}
		pending = rest
	}
	unknown := 0
	if len(pending) > 0 {
		// What is left depends on something unknown (or fails): each reads
		// the others as unknown.
		for _, a := range pending {
			in.locals[a.name] = cty.DynamicVal
		}
		in.scope["local"] = objectOf(in.locals)
		ctx := ev.ctx(in)
		for _, a := range pending {
			addr := in.addr
			if addr == "" {
				addr = "local." + a.name
			}
			ev.passing = true
			in.locals[a.name] = ev.expr(a.expr, ctx, addr)
			ev.passing = false
			unknown++
			if ev.work.spent() {
				continue
			}
			in.localFrom[a.name] = sources(a.expr, ctx, in)
			if bits, ok := prefixLen(a.expr, ctx, in, true); ok && bits > 0 {
				in.localBits[a.name] = bits
			}
		}
	}
	in.scope["local"] = objectOf(in.locals)
	return unknown
}

// expand evaluates count or for_each. On the final pass, one that cannot
// be known reads as one instance with an unknown key (and a Note), so that
// what it declares is still checked, at its most permissive.
func (ev *evaluator) expand(ctx *hcl.EvalContext, b *body, x *expansion) {
	switch x.mode {
	case modeSingle:
		x.keys, x.eachVals, x.expanded = []cty.Value{cty.NilVal}, []cty.Value{cty.NilVal}, true
		return
	case modeCount:
		a := b.attrs["count"]
		v := ev.metaValue(a, ctx, x.base)
		if v.IsKnown() && !v.IsNull() && v.Type() == cty.Number {
			n, acc := v.AsBigFloat().Int64()
			if acc != big.Exact || n < 0 {
				// Expanded once, for every pass: the note is the project's.
				ev.p.Notes = append(ev.p.Notes, Note{Pos: rangePos(a.Range()), Address: x.base, kind: kindExpand, Rejected: true,
					Msg: fmt.Sprintf("count %s is not a whole number from 0: Terraform rejects it (Invalid count argument), so the plan fails", v.AsBigFloat().Text('g', 10))})
				x.expanded = true
				return
			}
			if !ev.admit(n, a, x) {
				return
			}
			for i := int64(0); i < n; i++ {
				x.keys = append(x.keys, cty.NumberIntVal(i))
				x.eachVals = append(x.eachVals, cty.NilVal)
			}
			x.expanded = true
			return
		}
		if ev.final {
			ev.note(a.Range(), x.base, kindExpand, "count is not known statically (depends on %s); read as one instance whose count.index is unknown", refs(a))
			x.keys, x.eachVals = []cty.Value{cty.UnknownVal(cty.Number)}, []cty.Value{cty.NilVal}
			x.expanded, x.unknownKey = true, true
		}
		return
	}
	a := b.attrs["for_each"]
	v := ev.metaValue(a, ctx, x.base)
	// A known map or object has known keys, whatever its values hold (a
	// name from a module not read): an instance a key, as Terraform makes
	// them. A set's elements are its keys: it must be wholly known.
	keyed := v.IsKnown() && !v.IsNull() && (v.Type().IsMapType() || v.Type().IsObjectType())
	if keyed || v.IsWhollyKnown() && !v.IsNull() && v.Type().IsSetType() {
		v, _ = v.UnmarkDeep()
		if !ev.admit(int64(v.LengthInt()), a, x) {
			return
		}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if v.Type().IsSetType() {
				if e.Type() != cty.String {
					ev.note(a.Range(), x.base, kindExpand, "for_each over a set of %s: Terraform accepts only strings", e.Type().FriendlyName())
					x.keys, x.eachVals, x.expanded = nil, nil, true
					return
				}
				k = e
			}
			x.keys = append(x.keys, k)
			x.eachVals = append(x.eachVals, e)
		}
		x.expanded = true
		return
	}
	if v.IsWhollyKnown() && !v.IsNull() {
		ev.note(a.Range(), x.base, kindExpand, "for_each is a %s, not a map or a set of strings", v.Type().FriendlyName())
		x.expanded = true
		return
	}
	if ev.final {
		ev.note(a.Range(), x.base, kindExpand, "for_each is not known statically (depends on %s); read as one instance whose each.key and each.value are unknown", refs(a))
		x.keys, x.eachVals = []cty.Value{cty.UnknownVal(cty.String)}, []cty.Value{cty.DynamicVal}
		x.expanded, x.unknownKey = true, true
	}
}

// admit counts n instances of x against maxInstances. Past the bound it
// reads x as one instance whose key is unknown, with a note, and returns
// false.
func (ev *evaluator) admit(n int64, a hcl.Expression, x *expansion) bool {
	if n <= int64(maxInstances-ev.instances) {
		ev.instances += int(n)
		return true
	}
	// Expanded once, for every pass: the note is the project's.
	ev.p.Notes = append(ev.p.Notes, Note{Pos: rangePos(a.Range()), Address: x.base, kind: kindExpand,
		Msg: fmt.Sprintf("%d instances, past the %d moat check expands in all; read as one instance whose key is unknown", n, maxInstances)})
	x.keys, x.eachVals = []cty.Value{cty.UnknownVal(cty.Number)}, []cty.Value{cty.NilVal}
	if x.mode == modeEach {
		x.keys, x.eachVals = []cty.Value{cty.UnknownVal(cty.String)}, []cty.Value{cty.DynamicVal}
	}
	x.expanded, x.unknownKey = true, true
	return false
}

// metaValue evaluates count or for_each; an unknown result is noted by
// expand itself, once, on the final pass.
func (ev *evaluator) metaValue(e hcl.Expression, ctx *hcl.EvalContext, addr string) cty.Value {
	v, diags := e.Value(ctx)
	if diags.HasErrors() {
		return ev.expr(e, ctx, addr)
	}
	v, _ = v.UnmarkDeep()
	return v
}

func (x *expansion) addr(i int) string {
	if x.unknownKey {
		return x.base
	}
	switch x.mode {
	case modeCount:
		n, _ := x.keys[i].AsBigFloat().Int64()
		return fmt.Sprintf("%s[%d]", x.base, n)
	case modeEach:
		return fmt.Sprintf("%s[%q]", x.base, x.keys[i].AsString())
	}
	return x.base
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
	if !rs.expanded || rs.unknownKey {
		return cty.DynamicVal
	}
	objs := make([]cty.Value, len(rs.keys))
	for i := range rs.keys {
		addr := cty.StringVal(rs.addr(i))
		m := map[string]cty.Value{}
		portSet := false
		// What other expressions read carries no mark (prefixMark).
		if v, _ := rs.vals[i].UnmarkDeep(); v.IsKnown() && v.Type().IsObjectType() && !v.IsNull() {
			for k, x := range v.AsValueMap() {
				portSet = portSet || k == "port" && !x.IsNull()
				if x.IsNull() {
					// Unset in the configuration: the provider may compute
					// it (most optional attributes are also computed).
					x = cty.DynamicVal
				}
				m[k] = x
			}
		}
		for _, k := range []string{"id", "arn", "name"} {
			if _, ok := m[k]; !ok {
				m[k] = addr
			}
		}
		if e, ok := m["engine"]; ok && enginePortTypes[rs.rb.typ] && !portSet && e.IsKnown() && e.Type() == cty.String {
			// Not set, a database's port is its engine's default.
			if p, ok := EnginePort(e.AsString()); ok {
				m["port"] = cty.NumberIntVal(int64(p))
			}
		}
		if rs.rb.typ == "aws_vpc" || rs.rb.typ == "aws_default_vpc" {
			for k, v := range VPCDefaults(rs.addr(i)) {
				m[k] = cty.StringVal(v)
			}
		}
		if rs.rb.typ == "aws_ec2_transit_gateway" {
			for k, v := range TGWDefaults(rs.addr(i)) {
				m[k] = cty.StringVal(v)
			}
		}
		if vc, ok := m["vpc_config"]; ok && rs.rb.typ == "aws_eks_cluster" {
			m["vpc_config"] = eksClusterSGIDs(rs.addr(i), vc)
		}
		if rs.rb.typ == "aws_networkfirewall_firewall" {
			m["firewall_status"] = networkFirewallStatus(rs.addr(i), m["subnet_mapping"])
		}
		if rs.rb.typ == "azurerm_virtual_network" {
			if sn, ok := m["subnet"]; ok {
				m["subnet"] = inlineSubnetIDs(rs.addr(i), sn)
			}
		}
		if _, ok := m["private_ip_address"]; !ok && rs.rb.typ == "azurerm_network_interface" {
			m["private_ip_address"] = primaryPrivateIP(rs.addr(i), m["ip_configuration"])
		}
		if _, ok := m["private_ip_address"]; !ok && rs.rb.typ == "azurerm_lb" {
			m["private_ip_address"] = primaryPrivateIP(rs.addr(i), m["frontend_ip_configuration"])
		}
		objs[i] = cty.ObjectVal(m)
	}
	switch rs.mode {
	case modeCount:
		return tupleOf(objs)
	case modeEach:
		m := map[string]cty.Value{}
		for i, k := range rs.keys {
			m[k.AsString()] = objs[i]
		}
		return objectOf(m)
	}
	return objs[0]
}

var metaArgs = map[string]bool{"count": true, "for_each": true, "depends_on": true, "provider": true, "lifecycle": true, "provisioner": true, "connection": true}

// body evaluates the attributes and nested blocks of b into an object; a
// nested block type becomes a tuple of objects.
func (ev *evaluator) body(b *body, ctx *hcl.EvalContext, addr string, top bool) cty.Value {
	m := map[string]cty.Value{}
	for name, e := range b.attrs {
		if top && metaArgs[name] {
			continue
		}
		if top && ev.typ != "" {
			ev.attr = name
		}
		leaf := ev.leaf
		ev.leaf = name
		m[name] = ev.expr(e, ctx, addr)
		ev.leaf = leaf
		if ev.wholeWhereStringTaken(name, e, m[name], addr) {
			m[name] = cty.NullVal(cty.String)
		}
		if !ev.work.spent() {
			m[name] = withPrefixLen(m[name], e, ctx, ev.in)
		}
	}
	blocks := map[string][]cty.Value{}
	for _, nb := range b.blocks {
		if top && ev.typ != "" {
			ev.attr = nb.typ
			if nb.typ == "dynamic" && len(nb.labels) == 1 {
				ev.attr = nb.labels[0]
			}
		}
		switch nb.typ {
		case "lifecycle", "provisioner", "connection", "precondition", "postcondition":
			continue
		case "dynamic":
			ev.dynamic(nb, ctx, addr, blocks)
		default:
			blocks[nb.typ] = append(blocks[nb.typ], ev.body(nb.body, ctx, addr, false))
		}
	}
	for t, vs := range blocks {
		if prev, ok := m[t]; ok && prev.IsKnown() && !prev.IsNull() && prev.CanIterateElements() {
			// JSON syntax: static blocks of this type were read as an
			// attribute; a dynamic block adds to them.
			for it := prev.ElementIterator(); it.Next(); {
				_, e := it.Element()
				vs = append([]cty.Value{e}, vs...)
			}
		}
		m[t] = tupleOf(vs)
	}
	if top {
		ev.attr = ""
	}
	return objectOf(m)
}

func (ev *evaluator) dynamic(b *block, ctx *hcl.EvalContext, addr string, blocks map[string][]cty.Value) {
	if len(b.labels) != 1 {
		ev.note(b.def, addr, kindDynamic, "dynamic block needs one label")
		return
	}
	label := b.labels[0]
	iter := label
	if e, ok := b.body.attrs["iterator"]; ok {
		if t := hcl.ExprAsKeyword(e); t != "" {
			iter = t
		}
	}
	var content *body
	for _, nb := range b.body.blocks {
		if nb.typ == "content" {
			content = nb.body
		}
	}
	fe, ok := b.body.attrs["for_each"]
	if !ok || content == nil {
		ev.note(b.def, addr, kindDynamic, "dynamic %q block needs for_each and content", label)
		return
	}
	v := ev.expr(fe, ctx, addr)
	// A known list or map repeats once an element, whatever its elements
	// hold (a rule whose address is a resource's attribute); a set with
	// unknown elements may hold fewer.
	if !v.IsKnown() || v.IsNull() || !v.CanIterateElements() || v.Type().IsSetType() && !v.IsWhollyKnown() {
		// Unknown repetition: one block whose iterator is unknown, so that
		// what the content fixes (ports, protocols) is still read and what
		// depends on the iterator reads as unknown.
		ev.note(fe.Range(), addr, kindDynamic, "dynamic %q block: for_each is not known statically; read as one block with an unknown %s", label, iter)
		c := ctx.NewChild()
		c.Variables = map[string]cty.Value{iter: cty.ObjectVal(map[string]cty.Value{"key": cty.DynamicVal, "value": cty.DynamicVal})}
		blocks[label] = append(blocks[label], ev.body(content, c, addr, false))
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
		computed := true
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				msgs = append(msgs, strings.TrimSuffix(d.Summary+": "+d.Detail, ": "))
				computed = computed && d.Summary == "Unsupported attribute" && refersToResource(e, ctx)
			}
		}
		if missing := undeclared(e, ctx); computed && missing != "" {
			if !ev.quiet {
				ev.notes = append(ev.notes, Note{Pos: rangePos(e.Range()), Address: addr, kind: kindError, Rejected: true,
					Msg: fmt.Sprintf("reference to undeclared resource %s: Terraform rejects the configuration, so the plan fails", missing)})
			}
		} else if removed := removedCall(diags); removed != nil {
			if !ev.quiet {
				ev.notes = append(ev.notes, Note{Pos: rangePos(e.Range()), Address: addr, kind: kindError, Rejected: true, Msg: removed.Error()})
			}
		} else if missing := undeclaredName(e, ctx); missing != "" {
			// Said even where unknowns are not (a body read quietly): no
			// unknown makes a name undeclared.
			ev.notes = append(ev.notes, Note{Pos: rangePos(e.Range()), Address: addr, kind: kindError, Rejected: true,
				Msg: fmt.Sprintf("reference to undeclared %s: Terraform rejects the configuration, so the plan fails", missing)})
		} else if computed {
			// Only the attributes the provider computes are unknown: a
			// list or object holding them keeps what else it holds. No
			// note when the value does not depend on them (the length of
			// a list of them) or when it can only be the address of the
			// resources it names (aws_lb.web.dns_name: tf.Unknown.From
			// names them, and the model follows that).
			quiet := ev.nameAtApply(e, ctx)
			if c := withComputed(e, ctx); c != nil {
				if v, diags := e.Value(c); !diags.HasErrors() {
					_, top := v.Unmark()
					v, _ = v.UnmarkDeep()
					if !v.IsWhollyKnown() && len(sources(e, ctx, &instance{})) == 0 && !quiet {
						ev.note(e.Range(), addr, kindComputed, "value is computed by the provider (%s), known only after apply", resourceRefs(e, ctx))
					}
					// A policy naming what the provider computes (an
					// API's execution_arn) keeps what is known of it.
					if !v.IsKnown() {
						text := jsonOf(top)
						if text == "" {
							text = templateJSON(e, c)
						}
						if text != "" {
							v = v.Mark(jsonMark{text})
						}
					}
					return v
				}
			}
			if !quiet {
				ev.note(e.Range(), addr, kindComputed, "value is computed by the provider (%s), known only after apply", resourceRefs(e, ctx))
			}
		} else {
			ev.note(e.Range(), addr, kindError, "cannot evaluate: %s", strings.Join(msgs, "; "))
		}
		return cty.DynamicVal
	}
	if err := ev.work.charge(v); err != nil {
		ev.note(e.Range(), addr, kindError, "cannot evaluate: %v", err)
		return cty.DynamicVal
	}
	_, top := v.Unmark()
	v, _ = v.UnmarkDeep()
	text := jsonOf(top)
	if text == "" && !v.IsKnown() {
		text = templateJSON(e, ctx)
	}
	if text != "" && !v.IsKnown() {
		v = v.Mark(jsonMark{text}) // what is known of a JSON document
	}
	switch {
	case v.IsWhollyKnown(), ev.nameAtApply(e, ctx):
	case v.IsKnown() && (v.Type().IsObjectType() || v.Type().IsMapType()):
		// A resource or a map of them passed whole: their IDs are
		// known, what the provider computes is not.
		ev.note(e.Range(), addr, kindUnknown, "value is partly known: some of its attributes are not known statically (depends on %s)", refs(e))
	case ownName(ev.typ, ev.attr):
		ev.note(e.Range(), addr, kindName, "value is not known statically (depends on %s)", refs(e))
	default:
		ev.note(e.Range(), addr, kindUnknown, "value is not known statically (depends on %s)", refs(e))
	}
	return v
}

// nameAtApply reports whether e, being evaluated, is a resource's name
// made at apply (madeAtApply), or names another resource by referring to
// it: not noted, as resources are linked by name and none can repeat
// such a name but by referring to the resource, which the model follows.
func (ev *evaluator) nameAtApply(e hcl.Expression, ctx *hcl.EvalContext) bool {
	if ev.in == nil {
		return false
	}
	if ev.attr == "name" && madeAtApply(e, ctx, ev.in, 0) {
		return true
	}
	// Another resource's name (resource_group_name =
	// azurerm_resource_group.main.name): the model links by that
	// resource, whose name is its own concern (Unknown.From).
	return strings.HasSuffix(ev.attr, "_name") && len(sources(e, ctx, ev.in)) > 0
}

// ownName reports whether attribute attr of a resource of type typ is the
// name it gives itself (Note.Name): its name argument, a search domain's
// domain_name, or a bucket's bucket.
func ownName(typ, attr string) bool {
	switch {
	case typ == "":
		return false
	case attr == "name":
		return true
	case attr == "bucket":
		return typ == "aws_s3_bucket"
	}
	return attr == "domain_name" && (typ == "aws_opensearch_domain" || typ == "aws_elasticsearch_domain")
}

// removedCall returns the error of a call to a function Terraform removed
// among diags, nil when there is none.
func removedCall(diags hcl.Diagnostics) error {
	for _, d := range diags {
		if x, ok := hcl.DiagnosticExtra[hclsyntax.FunctionCallDiagExtra](d); ok {
			var r errRemoved
			if errors.As(x.FunctionCallError(), &r) {
				return r
			}
		}
	}
	return nil
}

// withComputed returns a child of ctx in which the attributes that e reads
// of resources and that their values lack (what the provider computes)
// are unknown; nil when there is none to add.
func withComputed(e hcl.Expression, ctx *hcl.EvalContext) *hcl.EvalContext {
	vars := map[string]cty.Value{}
	for _, t := range e.Variables() {
		root := t.RootName()
		if !strings.Contains(root, "_") || len(t) < 2 {
			continue
		}
		if _, diags := t.TraverseAbs(ctx); !diags.HasErrors() {
			continue
		}
		v, ok := vars[root]
		if !ok {
			for c := ctx; c != nil && !ok; c = c.Parent() {
				v, ok = c.Variables[root]
			}
		}
		if ok {
			vars[root] = addMissing(v, t[1:], 0)
		}
	}
	if len(vars) == 0 {
		return nil
	}
	c := ctx.NewChild()
	c.Variables = vars
	return c
}

// addMissing gives v, along the path rel, the attribute it lacks as an
// unknown value.
func addMissing(v cty.Value, rel hcl.Traversal, depth int) cty.Value {
	if len(rel) == 0 || depth > 16 || !v.IsKnown() || v.IsNull() {
		return v
	}
	switch step := rel[0].(type) {
	case hcl.TraverseAttr:
		if !v.Type().IsObjectType() {
			return v
		}
		m := map[string]cty.Value{}
		for k, x := range v.AsValueMap() {
			m[k] = x
		}
		if x, ok := m[step.Name]; ok {
			m[step.Name] = addMissing(x, rel[1:], depth+1)
		} else {
			m[step.Name] = cty.DynamicVal
		}
		return cty.ObjectVal(m)
	case hcl.TraverseIndex:
		k := step.Key
		switch {
		case (v.Type().IsTupleType() || v.Type().IsListType()) && k.Type() == cty.Number && k.IsKnown():
			i, acc := k.AsBigFloat().Int64()
			elems := v.AsValueSlice()
			if acc != 0 || i < 0 || int(i) >= len(elems) {
				return v
			}
			elems[i] = addMissing(elems[i], rel[1:], depth+1)
			return cty.TupleVal(elems)
		case v.Type().IsObjectType() && k.Type() == cty.String && k.IsKnown():
			m := map[string]cty.Value{}
			for name, x := range v.AsValueMap() {
				m[name] = x
			}
			if x, ok := m[k.AsString()]; ok {
				m[k.AsString()] = addMissing(x, rel[1:], depth+1)
				return cty.ObjectVal(m)
			}
		}
	}
	return v
}

// importIDs returns, by resource address, the IDs the root module's
// import blocks give, those known statically.
func (ev *evaluator) importIDs() map[string]string {
	if len(ev.root.mod.imports) == 0 {
		return nil
	}
	ctx := ev.ctx(ev.root)
	out := map[string]string{}
	for _, ib := range ev.root.mod.imports {
		if id, ok := knownString(ib.id, ctx); ok && id != "" {
			out[ib.to] = id
		}
	}
	return out
}

// emit appends the resources of in and its children to the project.
func (ev *evaluator) emit(in *instance) {
	var imported map[string]string
	if in == ev.root {
		imported = ev.importIDs()
	}
	for _, rs := range in.res {
		config := in.providerConfig(rs.rb.body, rs.rb.typ)
		if !rs.expanded {
			ev.p.Configs[rs.base] = config
			ev.p.Resources = append(ev.p.Resources, Resource{Address: rs.base, Module: in.addr, Type: rs.rb.typ,
				Name: rs.rb.name, Values: map[string]any{}, Pos: rs.rb.pos, End: rs.rb.end})
			continue
		}
		for i := range rs.keys {
			vals, _ := toGo(rs.vals[i]).(map[string]any)
			if vals == nil {
				vals = map[string]any{}
			}
			if i < len(rs.from) {
				for k, from := range rs.from[i] {
					setFrom(vals, k, from)
				}
			}
			ev.p.Resources = append(ev.p.Resources, Resource{Address: rs.addr(i), Module: in.addr, Type: rs.rb.typ,
				Name: rs.rb.name, Values: vals, Pos: rs.rb.pos, End: rs.rb.end, ImportID: imported[rs.addr(i)]})
			ev.p.Configs[rs.addr(i)] = config
		}
	}
	for _, cs := range in.calls {
		for _, ch := range cs.insts {
			ev.emit(ch)
		}
	}
}

// toGo converts a cty value to plain Go values; unknowns become Unknown.
func toGo(v cty.Value) any {
	return goValue(v, func(v cty.Value, marks cty.ValueMarks) any {
		if !v.IsKnown() {
			return Unknown{Bits: bitsOf(marks), JSON: jsonOf(marks)}
		}
		return Unknown{Why: "value of type " + v.Type().FriendlyName()}
	})
}

// goValue converts a cty value to plain Go values (strings, float64s,
// bools, slices and maps), each part not known statically, or of a type
// with no such value, given by other with its marks.
func goValue(v cty.Value, other func(v cty.Value, marks cty.ValueMarks) any) any {
	v, marks := v.Unmark()
	if !v.IsKnown() {
		return other(v, marks)
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
			out = append(out, goValue(e, other))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = goValue(e, other)
		}
		return out
	}
	return other(v, marks)
}

func hasKey(m map[string]cty.Value, k string) bool {
	_, ok := m[k]
	return ok
}

// rootRead returns the root module's variables that what a rule reads may
// depend on: those an argument or nested block of a resource refers to,
// directly or through local values, unless unread (Options.Unread) says no
// rule reads it, and those count, for_each, a data source or a module call
// refers to; and apart, names, those only resources' own names (their name
// arguments) refer to (Note.Name). A variable that only tags or describes
// changes no finding: that it has no value is not noted.
func (ev *evaluator) rootRead() (read, names map[string]bool) {
	if ev.readVars != nil {
		return ev.readVars, ev.nameVars
	}
	mod := ev.root.mod
	// refs returns the variables what visit is given refers to.
	refs := func(visit func(func(hcl.Expression))) map[string]bool {
		out := map[string]bool{}
		seenLocal := map[string]bool{}
		var walk func(e hcl.Expression, depth int)
		walk = func(e hcl.Expression, depth int) {
			if depth > 64 {
				return
			}
			for _, t := range e.Variables() {
				name, ok := traversalAttr(t, 1)
				if !ok {
					continue
				}
				switch t.RootName() {
				case "var":
					out[name] = true
				case "local":
					if seenLocal[name] {
						continue
					}
					seenLocal[name] = true
					for _, l := range mod.locals {
						if l.name == name {
							walk(l.expr, depth+1)
						}
					}
				}
			}
		}
		visit(func(e hcl.Expression) { walk(e, 0) })
		return out
	}
	read = refs(func(visit func(hcl.Expression)) {
		var all func(b *body)
		all = func(b *body) {
			for _, e := range b.attrs {
				visit(e)
			}
			for _, nb := range b.blocks {
				all(nb.body)
			}
		}
		for _, rb := range mod.resources {
			for name, e := range rb.body.attrs {
				if metaArgs[name] && name != "count" && name != "for_each" || ownName(rb.typ, name) || ev.unread(rb.typ, name) {
					continue
				}
				visit(e)
			}
			var nested func(b *body)
			nested = func(b *body) {
				for name, e := range b.attrs {
					if !ev.unread(rb.typ, name) {
						visit(e)
					}
				}
				for _, nb := range b.blocks {
					name := nb.typ
					if name == "dynamic" && len(nb.labels) == 1 {
						name = nb.labels[0]
					}
					if !ev.unread(rb.typ, name) {
						nested(nb.body)
					}
				}
			}
			for _, nb := range rb.body.blocks {
				name := nb.typ
				if name == "dynamic" && len(nb.labels) == 1 {
					name = nb.labels[0]
				}
				if !ev.unread(rb.typ, name) {
					nested(nb.body)
				}
			}
		}
		for _, d := range mod.datas {
			all(d.body)
		}
		for _, c := range mod.calls {
			all(c.body)
		}
	})
	names = refs(func(visit func(hcl.Expression)) {
		for _, rb := range mod.resources {
			for name, e := range rb.body.attrs {
				if ownName(rb.typ, name) {
					visit(e)
				}
			}
		}
	})
	ev.readVars, ev.nameVars = read, names
	return read, names
}

// wholeWhereStringTaken records as rejected an argument of a resource that
// takes one string (an ID, a name or an ARN: NAME_id, NAME_name,
// NAME_arn) written as a whole object or list: a resource or its
// instances (aws_security_group.web, not aws_security_group.web.id).
// Terraform refuses to convert it, so the plan fails; it is then read as
// not set.
func (ev *evaluator) wholeWhereStringTaken(name string, e hcl.Expression, v cty.Value, addr string) bool {
	if ev.typ == "" || ev.quiet || !(strings.HasSuffix(name, "_id") || strings.HasSuffix(name, "_name") || strings.HasSuffix(name, "_arn")) {
		return false
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsTupleType() || v.Type().IsMapType() || v.Type().IsListType()) {
		return false
	}
	what := "an object or list"
	if t, ok := e.(*hclsyntax.ScopeTraversalExpr); ok {
		what = traversalString(t.Traversal) + ", a whole object or list,"
	}
	ev.notes = append(ev.notes, Note{Pos: rangePos(e.Range()), Address: addr, kind: kindError, Rejected: true,
		Msg: fmt.Sprintf("%s is %s where the provider takes one string (name one of its attributes, such as .id or .name): Terraform rejects the configuration, so the plan fails; it is read as not set", name, what)})
	return true
}
