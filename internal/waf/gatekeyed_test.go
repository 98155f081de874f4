package waf

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
)

// TestGateKeyedValues: a keyed selector (REQUEST_HEADERS:User-Agent)
// reads the values Coraza's FindString returns for its key, picked out
// of the collection's list (gateState.values): keys that are equal only
// once lower-cased, by ASCII or by Unicode (the Kelvin sign lower-cases
// to "k"), are the key's; keys equal by case folding alone (U+017F,
// the long s, folds to "s" but lower-cases to itself) and keys of
// another length are not; a collection holding more values than
// keyMaxScan is looked up instead. Every keyed selector of the rule set
// and a few of the test's own are compared with FindString on requests
// that hold such keys.
func TestGateKeyedValues(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The rule set's selectors and the test's, read as the gate reads
	// them.
	p := gatePlan{selectors: slices.Clip(w.plan.selectors), keyNeed: slices.Clip(w.plan.keyNeed), nodes: w.plan.nodes}
	for _, key := range []string{"kelvin", "KELVIN", "s-id", "User-Agent", "x-many-7", "foo", "Foo"} {
		for _, v := range []variables.RuleVariable{variables.RequestHeaders, variables.ArgsGet, variables.Args, variables.RequestCookies} {
			p.selectors = append(p.selectors, gateSelector{v: v, key: key, lower: strings.ToLower(key)})
			p.keyNeed = append(p.keyNeed, nil)
		}
	}
	type header struct{ k, v string }
	requests := [][]header{
		{{"User-Agent", "a"}, {"user-agent", "b"}, {"USER-AGENT", "c"}, {"User-Agent-X", "d"}},
		{{"\u212Aelvin", "kelvin sign"}, {"kelvin", "plain"}, {"KELVIN", "upper"}, {"kelvi", "short"}},
		{{"\u017F-id", "long s"}, {"S-Id", "s"}, {"s-ıd", "dotless i"}},
		{{"Cookie", "foo=1; Foo=2; FOO=3; \u212Aelvin=4; fo=5"}},
	}
	var many []header
	for i := range keyMaxScan + 8 {
		many = append(many, header{fmt.Sprintf("X-Many-%d", i), "v"})
	}
	requests = append(requests, many)
	compared := 0
	for n, hs := range requests {
		tx := w.Begin(nil)
		ct := tx.tx
		ct.ProcessURI("/?foo=1&Foo=2&FOO=3&%E2%84%AAelvin=4&fooo=5", "GET", "HTTP/1.1")
		for _, h := range hs {
			ct.AddRequestHeader(h.k, h.v)
		}
		ct.ProcessRequestHeaders()
		ts := ct.(plugintypes.TransactionState)
		s := &gateState{valIdx: map[strID]int{}}
		s.reset(&p, ts)
		for k, sel := range p.selectors {
			if sel.key == "" || sel.keyRx != nil {
				continue
			}
			keyed, ok := ts.Collection(sel.v).(collection.Keyed)
			if !ok {
				continue
			}
			var want []string
			for _, md := range keyed.FindString(sel.key) {
				want = append(want, md.Value())
			}
			var got []string
			for _, vi := range s.values(k) {
				got = append(got, s.vals[vi])
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("request %d, %s:%s: the gate reads %q, Coraza %q", n, sel.v.Name(), sel.key, got, want)
			}
			if len(want) > 0 {
				compared++
			}
		}
		tx.Close()
	}
	if compared < 20 {
		t.Errorf("only %d selectors with values compared", compared)
	}
}

// TestSameKey: sameKey is strings.ToLower(k) == lower.
func TestSameKey(t *testing.T) {
	keys := []string{"", "a", "A", "ab", "Ab", "user-agent", "User-Agent", "USER-AGENT", "user-agenT", "user_agent",
		"\u212Aelvin", "kelvin", "Kelvin", "\u017F", "s", "S", "İ", "i", "ı", "[", "{", "@", "`", "\xff", "a\xffb"}
	for _, k := range keys {
		for _, other := range keys {
			lower := strings.ToLower(other)
			if got, want := sameKey(k, lower), strings.ToLower(k) == lower; got != want {
				t.Errorf("sameKey(%q, %q) = %v, want %v", k, lower, got, want)
			}
		}
	}
}
