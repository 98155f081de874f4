// Package detect watches moat's flow records, security events and audit
// entries for signs of attack or risky change, and delivers the alerts it
// raises to Slack, PagerDuty, Alertmanager-compatible receivers and plain JSON
// webhooks.
//
// An Engine is a flow.Writer: the data plane hands it records and never
// waits, because Write only enqueues (a full queue drops the record and
// counts it). Engine.Run evaluates the rules in time windows measured by an
// injected clock and passes every alert, firing or resolved, to a Notifier,
// normally a Dispatcher, which queues per sink and retries with backoff.
//
// Every alert carries a stable dedup key: the same condition on the same
// subject always yields the same key, so receivers (PagerDuty's dedup_key,
// Alertmanager's fingerprint) fold repeats into one incident, and the resolve
// sent when the condition clears closes it.
package detect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Log keys.
const (
	logSink     = "sink"
	logKey      = "key"
	logAttempt  = "attempt"
	logErr      = "err"
	logRule     = "rule"
	logStatus   = "status"
	logSeverity = "severity"
	logCount    = "count"
	logFailed   = "failed"
	logSince    = "since"
)

// Severity ranks an alert. The zero value is not a severity; configs name one
// of the constants below.
type Severity string

// Severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// ParseSeverity returns the severity named s.
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(s); v {
	case SeverityInfo, SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return v, nil
	}
	return "", fmt.Errorf("unknown severity %q (want info, low, medium, high or critical)", s)
}

// Status says whether an alert's condition holds.
type Status string

// Alert statuses, named as Alertmanager names them.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Rule names, used in dedup keys, labels and configs. Each comment says
// which records the rule reads and what its subject (the part of the dedup
// key after the rule) is. A source is named by its SPIFFE ID (Endpoint.UID),
// else its service name, else its IP.
//
// No rule reads a record with reason code flow.ReasonNotReady: an agent
// still starting refused what it could not serve yet, a start-up state and
// no decision about the peer.
const (
	// RuleScan: Network Activity with verdict deny; fires when one source
	// reaches Threshold distinct destinations (endpoint:port) within Window.
	// Subject: the source.
	RuleScan = "scan"
	// RuleDenyBurst: Network Activity with verdict deny from any source;
	// Threshold within Window. Subject: "all".
	RuleDenyBurst = "deny_burst"
	// RuleHandshake: any record with Unmapped.Kind "handshake" and a reason
	// code (flow.ReasonExpired, flow.ReasonUnknownAuthority, …) other than
	// flow.ReasonRevoked. Subject: the source IP; the identity the last
	// peer claimed, unverified (flow.Moat.Claimed), is the fact
	// last_claimed.
	RuleHandshake = "handshake_failures"
	// RuleRevoked: any record with Unmapped.ReasonCode flow.ReasonRevoked (a
	// handshake or a new stream refused because the identity is revoked).
	// Subject: the identity presented: verified (a stream's source), else
	// the one a refused handshake claimed (flow.Moat.Claimed, also the
	// fact claimed).
	RuleRevoked = "revoked_identity"
	// RuleNewEdge: Network Activity with verdict allow between two named
	// services not seen before (after the learning period). Edges are
	// remembered for the engine's life, at most MaxSubjects of them.
	// Subject: "src -> dst".
	RuleNewEdge = "new_edge"
	// RuleWAFSpike: records with Unmapped.Kind "waf" that were blocked
	// (action denied, disposition blocked or verdict deny). Subject: the
	// client IP.
	RuleWAFSpike = "waf_spike"
	// RulePolicyWidened: an audit entry "policy.apply" with result "ok"
	// whose Detail carries a widening mark (see DetailWildcard). Subject:
	// PolicySubject. Resolved by the next apply without a mark, one of
	// the StandingRules.
	RulePolicyWidened = "policy_widened"
	// RuleAuditWouldDeny: Network Activity with verdict audit. Subject:
	// "src -> dst:port".
	RuleAuditWouldDeny = "audit_would_deny"
	// RuleEgressDenied: a service's attempt to leave the mesh that was
	// refused: records with Unmapped.ReasonCode flow.ReasonEgressDenied,
	// flow.ReasonSNIMismatch, flow.ReasonHTTPRefused, flow.ReasonEgressInternal or
	// flow.ReasonNoIdentity (a local process that runs no service), and outbound
	// connections the host firewall dropped (flow.ReasonFirewall, verdict
	// deny), and queries the node's DNS filter refused (flow.ReasonDNSRefused,
	// verdict deny). Subject: the source (its service, else its IP).
	RuleEgressDenied = "egress_denied"
	// RuleTest marks the alert `moat alerts test` sends.
	RuleTest = "test"
	// RuleNodeAlertsMuted: the records of one node raised more alerts than
	// its budget (Config.NodeAlerts); the rest go to the flow store as
	// findings but not to the sinks. Subject: the node. Resolved once its
	// budget is whole again.
	RuleNodeAlertsMuted = "node_alerts_muted"
	// RuleRecordsDropped: the engine's full queue dropped records of one
	// node unevaluated (Config.Queue). It fires at the first drop, naming
	// the node and how many so far, and resolves, with the whole count,
	// once the node has lost none for DropQuiet. Subject: the node;
	// "_server" for audit entries and records no node wrote, OtherNodes
	// for nodes past MaxDropAlerts with one firing at once.
	RuleRecordsDropped = "records_dropped"
)

// Alert is one notification: a rule's condition began (StatusFiring) or ended
// (StatusResolved) for one subject.
type Alert struct {
	// Key is the dedup key: rule and subject, stable across restarts.
	Key      string   `json:"dedup_key"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Status   Status   `json:"status"`
	// Subject is what the alert is about: a source address or identity, an
	// edge "a -> b", a policy target.
	Subject string `json:"subject"`
	Summary string `json:"summary"`
	// Details are extra facts (counts, sample ports, reasons); keys are
	// short snake_case words.
	Details  map[string]string `json:"details,omitempty"`
	StartsAt time.Time         `json:"starts_at"`
	// EndsAt is set on a resolved alert.
	EndsAt time.Time `json:"ends_at,omitzero"`
}

// DedupKey returns the key for rule and subject: "moat/<rule>/<subject>",
// with subjects longer than 200 bytes replaced by a hash so the key stays
// within PagerDuty's 255-byte limit.
func DedupKey(rule, subject string) string {
	if len(subject) > 200 {
		sum := sha256.Sum256([]byte(subject))
		subject = "sha256:" + hex.EncodeToString(sum[:16])
	}
	return "moat/" + rule + "/" + subject
}

// Fingerprint is a short hex digest of the dedup key, as Alertmanager
// receivers expect.
func (a *Alert) Fingerprint() string {
	sum := sha256.Sum256([]byte(a.Key))
	return hex.EncodeToString(sum[:8])
}

// Title is a one-line description for chat and paging receivers.
func (a *Alert) Title() string {
	prefix := ""
	if a.Status == StatusResolved {
		prefix = "RESOLVED: "
	}
	return fmt.Sprintf("%s[%s] %s", prefix, strings.ToUpper(string(a.Severity)), a.Summary)
}

// sortedDetails returns the detail keys in order, for stable output.
func (a *Alert) sortedDetails() []string {
	keys := make([]string, 0, len(a.Details))
	for k := range a.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
