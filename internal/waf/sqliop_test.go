package waf

import (
	"net/url"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/libinjection-go"
)

// TestSQLiOpAnswersAsLibinjection: @detectSQLi answers as libinjection's
// IsSQLi (Coraza's operator is IsSQLi, its fingerprint captured as
// TX:0), on the regression and corpus inputs, asked first without
// capture (as the gate asks) and then with it (as Coraza does), in a
// transaction with a memo and in one without.
func TestSQLiOpAnswersAsLibinjection(t *testing.T) {
	register()
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(`
SecRuleEngine On
SecRule ARGS_GET:q "@detectSQLi" "id:1,phase:1,pass,capture,t:none,setvar:'tx.fp=%{tx.0}'"
`))
	if err != nil {
		t.Fatal(err)
	}
	inputs := rxInputs(t)
	if testing.Short() {
		inputs = inputs[:len(inputs)/8]
	}
	op := sqliOp{}
	matched := 0
	for _, in := range inputs {
		want, wantFP := libinjection.IsSQLi(in)
		if want {
			matched++
		}
		for _, memo := range []bool{true, false} {
			tx := w.NewTransaction()
			if memo {
				beginMemo(tx)
			}
			state := tx.(plugintypes.TransactionState)
			// The gate's question: no capture.
			if got := op.Evaluate(state, in); got != want {
				t.Errorf("%q (memo %v): %v uncaptured, libinjection %v", in, memo, got, want)
			}
			// Coraza's, through the rule: the fingerprint in TX:0.
			tx.ProcessURI("/?q="+url.QueryEscape(in), "GET", "HTTP/1.1")
			tx.ProcessRequestHeaders()
			fp := ""
			if got := state.Variables().TX().Get("fp"); len(got) > 0 {
				fp = got[0]
			}
			if want && fp != wantFP || !want && fp != "" {
				t.Errorf("%q (memo %v): captured %q, libinjection %v %q", in, memo, fp, want, wantFP)
			}
			if memo {
				endMemo(tx)
			}
			tx.Close()
		}
	}
	t.Logf("%d inputs, %d SQL injection", len(inputs), matched)
	if matched == 0 {
		t.Error("no input is SQL injection: the test compares nothing that matches")
	}
}
