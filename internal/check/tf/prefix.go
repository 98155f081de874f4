package tf

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// prefixMark marks an unknown string whose prefix length its expression
// fixes (Unknown.Bits). It sits only on the values of resource attributes,
// never on values that other expressions read (resState.value unmarks
// them), so no operation can carry it to a value it does not describe.
type prefixMark struct{ bits int }

// prefixTail matches the end of a template that writes a prefix length:
// "${chomp(data.http.myip.response_body)}/32".
var prefixTail = regexp.MustCompile(`/([0-9]{1,3})$`)

// prefixLen returns the prefix length that every string of e's value that is
// not known statically has, if it is an address range at all: a template
// (or a format) whose text ends in "/N" after what it interpolates is a
// range of N bits or no range (the provider rejects "0.0.0.0/0/32"),
// wherever its address is. -1 when e's value holds no unknown string. ok is
// false when some unknown string of it may be anything: e is read so
// through lists, conditionals, the functions that only gather or choose
// among their arguments (try too), and the locals, module variables and
// outputs of a module called once read whole, and nothing else (a function
// that rewrites a string may change its length).
// With strict, e's known strings count too: an unknown value may be theirs.
func prefixLen(e hcl.Expression, ctx *hcl.EvalContext, in *instance, strict bool) (bits int, ok bool) {
	if v, diags := e.Value(ctx); !diags.HasErrors() && v.IsWhollyKnown() {
		if strict {
			return knownBits(v)
		}
		return -1, true
	}
	// merge combines what es fix. Where an unknown result may be the
	// value of a known one (a conditional whose condition is not known, a
	// function that may drop or reorder elements), every known string below
	// must be a range of the same length itself (strict); otherwise a
	// list's known elements stay elements of their own.
	merge := func(strict bool, es ...hclsyntax.Expression) (int, bool) {
		bits := -1
		for _, x := range es {
			b, ok := prefixLen(x, ctx, in, strict)
			if !ok || b >= 0 && bits >= 0 && b != bits {
				return 0, false
			}
			if b >= 0 {
				bits = b
			}
		}
		return bits, true
	}
	switch x := e.(type) {
	case *hclsyntax.TemplateExpr:
		if len(x.Parts) < 2 {
			return 0, false
		}
		lit, ok := x.Parts[len(x.Parts)-1].(*hclsyntax.LiteralValueExpr)
		if !ok || lit.Val.Type() != cty.String || lit.Val.IsNull() {
			return 0, false
		}
		return tailBits(lit.Val.AsString())
	case *hclsyntax.TemplateWrapExpr:
		return prefixLen(x.Wrapped, ctx, in, strict)
	case *hclsyntax.ParenthesesExpr:
		return prefixLen(x.Expression, ctx, in, strict)
	case *hclsyntax.TupleConsExpr:
		return merge(strict, x.Exprs...)
	case *hclsyntax.ConditionalExpr:
		return merge(true, x.TrueResult, x.FalseResult)
	case *hclsyntax.FunctionCallExpr:
		if x.Name == "format" && len(x.Args) > 0 && !x.ExpandFinal {
			// format("%s/32", var.ip): the format's text ends the result.
			f, diags := x.Args[0].Value(nil)
			if diags.HasErrors() || f.Type() != cty.String || !f.IsKnown() || f.IsNull() {
				return 0, false
			}
			return tailBits(f.AsString())
		}
		switch x.Name {
		case "try":
			// The value of one of its arguments, whatever its type
			// while that is not known.
			if x.ExpandFinal {
				return 0, false
			}
			return merge(true, x.Args...)
		case "tolist", "toset", "concat", "compact", "distinct", "flatten", "coalesce", "sort":
			if v, diags := x.Value(ctx); x.ExpandFinal || diags.HasErrors() || !v.IsKnown() && !v.Type().Equals(cty.String) {
				// A list not known statically may hold any number of
				// ranges.
				return 0, false
			}
			return merge(true, x.Args...)
		}
	case *hclsyntax.SplatExpr:
		// aws_subnet.app[*].cidr_block: each element is one subnet's.
		src, ok1 := x.Source.(*hclsyntax.ScopeTraversalExpr)
		each, ok2 := x.Each.(*hclsyntax.RelativeTraversalExpr)
		if ok1 && ok2 {
			if _, ok := each.Source.(*hclsyntax.AnonSymbolExpr); ok {
				return networkBits(append(slices.Clone(src.Traversal), each.Traversal...))
			}
		}
	case *hclsyntax.ScopeTraversalExpr:
		if bits, ok := networkBits(x.Traversal); ok {
			return bits, true
		}
		if len(x.Traversal) < 2 {
			return 0, false // a bare name: no reference Terraform takes
		}
		name, ok := x.Traversal[1].(hcl.TraverseAttr)
		if !ok {
			return 0, false
		}
		if x.Traversal.RootName() == "module" && len(x.Traversal) == 3 {
			// module.net.vpc_cidr: the output of a module called once.
			out, ok := x.Traversal[2].(hcl.TraverseAttr)
			if !ok {
				return 0, false
			}
			for _, cs := range in.calls {
				if cs.cb.name == name.Name && cs.mode == modeSingle && len(cs.insts) == 1 {
					if b, ok := cs.insts[0].outBits[out.Name]; ok {
						return b, true
					}
				}
			}
			return 0, false
		}
		if len(x.Traversal) != 2 {
			return 0, false
		}
		var bits map[string]int
		switch x.Traversal.RootName() {
		case "local":
			bits = in.localBits
		case "var":
			bits = in.varBits
		}
		if b, ok := bits[name.Name]; ok {
			return b, true
		}
	}
	return 0, false
}

// awsNetworkBits is the widest range AWS gives a VPC or a subnet: their
// IPv4 CIDR blocks are /16 to /28.
const awsNetworkBits = 16

// networkBits reads a reference to the IPv4 range of an AWS VPC or subnet,
// a resource's or a data source's (aws_vpc.main.cidr_block,
// data.aws_subnet.app[0].cidr_block): whatever its address, it is a range
// of at most awsNetworkBits, read as one of that size.
func networkBits(t hcl.Traversal) (int, bool) {
	if len(t) < 3 || t.IsRelative() {
		return 0, false
	}
	typ := t.RootName()
	rest := t[1:]
	if typ == "data" {
		a, ok := rest[0].(hcl.TraverseAttr)
		if !ok {
			return 0, false
		}
		typ, rest = a.Name, rest[1:]
	}
	switch typ {
	case "aws_vpc", "aws_subnet", "aws_default_vpc", "aws_default_subnet":
	default:
		return 0, false
	}
	if len(rest) < 2 {
		return 0, false
	}
	if _, ok := rest[0].(hcl.TraverseAttr); !ok {
		return 0, false
	}
	rest = rest[1:]
	if _, ok := rest[0].(hcl.TraverseIndex); ok {
		rest = rest[1:]
	}
	if len(rest) != 1 {
		return 0, false
	}
	if a, ok := rest[0].(hcl.TraverseAttr); ok && a.Name == "cidr_block" {
		return awsNetworkBits, true
	}
	return 0, false
}

// knownBits returns the prefix length every string of the known value v
// has: -1 when it holds none, ok false when one is not a range or two
// differ.
func knownBits(v cty.Value) (int, bool) {
	v, _ = v.UnmarkDeep()
	switch {
	case v.IsNull():
		return -1, true
	case v.Type() == cty.String:
		p, err := netip.ParsePrefix(v.AsString())
		if err != nil {
			return 0, false
		}
		return p.Bits(), true
	case v.CanIterateElements():
		bits := -1
		for it := v.ElementIterator(); it.Next(); {
			_, x := it.Element()
			b, ok := knownBits(x)
			if !ok || b >= 0 && bits >= 0 && b != bits {
				return 0, false
			}
			if b >= 0 {
				bits = b
			}
		}
		return bits, true
	}
	return -1, true // a number or a bool: no range
}

// tailBits reads the prefix length the text s ends with.
func tailBits(s string) (int, bool) {
	m := prefixTail.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 128 {
		return 0, false
	}
	return n, true
}

// withPrefixLen marks each unknown string of v, an attribute's value, with
// the prefix length its expression fixes; v unchanged when it fixes none.
func withPrefixLen(v cty.Value, e hcl.Expression, ctx *hcl.EvalContext, in *instance) cty.Value {
	if in == nil || v.IsWhollyKnown() {
		return v
	}
	bits, ok := prefixLen(e, ctx, in, false)
	if !ok || bits <= 0 {
		return v
	}
	return markUnknown(v, prefixMark{bits})
}

func markUnknown(v cty.Value, mark prefixMark) cty.Value {
	switch {
	case !v.IsKnown() && (v.Type() == cty.String || v.Type() == cty.DynamicPseudoType):
		return v.Mark(mark)
	case !v.IsKnown():
		// A list not known statically may hold any number of ranges.
		return v
	case v.IsNull() || v.IsMarked():
		return v
	case v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType():
		if v.Type().IsSetType() {
			// A set's elements cannot be told apart once marked.
			return v
		}
		elems := v.AsValueSlice()
		for i, x := range elems {
			elems[i] = markUnknown(x, mark)
		}
		if v.Type().IsListType() {
			return cty.ListVal(elems)
		}
		return cty.TupleVal(elems)
	}
	return v
}

// bitsOf returns the prefix length a value's marks fix; 0 when none.
func bitsOf(marks cty.ValueMarks) int {
	for m := range marks {
		if p, ok := m.(prefixMark); ok {
			return p.bits
		}
	}
	return 0
}
