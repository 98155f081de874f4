package tf

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// How a note names what an expression waits on.

// refersToResource reports whether e reads an attribute of a resource (an
// attribute this reader cannot know: the provider computes it).
func refersToResource(e hcl.Expression, ctx *hcl.EvalContext) bool {
	for _, t := range e.Variables() {
		root := t.RootName()
		if strings.Contains(root, "_") && ctx != nil {
			for c := ctx; c != nil; c = c.Parent() {
				if _, ok := c.Variables[root]; ok {
					return true
				}
			}
		}
	}
	return false
}

// undeclared names the first reference of e to a resource of a type the
// module declares under a name it does not declare ("" when none): a
// misspelt name Terraform refuses, not a value the provider computes.
func undeclared(e hcl.Expression, ctx *hcl.EvalContext) string {
	for _, t := range e.Variables() {
		root := t.RootName()
		if !strings.Contains(root, "_") || len(t) < 2 {
			continue
		}
		name, ok := t[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		for c := ctx; c != nil; c = c.Parent() {
			v, ok := c.Variables[root]
			if !ok {
				continue
			}
			if v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() && !v.Type().HasAttribute(name.Name) {
				return root + "." + name.Name
			}
			break
		}
	}
	return ""
}

// undeclaredName names the first reference of e to something the module
// does not declare, as Terraform's own words have it ("" when none): an
// input variable (var.x), a local value (local.x), a data source of a
// module that declares data sources (data.T.N), a module call or an output
// of the module it calls (module.M.O), a resource of a type the module
// declares nothing of (random_string.x), or a name that is none of these.
// Terraform refuses each.
// A resource of a declared type under an undeclared name is undeclared's.
func undeclaredName(e hcl.Expression, ctx *hcl.EvalContext) string {
	for _, t := range e.Variables() {
		root := t.RootName()
		attr := func(i int) string {
			if i < len(t) {
				if a, ok := t[i].(hcl.TraverseAttr); ok {
					return a.Name
				}
			}
			return ""
		}
		v, bound := lookup(ctx, root)
		switch {
		case root == "var" || root == "local":
			if name := attr(1); name != "" && bound && lacks(v, name) {
				what := map[string]string{"var": "input variable", "local": "local value"}[root]
				return what + " " + root + "." + name
			}
		case root == "data":
			typ, name := attr(1), attr(2)
			if typ == "" || name == "" || !bound || !v.IsKnown() || v.IsNull() || !v.Type().IsObjectType() {
				continue
			}
			if lacks(v, typ) || lacks(v.GetAttr(typ), name) {
				return "data source data." + typ + "." + name
			}
		case root == "module":
			call, out := attr(1), attr(2)
			if call == "" || !bound {
				continue
			}
			if lacks(v, call) {
				return "module call module." + call
			}
			if out != "" && lacks(v.GetAttr(call), out) {
				return "output module." + call + "." + out
			}
		case bound || boundElsewhere[root]:
		case strings.Contains(root, "_") && attr(1) != "":
			return "resource " + root + "." + attr(1)
		default:
			// Terraform knows no such root: its Invalid reference.
			return "name " + root
		}
	}
	return ""
}

// boundElsewhere are the roots Terraform binds where this reader may not
// (self in a provisioner, count and each in a block that repeats): a
// reference to one is no undeclared name.
var boundElsewhere = map[string]bool{"var": true, "local": true, "module": true, "data": true, "path": true,
	"terraform": true, "count": true, "each": true, "self": true}

// lookup finds name in ctx or the contexts it is a child of.
func lookup(ctx *hcl.EvalContext, name string) (cty.Value, bool) {
	for c := ctx; c != nil; c = c.Parent() {
		if v, ok := c.Variables[name]; ok {
			return v, true
		}
	}
	return cty.NilVal, false
}

// lacks reports whether v is a known object without the attribute name.
func lacks(v cty.Value, name string) bool {
	return v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() && !v.Type().HasAttribute(name)
}

// resourceRefs names the references of e to resources' attributes, the
// ones a provider computes; refs when there are none.
func resourceRefs(e hcl.Expression, ctx *hcl.EvalContext) string {
	var rs []string
	seen := map[string]bool{}
	for _, t := range e.Variables() {
		root := t.RootName()
		if !strings.Contains(root, "_") || !inScope(ctx, root) {
			continue
		}
		if v, diags := t.TraverseAbs(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
			continue // known from the configuration: not the provider's
		}
		if s := traversalString(t); !seen[s] {
			seen[s] = true
			rs = append(rs, s)
		}
	}
	if len(rs) == 0 {
		return refs(e)
	}
	return strings.Join(rs, ", ")
}

func refs(e hcl.Expression) string {
	var rs []string
	seen := map[string]bool{}
	for _, t := range e.Variables() {
		s := traversalString(t)
		if !seen[s] {
			seen[s] = true
			rs = append(rs, s)
		}
	}
	if len(rs) == 0 {
		return calls(e)
	}
	return strings.Join(rs, ", ")
}

// calls names the functions e calls whose results are not computed here,
// for a value that refers to nothing.
func calls(e hcl.Expression) string {
	var names []string
	seen := map[string]bool{}
	if n, ok := e.(hclsyntax.Node); ok {
		hclsyntax.VisitAll(n, func(n hclsyntax.Node) hcl.Diagnostics {
			if c, ok := n.(*hclsyntax.FunctionCallExpr); ok && notComputed[c.Name] && !seen[c.Name] {
				seen[c.Name] = true
				names = append(names, c.Name+"(…)")
			}
			return nil
		})
	}
	if len(names) == 0 {
		return "a function result"
	}
	return "the result of " + strings.Join(names, ", ") + ", not computed here"
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

// madeAtApply reports whether the value of e, not known statically, is
// made only of what the provider computes and of the workspace Terraform
// runs in: every reference it holds that is not known is to a managed
// resource (random_pet.this.id) or terraform.workspace, directly or
// through local values of in. Such a value is fixed when Terraform runs,
// so no string written elsewhere repeats it; a variable, data source or
// module output may bring one.
func madeAtApply(e hcl.Expression, ctx *hcl.EvalContext, in *instance, depth int) bool {
	if depth > 32 {
		return false
	}
	for _, t := range e.Variables() {
		if v, diags := t.TraverseAbs(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
			continue
		}
		root := t.RootName()
		switch {
		case root == "count", root == "terraform":
		case root == "local":
			name, ok := traversalAttr(t, 1)
			if !ok {
				return false
			}
			i := slices.IndexFunc(in.mod.locals, func(l local) bool { return l.name == name })
			if i < 0 || !madeAtApply(in.mod.locals[i].expr, ctx, in, depth+1) {
				return false
			}
		case strings.Contains(root, "_") && inScope(ctx, root):
		default:
			return false
		}
	}
	return true
}

// traversalAttr returns the name of step i of t when it is an attribute.
func traversalAttr(t hcl.Traversal, i int) (string, bool) {
	if len(t) <= i {
		return "", false
	}
	a, ok := t[i].(hcl.TraverseAttr)
	return a.Name, ok
}
