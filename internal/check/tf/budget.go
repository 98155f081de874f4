package tf

import (
	"errors"
	"math"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxWork bounds what evaluating one configuration may build, in bytes of
// string and elementCost per element, summed over every function's
// arguments and result, every collection a for expression walks, every
// part joined into a template and every value a local, variable, output
// or resource instance is given. Values nest and share, so a few lines can
// describe more than any machine holds (setproduct of three ranges, a
// local doubled thirty times, format("%0999999999d", 1), [for a in l :
// [for b in l : …]]); past the bound every further evaluation fails, and
// what it would have set is not known statically, reported and read at
// its worst.
const maxWork = 1 << 26

// elementCost is what one element of a collection (or attribute of an
// object), or a number or bool, counts for against maxWork: roughly the
// bytes it takes in memory.
const elementCost = 64

// errWork is what an evaluation past maxWork fails with.
var errWork = errors.New("the configuration builds more than moat check evaluates (a value too large, or one built too many times)")

// budget is what is left of maxWork for one load.
type budget struct {
	left int64
}

func newBudget() *budget { return &budget{left: maxWork} }

// spent reports whether the budget is spent: evaluating again cannot
// settle more.
func (b *budget) spent() bool { return b.left < 0 }

// take spends n, failing once the budget is spent. What is more than is
// left fails without spending it: it was not built, so the expression
// that asked for it alone is not evaluated.
func (b *budget) take(n float64) error {
	if b.left < 0 || n > float64(b.left) {
		return errWork
	}
	b.left -= int64(n)
	return nil
}

// charge spends what v holds, counting shared values once per place they
// appear, walking no further than what is left.
func (b *budget) charge(v cty.Value) error {
	if b.left < 0 {
		return errWork
	}
	v, _ = v.Unmark()
	if !v.IsKnown() || v.IsNull() {
		return b.take(elementCost)
	}
	t := v.Type()
	switch {
	case t == cty.String:
		if err := b.take(elementCost + float64(len(v.AsString()))); err != nil {
			// Built already: what it took is spent.
			b.left = -1
			return err
		}
		return nil
	case t == cty.Number:
		// Written out (in a template, by tostring), a number takes a
		// digit per power of ten.
		exp := v.AsBigFloat().MantExp(nil)
		return b.take(elementCost + math.Abs(float64(exp))*math.Log10(2))
	case t.IsCollectionType() || t.IsTupleType() || t.IsObjectType():
		if err := b.take(elementCost); err != nil {
			return err
		}
		if n := v.LengthInt(); float64(n)*elementCost > float64(b.left) {
			// A long list of small values is refused before it is walked.
			return errWork
		}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			if err := b.charge(e); err != nil {
				// Walked this far: what it took is spent.
				b.left = -1
				return err
			}
		}
		return nil
	}
	return b.take(elementCost)
}

// meter wraps every function of fns so that its arguments are charged
// before it runs and its result after, and the result of those that build
// more than their arguments hold (setproduct, format's widths, indent,
// replace) before it is built.
func (b *budget) meter(fns map[string]function.Function) {
	for name, f := range fns {
		// try and can take expressions, whose own parts are metered.
		if name != "try" && name != "can" {
			fns[name] = b.meterFunc(name, f)
		}
	}
	fns[meterName] = b.meterFunc0()
}

func (b *budget) meterFunc(name string, f function.Function) function.Function {
	return function.New(&function.Spec{
		Description: f.Description(),
		Params:      f.Params(),
		VarParam:    f.VarParam(),
		// The arguments, and what the result may hold beyond them, are
		// charged before the result's type is worked out, which may
		// already walk them (concat's of tuples).
		Type: func(args []cty.Value) (cty.Type, error) {
			for _, a := range args {
				if err := b.charge(a); err != nil {
					return cty.DynamicPseudoType, err
				}
			}
			if err := b.take(resultBound(name, args)); err != nil {
				return cty.DynamicPseudoType, err
			}
			return f.ReturnTypeForValues(args)
		},
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			v, err := f.Call(args)
			if err != nil {
				return v, err
			}
			if err := b.charge(v); err != nil {
				return cty.DynamicVal, err
			}
			return v, nil
		},
	})
}

// resultBound is, for a function whose result may hold far more than its
// arguments, how much it may hold; 0 for the others.
func resultBound(name string, args []cty.Value) float64 {
	known := func(v cty.Value) bool { return v.IsWhollyKnown() && !v.IsNull() }
	switch name {
	case "setproduct":
		n := 1.0
		for _, a := range args {
			if !known(a) || !a.CanIterateElements() {
				return 0
			}
			n *= float64(a.LengthInt())
		}
		return n * float64(len(args)) * elementCost
	case "format", "formatlist":
		if len(args) == 0 || !known(args[0]) || args[0].Type() != cty.String {
			return 0
		}
		w := verbWidths(args[0].AsString())
		if name == "formatlist" {
			n := 1.0
			for _, a := range args[1:] {
				if known(a) && a.CanIterateElements() {
					n = math.Max(n, float64(a.LengthInt()))
				}
			}
			w *= n
		}
		return w
	case "indent":
		if len(args) != 2 || !known(args[0]) || !known(args[1]) || args[0].Type() != cty.Number || args[1].Type() != cty.String {
			return 0
		}
		n, _ := args[0].AsBigFloat().Float64()
		return math.Abs(n) * float64(1+strings.Count(args[1].AsString(), "\n"))
	case "replace":
		if len(args) != 3 {
			return 0
		}
		for _, a := range args {
			if !known(a) || a.Type() != cty.String {
				return 0
			}
		}
		s, repl := args[0].AsString(), args[2].AsString()
		return float64(len(s)+1) * float64(len(repl))
	}
	return 0
}

// verbWidths sums the widths and precisions format's verbs in f ask for:
// "%0999999999d" pads one number to a gigabyte.
func verbWidths(f string) float64 {
	sum := 0.0
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		n := 0.0
		for i++; i < len(f) && strings.IndexByte("%vdfgesqtbxXoOcUT", f[i]) < 0 && f[i] != '\n'; i++ {
			if c := f[i]; c >= '0' && c <= '9' {
				n = n*10 + float64(c-'0')
			} else {
				sum, n = sum+n, 0
			}
		}
		sum += n
	}
	return sum
}

// meterName names the function that charges its argument to the budget
// and returns it; meterSyntax puts a call to it around every for
// expression's collection (so that nested loops pay for each round) and
// every template's interpolated part (so that the text they join is paid
// for before it is written). No configuration can call it: the name is no
// identifier.
const meterName = "evaluation bound"

func (b *budget) meterFunc0() function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true,
			AllowDynamicType: true, AllowMarked: true}},
		Type: func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if err := b.charge(args[0]); err != nil {
				return cty.DynamicVal, err
			}
			return args[0], nil
		},
	})
}

// ctx is the context for expressions that may refer to nothing (variable
// defaults, variables files): the metering function alone.
func (b *budget) ctx() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{meterName: b.meterFunc0()}}
}

func meterCall(e hclsyntax.Expression) hclsyntax.Expression {
	r := e.Range()
	return &hclsyntax.FunctionCallExpr{Name: meterName, Args: []hclsyntax.Expression{e},
		NameRange: r, OpenParenRange: r, CloseParenRange: r}
}

// meterSyntax puts the calls to meterName under n.
func meterSyntax(n hclsyntax.Node) {
	var nodes []hclsyntax.Node
	hclsyntax.VisitAll(n, func(n hclsyntax.Node) hcl.Diagnostics {
		nodes = append(nodes, n)
		return nil
	})
	for _, n := range nodes {
		switch x := n.(type) {
		case *hclsyntax.ForExpr:
			x.CollExpr = meterCall(x.CollExpr)
		case *hclsyntax.TemplateExpr:
			for i, p := range x.Parts {
				if _, lit := p.(*hclsyntax.LiteralValueExpr); !lit {
					x.Parts[i] = meterCall(p)
				}
			}
		}
	}
}
