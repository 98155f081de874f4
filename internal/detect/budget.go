package detect

import (
	"strconv"
	"time"
)

// DefaultNodeAlerts is the alerts one node's records may send to the
// sinks at once, and again each hour, unless Config.NodeAlerts says
// otherwise.
const DefaultNodeAlerts = 50

// nodeBudget is what one node's records may still send to the sinks: a
// token bucket of Config.NodeAlerts, refilled at that many an hour.
type nodeBudget struct {
	tokens  float64
	last    time.Time // when tokens was last brought up to date
	muted   int       // alerts held back since the budget ran out
	firedAt time.Time // when the node_alerts_muted alert fired; zero if it has not
}

// refill brings b's tokens up to now.
func (b *nodeBudget) refill(now time.Time, n int) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(n), b.tokens+el.Hours()*float64(n))
	}
	b.last = now
}

// budget splits the alerts one node's record raised into those sent to
// the sinks and those kept as findings alone. A node runs services it
// reports on, truthfully or not: a compromised one can write records
// that raise an alert each (a scan from a new address every time, a
// revoked identity from another), enough to fill every sink's queue, so
// that alerts raised by other nodes' records are dropped behind them.
// So each node's records may send Config.NodeAlerts firing alerts at
// once and that many an hour; past it, the first held back raises one
// node_alerts_muted alert naming the node, and the resolved alerts of
// those held back are held back too; the window of an alert held back
// is told, so that another node's record about its subject raises it
// again under that node's budget. node is empty for what no node
// wrote (audit entries, the control plane's own records): no bound.
// Callers hold e.mu.
func (e *Engine) budget(now time.Time, node string, as []Alert) (send, quiet []Alert) {
	for _, a := range as {
		switch {
		case a.Status == StatusResolved && e.muted[a.Key]:
			delete(e.muted, a.Key)
			quiet = append(quiet, a)
		case node == "" || e.cfg.NodeAlerts < 0 || a.Status != StatusFiring:
			send = append(send, a)
		default:
			b := e.nodes[node]
			if b == nil {
				b = &nodeBudget{tokens: float64(e.cfg.NodeAlerts), last: now}
				e.nodes[node] = b
			}
			b.refill(now, e.cfg.NodeAlerts)
			if b.tokens >= 1 {
				b.tokens--
				delete(e.muted, a.Key)
				send = append(send, a)
				continue
			}
			e.muted[a.Key] = true
			for _, f := range e.fired {
				if f.key == a.Key {
					f.w.heldBack(f.name, node)
				}
			}
			if a.Rule == RuleFirewallBypass {
				// Not taken as sent: the node's next change of its
				// bypasses raises it again.
				delete(e.bypassed, node)
			}
			quiet = append(quiet, a)
			b.muted++
			e.mutedTotal++
			if b.firedAt.IsZero() {
				b.firedAt = now
				send = append(send, e.mutedAlert(node, b, StatusFiring, now))
			}
		}
	}
	return send, quiet
}

// sweepBudgets resolves the node_alerts_muted alert of every node whose
// budget is whole again, and forgets nodes with nothing to remember.
// Callers hold e.mu.
func (e *Engine) sweepBudgets(now time.Time) []Alert {
	var out []Alert
	for node, b := range e.nodes {
		b.refill(now, e.cfg.NodeAlerts)
		if b.tokens < float64(e.cfg.NodeAlerts) {
			continue
		}
		if !b.firedAt.IsZero() {
			out = append(out, e.mutedAlert(node, b, StatusResolved, now))
		}
		delete(e.nodes, node)
	}
	return out
}

// mutedAlert is node's node_alerts_muted alert.
func (e *Engine) mutedAlert(node string, b *nodeBudget, st Status, now time.Time) Alert {
	a := Alert{
		Key:      DedupKey(RuleNodeAlertsMuted, node),
		Rule:     RuleNodeAlertsMuted,
		Severity: SeverityHigh,
		Status:   st,
		Subject:  node,
		Summary:  "node " + node + "'s records raised more alerts than its budget; the rest are findings in the flow store, not sent",
		StartsAt: b.firedAt,
		Details: map[string]string{
			"budget": strconv.Itoa(e.cfg.NodeAlerts) + " an hour",
			"muted":  strconv.Itoa(b.muted),
		},
	}
	if st == StatusResolved {
		a.EndsAt = now
	}
	return a
}
