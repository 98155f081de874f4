package detect

import (
	"strconv"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
)

// RuleFirewallBypass: an audit entry ActionNodeFirewall, which the control
// plane writes when the rules of other nftables tables that take packets
// round a node's host firewall (moat's mark set, notrack beyond
// loopback), as its agent reports them, change. One with DetailBypassRules
// above zero fires, unless the node's alert is firing already; one with
// zero resolves it. Subject: the node. The entry is in the node's turn of
// the queue and its alert within the node's budget (Config.NodeAlerts),
// as its records are.
const RuleFirewallBypass = "firewall_bypass"

// ActionNodeFirewall is the audit action of a change of a node's firewall
// bypasses.
const ActionNodeFirewall = "node.firewall"

// Detail keys of an ActionNodeFirewall entry that the rule reads.
const (
	// DetailBypassRules is how many rules take packets round the node's
	// firewall, all told.
	DetailBypassRules = "bypass_rules"
)

// firewallDetails are the details of the entry the alert carries.
var firewallDetails = []string{DetailBypassRules, "mark", "notrack", "rules"}

// roleNode is the role of an audit entry of a node's call: its target is
// the node.
const roleNode = "node"

// auditNode is the node an audit entry is of, "" for one of no node.
func auditNode(en *audit.Entry) string {
	if en.Role == roleNode {
		return en.Target
	}
	return ""
}

// observeFirewall raises or resolves a node's firewall_bypass alert.
// Callers hold e.mu.
func (e *Engine) observeFirewall(now time.Time, en *audit.Entry) []Alert {
	rc, ok := e.cfg.Rules[RuleFirewallBypass]
	node := auditNode(en)
	if !ok || !rc.Enabled || en.Action != ActionNodeFirewall || en.Result != "ok" || node == "" {
		return nil
	}
	n, err := strconv.Atoi(en.Detail[DetailBypassRules])
	if err != nil || n < 0 {
		return nil
	}
	firedAt, active := e.bypassed[node]
	a := bypassAlert(rc, node, en.Detail)
	if n == 0 {
		// Resolved even when this engine did not see it fire (another
		// server of the cluster took that report, or this one started
		// since): the entry is written only when the node's bypasses
		// change, so none left means they cleared.
		delete(e.bypassed, node)
		if !active {
			firedAt = now
		}
		a.Status, a.StartsAt, a.EndsAt = StatusResolved, firedAt, now
		a.Summary = "node " + a.Subject + "'s host firewall: no rule of another nftables table takes packets round it any more"
		return []Alert{a}
	}
	if active {
		return nil
	}
	// Remembered while there is room; past it the alert fires at each
	// change, folded into one by its dedup key.
	if len(e.bypassed) < rc.MaxSubjects {
		e.bypassed[node] = now
	}
	return []Alert{firingBypass(a, now, n)}
}

// bypassAlert is node's firewall_bypass alert, with the details of its
// report, printable, and no status yet.
func bypassAlert(rc RuleConfig, node string, detail map[string]string) Alert {
	a := Alert{Key: DedupKey(RuleFirewallBypass, flow.PrintableText(node)), Rule: RuleFirewallBypass, Severity: rc.Severity,
		Subject: flow.PrintableText(node), Details: map[string]string{}}
	for _, k := range firewallDetails {
		if v, ok := detail[k]; ok {
			a.Details[k] = flow.PrintableText(v)
		}
	}
	return a
}

// firingBypass is a, firing since now for n bypasses.
func firingBypass(a Alert, now time.Time, n int) Alert {
	a.Status, a.StartsAt = StatusFiring, now
	a.Summary = "node " + a.Subject + "'s host firewall is bypassed by rules of other nftables tables: " + strconv.Itoa(n)
	return a
}

// standingBypass is the firewall_bypass alert of st, a node's latest
// report, firing since now; false when the report lists no bypass.
func standingBypass(rc RuleConfig, now time.Time, st Standing) (Alert, bool) {
	n, err := strconv.Atoi(st.Detail[DetailBypassRules])
	if err != nil || n <= 0 {
		return Alert{}, false
	}
	return firingBypass(bypassAlert(rc, st.Subject, st.Detail), now, n), true
}
