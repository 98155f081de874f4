package tf

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// jsonExpr is an expression of a .tf.json file. Evaluated, its strings are
// templates, as in Terraform; they are read once into the native syntax,
// with meterSyntax's calls, so that their for expressions and
// interpolated parts are charged to maxWork as the native syntax's are
// (HCL's JSON reader parses and evaluates them on its own, unmetered).
// Whatever reads the expression's structure (a variable's type, a dynamic
// block's iterator) reads the JSON expression it wraps.
type jsonExpr struct {
	hcl.Expression
	native hclsyntax.Expression // nil until first evaluated
	diags  hcl.Diagnostics      // what reading it into native syntax found
}

// wrapJSON wraps e, an expression of a .tf.json file.
func wrapJSON(e hcl.Expression) hcl.Expression { return &jsonExpr{Expression: e} }

// UnwrapExpression gives the JSON expression to hcl.ExprList, ExprMap,
// ExprAsKeyword and the type readers.
func (e *jsonExpr) UnwrapExpression() hcl.Expression { return e.Expression }

// Value evaluates e; with no context (no interpolation), its strings are
// taken as they are written.
func (e *jsonExpr) Value(ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	if ctx == nil {
		return e.Expression.Value(nil)
	}
	if e.native == nil && e.diags == nil {
		e.native, e.diags = nativeJSON(e.Expression)
		if !e.diags.HasErrors() {
			hclsyntax.VisitAll(e.native, resourceAlias)
			meterSyntax(e.native)
		}
	}
	if e.diags.HasErrors() {
		return cty.DynamicVal, e.diags
	}
	return e.native.Value(ctx)
}

// nativeJSON reads a JSON expression as HCL's JSON reader evaluates it:
// arrays as tuples, objects as objects whose keys are templates too,
// strings as templates, and numbers, bools and null as they are.
func nativeJSON(e hcl.Expression) (hclsyntax.Expression, hcl.Diagnostics) {
	r := e.Range()
	if l, ok := e.(interface{ ExprList() []hcl.Expression }); ok {
		if items := l.ExprList(); items != nil {
			t := &hclsyntax.TupleConsExpr{SrcRange: r, OpenRange: r}
			var diags hcl.Diagnostics
			for _, it := range items {
				x, d := nativeJSON(it)
				diags = append(diags, d...)
				t.Exprs = append(t.Exprs, x)
			}
			return t, diags
		}
	}
	if m, ok := e.(interface{ ExprMap() []hcl.KeyValuePair }); ok {
		if kvs := m.ExprMap(); kvs != nil {
			o := &hclsyntax.ObjectConsExpr{SrcRange: r, OpenRange: r}
			var diags hcl.Diagnostics
			for _, kv := range kvs {
				k, d := nativeJSON(kv.Key)
				diags = append(diags, d...)
				v, d := nativeJSON(kv.Value)
				diags = append(diags, d...)
				o.Items = append(o.Items, hclsyntax.ObjectConsItem{
					KeyExpr: &hclsyntax.ObjectConsKeyExpr{Wrapped: k, ForceNonLiteral: true}, ValueExpr: v})
			}
			return o, diags
		}
	}
	v, diags := e.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
		return &hclsyntax.LiteralValueExpr{Val: v, SrcRange: r}, diags
	}
	// Past the opening quote, as HCL's JSON reader places it.
	start := hcl.Pos{Line: r.Start.Line, Column: r.Start.Column + 1, Byte: r.Start.Byte + 1}
	return hclsyntax.ParseTemplate([]byte(v.AsString()), r.Filename, start)
}
