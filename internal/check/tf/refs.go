package tf

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
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

// undeclaredVar names the first reference of e to an input variable the
// module does not declare ("" when none): Terraform refuses it.
func undeclaredVar(e hcl.Expression, ctx *hcl.EvalContext) string {
	for _, t := range e.Variables() {
		if t.RootName() != "var" || len(t) < 2 {
			continue
		}
		name, ok := t[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		for c := ctx; c != nil; c = c.Parent() {
			v, ok := c.Variables["var"]
			if !ok {
				continue
			}
			if v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() && !v.Type().HasAttribute(name.Name) {
				return "var." + name.Name
			}
			break
		}
	}
	return ""
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
		return "a function result"
	}
	return strings.Join(rs, ", ")
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
