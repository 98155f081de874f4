package waf

import (
	"slices"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// testMatch is a match of a variable's key, for originals.
type testMatch struct {
	v   variables.RuleVariable
	key string
}

func (m testMatch) Variable() variables.RuleVariable { return m.v }
func (m testMatch) Key() string                      { return m.key }
func (m testMatch) Value() string                    { return "" }
func (m testMatch) Message() string                  { return "" }
func (m testMatch) Data() string                     { return "" }
func (m testMatch) ChainLevel() int                  { return 0 }

// TestOriginalsSeen: the context pass's memo answers as originals for
// every variable and key, asked in any order and again: a key or a
// variable asked before another is not answered for it.
func TestOriginalsSeen(t *testing.T) {
	w, err := coraza.NewWAF(coraza.NewWAFConfig())
	if err != nil {
		t.Fatal(err)
	}
	tx := w.NewTransaction()
	defer tx.Close()
	tx.ProcessURI("/p?q=1&r=2&q=3", "GET", "HTTP/1.1")
	tx.AddRequestHeader("X-Q", "header")
	v := tx.(plugintypes.TransactionState).Variables()
	v.ArgsPath().Add("q", "4")
	asks := []testMatch{
		{variables.Args, "q"}, {variables.ArgsGet, "r"}, {variables.ArgsNames, "q"},
		{variables.RequestHeaders, "x-q"}, {variables.Args, "q"}, {variables.ArgsGet, "r"},
		{variables.MatchedVars, "ARGS:q"}, {variables.RequestHeaders, "x-q"}, {variables.Args, "r"},
	}
	var seen originalsSeen
	for _, m := range asks {
		got, gotOK := seen.of(v, m)
		want, wantOK := originals(v, m)
		got = slices.Clone(got)
		slices.Sort(got)
		slices.Sort(want)
		if gotOK != wantOK || !slices.Equal(got, want) {
			t.Errorf("%s:%s: %q %v, originals %q %v", m.v.Name(), m.key, got, gotOK, want, wantOK)
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d answers kept for 6 distinct variables and keys", len(seen))
	}
}
