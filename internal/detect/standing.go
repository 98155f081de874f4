package detect

import (
	"time"

	"moat/internal/flow"
)

// StandingRules are the rules whose alerts are conditions of the control
// plane's state, which stand until that state changes, however long: a
// node's firewall bypassed (its latest report), the policy widened (the
// policy applied). Their alerts are read back from the store by the
// server that answers for each (Config.Standing), after a restart and by
// the server that takes a stopped one's place, and posted to Alertmanager
// again for as long as they stand, so that none lapses there while it
// holds. Every other alert is an event measured in a window of records
// (a scan, a burst, a spike, a session opened) or of this server's own
// queue and budget (records_dropped, node_alerts_muted), which a restart
// empties: a server that restarts does not hold them, and they lapse at
// Alertmanager, firing again if their condition holds again.
var StandingRules = []string{RuleFirewallBypass, RulePolicyWidened}

// Standing is one condition of a standing rule that holds in the
// control plane's state, as the server that answers for it reads it.
type Standing struct {
	Rule string
	// Subject is what the alert is about: the node (RuleFirewallBypass),
	// PolicySubject (RulePolicyWidened).
	Subject string
	// Detail is what the audit entry that raises the alert carries: an
	// ActionNodeFirewall entry's details, an ActionPolicyApply entry's
	// widening marks (DetailWildcard, …) with its actor and target.
	Detail map[string]string
}

// holdStanding makes the alerts of the standing rules sent firing, and
// so posted again, those listed, and no others. A listed one this
// engine did not send (it restarted, or it answers now for what another
// server raised) is taken as sent without a notification (Slack and
// PagerDuty had it), only posted again where alerts are (Alertmanager);
// the alert of a condition not listed is dropped without a resolve:
// another server answers for it now, or it cleared, which the entry that
// cleared it resolved, wherever it was taken. An alert a node's budget
// held back stays held back.
func (e *Engine) holdStanding(now time.Time, list []Standing) {
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := map[string]bool{}
	for _, st := range list {
		rc, ok := e.cfg.Rules[st.Rule]
		if !ok || !rc.Enabled {
			continue
		}
		var a Alert
		switch st.Rule {
		case RuleFirewallBypass:
			a, ok = standingBypass(rc, now, st)
		case RulePolicyWidened:
			a, ok = policyAlert(rc, standingPolicy(now, st), StatusFiring), len(widening(st.Detail)) > 0
		default:
			ok = false
		}
		if !ok {
			continue
		}
		keep[a.Key] = true
		if _, ok := e.sent[a.Key]; ok || e.muted[a.Key] {
			continue
		}
		e.sent[a.Key] = a
		// Remembered as fired while there is room, so the entry that
		// raises it again raises nothing new here.
		switch st.Rule {
		case RuleFirewallBypass:
			if _, ok := e.bypassed[st.Subject]; !ok && len(e.bypassed) < rc.MaxSubjects {
				e.bypassed[st.Subject] = now
			}
		case RulePolicyWidened:
			if e.policies[st.Subject] == nil && len(e.policies) < rc.MaxSubjects {
				e.policies[st.Subject] = standingPolicy(now, st)
			}
		}
	}
	for key, a := range e.sent {
		if isStanding(a.Rule) && !keep[key] {
			delete(e.sent, key)
		}
	}
	for node := range e.bypassed {
		if !keep[DedupKey(RuleFirewallBypass, flow.PrintableText(node))] {
			delete(e.bypassed, node)
		}
	}
	for name := range e.policies {
		if !keep[DedupKey(RulePolicyWidened, name)] {
			delete(e.policies, name)
		}
	}
}

// isStanding reports whether rule is one of StandingRules.
func isStanding(rule string) bool {
	for _, r := range StandingRules {
		if r == rule {
			return true
		}
	}
	return false
}
