package waf

import "github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

// sqliOp is moat's @detectSQLi, in place of Coraza's: libinjection's
// IsSQLi, its fingerprint captured as TX:0 on a match, as Coraza's
// operator does, with the answer remembered for the transaction
// (txmemo.go). The gate asks @detectSQLi of a value before Coraza asks
// it again with capture on, and CRS's 942100 reads ARGS_NAMES, where a
// name is one value per argument of that name: each is then answered
// once. TestSQLiOpAnswersAsLibinjection checks it against IsSQLi.
type sqliOp struct{}

func newSQLiOp(plugintypes.OperatorOptions) (plugintypes.Operator, error) { return sqliOp{}, nil }

func (sqliOp) Evaluate(tx plugintypes.TransactionState, value string) bool {
	res, fp := memoOf(tx).isSQLi(value)
	if !res {
		return false
	}
	tx.CaptureField(0, fp)
	return true
}
