package waf

import (
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestPMEngines: on every phrase list of CRS at paranoia 4 and moat's
// rules, what pmOp answers is what Coraza's @pm answers (the library's
// leftmost-longest search with its DFA, as Coraza builds it), over the
// values of CRS's regression tests and the committed corpus (raw,
// URL-decoded and lower-cased): for rules that do not capture, whether a
// phrase occurs; for rules that capture, the same fields captured.
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
		coraza := buildPM(o.phrases, true)
		for _, in := range inputs {
			checked++
			var want []string
			if len(in) >= o.minLen {
				it := coraza.Iter(in)
				for m := it.Next(); m != nil && len(want) < 10; m = it.Next() {
					want = append(want, in[m.Start():m.End()])
				}
			}
			if len(want) > 0 {
				found++
			}
			if got := o.Evaluate(st, in); got != (len(want) > 0) {
				t.Errorf("phrase list %.60q on %q: %v, Coraza's search %v", k, in, got, len(want) > 0)
				return false
			}
			cap := &capturing{TransactionState: st}
			got := o.Evaluate(cap, in)
			if got != (len(want) > 0) || !slices.Equal(cap.fields, want) {
				t.Errorf("phrase list %.60q on %q, capturing: %v %q, Coraza's search %q", k, in, got, cap.fields, want)
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

// capturing is a transaction's state as a rule that captures sees it,
// recording the fields captured.
type capturing struct {
	plugintypes.TransactionState
	fields []string
}

func (c *capturing) Capturing() bool { return true }

func (c *capturing) CaptureField(i int, v string) {
	if i != len(c.fields) {
		panic("capture out of order")
	}
	c.fields = append(c.fields, v)
}

// TestPMCaptureNoPhrase: a rule that captures costs a value holding none
// of its phrases no allocation (the table answers; the library's search,
// which copies the value and allocates its iterator, runs only where a
// phrase is).
func TestPMCaptureNoPhrase(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tx := w.waf.NewTransaction()
	defer tx.Close()
	st := tx.(plugintypes.TransactionState)
	value := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
	lists := 0
	pmCache.Range(func(k, v any) bool {
		o := v.(*pmOp)
		cap := &capturing{TransactionState: st}
		if o.dfa == nil || o.Evaluate(cap, value) {
			return true
		}
		lists++
		if n := testing.AllocsPerRun(100, func() { o.Evaluate(cap, value) }); n != 0 {
			t.Errorf("phrase list %.60q, capturing, on a value without its phrases: %v allocations, want none", k, n)
		}
		return true
	})
	if lists < 10 {
		t.Fatalf("%d phrase lists checked: want CRS's", lists)
	}
}
