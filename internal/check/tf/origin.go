package tf

import (
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// origins returns, for each top-level attribute of b whose value in v is
// not known, the resources that the value can only have come from (see
// sources); attributes whose value may come from elsewhere are left out.
func origins(b *body, v cty.Value, ctx *hcl.EvalContext, module string) map[string][]string {
	if !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() {
		return nil
	}
	var out map[string][]string
	for name, e := range b.attrs {
		if metaArgs[name] || !v.Type().HasAttribute(name) || v.GetAttr(name).IsKnown() {
			continue
		}
		if from := sources(e, ctx, module); len(from) > 0 {
			if out == nil {
				out = map[string][]string{}
			}
			out[name] = from
		}
	}
	return out
}

// sources returns the managed resources (addresses without instance keys,
// qualified by module, as Resource.Address is) whose IDs the value of e can
// only be: every reference in e is to the ID of a resource of module (or
// to the resource as a whole, as a splat or a function argument), or is
// count.index or a value that holds no string (a condition or an index
// that picks among them). It returns nil when some reference may bring a
// value of its own (a variable, a local, a module output, a data source,
// each.value), so that a caller reads the value as anything at all.
func sources(e hcl.Expression, ctx *hcl.EvalContext, module string) []string {
	prefix := ""
	if module != "" {
		prefix = module + "."
	}
	seen := map[string]bool{}
	for _, t := range e.Variables() {
		root := t.RootName()
		switch root {
		case "count":
			continue
		case "var", "local", "module", "data", "path", "terraform", "each", "self":
			v, diags := t.TraverseAbs(ctx)
			if diags.HasErrors() || !stringless(v.Type()) {
				return nil
			}
			continue
		}
		if len(t) < 2 {
			return nil
		}
		name, ok := t[1].(hcl.TraverseAttr)
		if !ok || !idOnly(t[2:]) {
			return nil
		}
		if !inScope(ctx, root) {
			return nil // not a resource: an iterator of a for expression
		}
		seen[prefix+root+"."+name.Name] = true
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// idOnly reports whether what follows a resource's name in a reference
// reads its ID: nothing (the resource as a whole, as in a splat
// aws_route_table.private[*].id, whose .id is not part of the reference),
// an instance key, then at most .id. Another attribute may hold any value.
func idOnly(rest hcl.Traversal) bool {
	if len(rest) > 0 {
		if _, ok := rest[0].(hcl.TraverseIndex); ok {
			rest = rest[1:]
		}
	}
	switch len(rest) {
	case 0:
		return true
	case 1:
		a, ok := rest[0].(hcl.TraverseAttr)
		return ok && a.Name == "id"
	}
	return false
}

func inScope(ctx *hcl.EvalContext, name string) bool {
	for c := ctx; c != nil; c = c.Parent() {
		if _, ok := c.Variables[name]; ok {
			return true
		}
	}
	return false
}

// stringless reports whether no value of type t holds a string: numbers,
// bools and collections of them. The dynamic type may hold anything.
func stringless(t cty.Type) bool {
	switch {
	case t == cty.Number || t == cty.Bool:
		return true
	case t.IsListType() || t.IsSetType() || t.IsMapType():
		return stringless(t.ElementType())
	case t.IsTupleType():
		for _, e := range t.TupleElementTypes() {
			if !stringless(e) {
				return false
			}
		}
		return true
	case t.IsObjectType():
		for _, e := range t.AttributeTypes() {
			if !stringless(e) {
				return false
			}
		}
		return true
	}
	return false
}

// planSources is sources for a plan's configuration expression, which
// lists only its references: every one must be to the ID of a resource of
// the module (or the resource as a whole) or be count.index; the types of
// other values are not in the plan, so any other reference may bring a
// value of its own.
func planSources(e any, sc *scope) []string {
	em, _ := e.(map[string]any)
	refs, _ := em["references"].([]any)
	seen := map[string]bool{}
	for _, x := range refs {
		n, _ := x.(string)
		m := refRe.FindStringSubmatch(n)
		if m == nil || len(m[0]) != len(n) {
			return nil
		}
		switch head, attr := m[1], m[4]; {
		case head == "count":
		case head == "var" || head == "local" || head == "module" || head == "data" || head == "each" ||
			head == "path" || head == "terraform" || head == "self":
			return nil
		case attr != "" && attr != "id":
			return nil
		default:
			seen[sc.prefix+head+"."+m[2]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
