package waf

import (
	"errors"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// Counted variables above zero. A rule on &VARIABLE is asked the count
// of the values Coraza's GetField leaves after the rule's exceptions:
// those of SecRuleUpdateTarget* (on the rule's variable, at load) and
// those a ctl:ruleRemoveTarget* adds for the transaction. The gate reads
// values without exceptions, so it used to decide such a rule only when
// the count was 0 (none to take away), and CRS's quiet count rules were
// Coraza's on every request that had the header: 920280 (&Host @eq 0),
// 920620 (&Content-Type @gt 1) and, on every POST, 920180's third link
// (&Content-Length @eq 0), each a full evaluation for a rule that does
// nothing.
//
// A rule whose counted variables carry no exception, and whose rule no
// ctl of the set may remove a target of (Coraza's ctl, or the resolver's
// targetRemoval that stands for one, each of any link of any rule), is
// counted by Coraza exactly as the gate counts: the same lookup (whole
// collection, key, key regex) with nothing taken out. Its operator is
// asked the count as Coraza writes it. A ctl the gate cannot read
// reaches every rule (ctlHits), so it leaves every count to Coraza.

// targetedRules returns the IDs of the rules a ctl of the set may
// remove a target of.
func targetedRules(all []*rrule) (map[int]bool, error) {
	out := map[int]bool{}
	for _, r := range all {
		for _, ctl := range r.ctlRm {
			if ctl.rules {
				continue
			}
			for _, o := range all {
				if o.id > 0 && ctlHits(ctl.kind, ctl.target, o) {
					out[o.id] = true
				}
			}
		}
		for link := r.v; ; {
			acts := link.FieldByName("actions")
			for j := range acts.Len() {
				a := acts.Index(j)
				if a.FieldByName("Name").String() != "ctl" {
					continue
				}
				fn, ok := exported(a.FieldByName("Function")).Interface().(plugintypes.Action)
				if !ok || fn == nil {
					return nil, errors.New("waf: gate: Coraza rule actions not found")
				}
				if tr, ok := fn.(*targetRemoval); ok {
					for _, id := range tr.ids {
						out[id] = true
					}
				}
			}
			next := link.FieldByName("Chain")
			if next.IsNil() {
				break
			}
			link = next.Elem()
		}
	}
	return out, nil
}
