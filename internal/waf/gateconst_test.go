package waf

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestConstOpAnswersAsCoraza: for every operator constOp stands in for,
// and arguments of one or more constants among text, constOp answers as
// Coraza's operator does with the constants in TX, on numbers (equal,
// above, below, signed, padded), text and the empty value.
func TestConstOpAnswersAsCoraza(t *testing.T) {
	consts := map[string]string{"n": "10", "list": "|text/plain| |application/json|", "neg": "-3", "word": "abc", "empty": ""}
	args := []string{"%{tx.n}", "%{TX.list}", "%{tx.neg}", "x%{tx.word}y", "%{tx.empty}", "%{tx.n}%{tx.neg}"}
	var directives strings.Builder
	id := 1
	for name := range constOps {
		for _, a := range args {
			fmt.Fprintf(&directives, "SecRule ARGS \"@%s %s\" \"id:%d,phase:2,pass\"\n", name, a, id)
			id++
		}
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(directives.String()))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := corazaRules(w)
	if err != nil {
		t.Fatal(err)
	}
	tx := w.NewTransaction().(plugintypes.TransactionState)
	for k, v := range consts {
		tx.Variables().TX().Set(k, []string{v})
	}
	p := &gatePlan{constVals: consts}
	values := []string{"10", "9", "11", "-3", "-4", "-2", "abc", "xabcy", "", "text/plain", "|text/plain|", "application/json", "010", "+10", " 10", "1e3", "10-3"}
	for i := range rules.Len() {
		opv := rules.Index(i).FieldByName("operator").Elem()
		fn, data := strings.TrimPrefix(opv.FieldByName("Function").String(), "@"), opv.FieldByName("Data").String()
		op := exported(opv.FieldByName("Operator")).Interface().(plugintypes.Operator)
		c, ok := p.constOperator(fn, data)
		if !ok {
			t.Fatalf("@%s %s: no constant operator", fn, data)
		}
		if _, isConst := c.(constOp); !isConst || reflect.TypeOf(op) == reflect.TypeOf(c) {
			t.Fatalf("@%s %s: %T against %T", fn, data, c, op)
		}
		for _, v := range values {
			if got, want := c.Evaluate(nil, v), op.Evaluate(tx, v); got != want {
				t.Errorf("@%s %s on %q: %v, Coraza %v", fn, data, v, got, want)
			}
		}
	}
	if _, ok := p.constOperator("gt", "%{tx.missing}"); ok {
		t.Error("an argument naming a key that is no constant was expanded")
	}
	if _, ok := p.constOperator("contains", "%{tx.n}"); ok {
		t.Error("an operator constOp does not answer for was taken")
	}
}

// TestConstOpPlanned: at the defaults the gate asks CRS's comparisons
// on TX constants (the argument limits, the allowed lists) through
// constOp, links of chains included.
func TestConstOpPlanned(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	n := 0
	var visit func(r *gateRule)
	visit = func(r *gateRule) {
		if _, ok := r.op.(constOp); ok {
			n++
		}
		for i := range r.links {
			visit(&r.links[i])
		}
	}
	for _, list := range w.plan.after {
		for i := range list {
			visit(&list[i])
		}
	}
	if n < 3 {
		t.Errorf("%d rules or links asked through constOp, want CRS's argument limits and more", n)
	}
	t.Logf("%d rules or links asked through constOp", n)
}
