package waf

import (
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestPMEngines: on every phrase list of CRS at paranoia 4 and moat's
// rules, the automaton that answers rules that do not capture agrees with
// the leftmost-longest search Coraza's @pm runs, over the values of CRS's
// regression tests and the committed corpus (raw, URL-decoded and
// lower-cased).
func TestPMEngines(t *testing.T) {
	w, err := New(Config{Paranoia: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tx := w.waf.NewTransaction()
	defer tx.Close()
	st := tx.(plugintypes.TransactionState) // not capturing
	inputs := rxInputs(t)
	if testing.Short() {
		inputs = inputs[:len(inputs)/8]
	}
	lists, checked, found, cells, general := 0, 0, 0, 0, 0
	pmCache.Range(func(k, v any) bool {
		o := v.(*pmOp)
		lists++
		if o.dfa != nil {
			cells += len(o.dfa.step)
		}
		if o.dfa == nil && !o.always {
			general++ // too large for a table: the library answers
		}
		for _, in := range inputs {
			checked++
			want := len(in) >= o.minLen && o.matcher.Iter(in).Next() != nil
			got := o.Evaluate(st, in)
			if want {
				found++
			}
			if got != want {
				t.Errorf("phrase list %.60q on %q: %v, Coraza's search %v", k, in, got, want)
				return false
			}
		}
		return true
	})
	if lists < 10 || general > lists/4 {
		t.Fatalf("%d phrase lists, %d without a table: want CRS's, most with one", lists, general)
	}
	t.Logf("%d phrase lists (%d without a table; %d KiB of tables), %d list-input pairs, %d with a phrase", lists, general, cells*4>>10, checked, found)
}
