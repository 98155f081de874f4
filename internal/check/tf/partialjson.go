package tf

import (
	"encoding/json"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// jsonMark sits on the unknown result of encoding a value only part of
// which is known statically: its text, each unknown part written as
// UnknownJSON (Unknown.JSON). A policy that names the account it is in by
// data.aws_caller_identity is otherwise not known at all, and who it admits
// could not be read.
type jsonMark struct{ text string }

// jsonOf returns the text a value's marks carry; "" when none.
func jsonOf(marks cty.ValueMarks) string {
	for m := range marks {
		if j, ok := m.(jsonMark); ok {
			return j.text
		}
	}
	return ""
}

// partialJSON marks unknown, the encoding of v, with v's text, unknown
// parts written as UnknownJSON, when v is an object, map, list or tuple.
func partialJSON(unknown, v cty.Value) cty.Value {
	v, _ = v.UnmarkDeep()
	if !v.IsKnown() || v.IsNull() || !(v.Type().IsObjectType() || v.Type().IsMapType() || v.Type().IsTupleType() || v.Type().IsListType()) {
		return unknown
	}
	b, err := json.Marshal(partialGo(v))
	if err != nil {
		return unknown
	}
	return unknown.Mark(jsonMark{string(b)})
}

// partialGo is v as Go values for encoding/json, UnknownJSON for each part
// not known statically.
func partialGo(v cty.Value) any {
	return goValue(v, func(cty.Value, cty.ValueMarks) any { return UnknownJSON })
}

// jsonEncodeFunc is Terraform's jsonencode; a value only part of which is
// known statically encodes to an unknown string that carries its text
// (partialJSON).
var jsonEncodeFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "val", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowDynamicType: true, AllowNull: true}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if args[0].IsWhollyKnown() {
			return stdlib.JSONEncodeFunc.Call(args)
		}
		return partialJSON(cty.UnknownVal(cty.String), args[0]), nil
	},
})

// templateJSON is the text of a template (a heredoc policy) that writes a
// JSON object, each interpolation not known statically written as
// UnknownJSON; "" when e is no such template.
func templateJSON(e hcl.Expression, ctx *hcl.EvalContext) string {
	t, ok := e.(*hclsyntax.TemplateExpr)
	if !ok {
		return ""
	}
	var b strings.Builder
	for _, p := range t.Parts {
		v, diags := p.Value(ctx)
		if !diags.HasErrors() {
			v, _ = v.UnmarkDeep()
		}
		if !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.Type().IsPrimitiveType() {
			v, err := convert.Convert(v, cty.String)
			if err == nil {
				b.WriteString(v.AsString())
				continue
			}
		}
		b.WriteString(UnknownJSON)
	}
	text := b.String()
	if !strings.HasPrefix(strings.TrimSpace(text), "{") || !json.Valid([]byte(text)) {
		return ""
	}
	return text
}
