package detect

import (
	"fmt"
	"strings"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
)

// Rules over break-glass access and second factors. Each reads audit
// entries the control plane writes (and, for access outside a grant, the
// agents' refusal records). A rule whose subject is the administrator who
// acted names them by audit.Entry.Who: the SPIFFE ID with the account when
// the entry records it, so two accounts of one name (one removed, one
// made again with the name) are two subjects, counted and silenced apart;
// an agent's refusal record is named the same way from the SPIFFE ID and
// the account it records (flow.Moat.Account), so the agents' refusals and
// the control plane's of one account count together; an entry or record
// that records no account, by SPIFFE ID.
// The alert's "account" detail is the account, when known.
const (
	// RuleMFAFailures: audit entries "mfa.session", "mfa.confirm" or
	// "mfa.webauthn.login" refused (a wrong or replayed code, a refused
	// security key, a locked factor); Threshold within Window.
	// Subject: the administrator.
	RuleMFAFailures = "mfa_failures"
	// RuleSelfApproval: an audit entry "access.approve" refused because
	// the approver requested the grant, or one by an account the requester
	// created (taken, or refused under access.independent_approvers).
	// Subject: the grant.
	RuleSelfApproval = "self_approval"
	// RuleOutsideGrant: access outside a grant's target: an audit entry
	// "access.connect" or "access.cert" refused with an outside_grant mark
	// (another's grant, another mode, a grant not active), or an agent's
	// record with reason code flow.ReasonOutsideGrant. Subject: the
	// administrator.
	RuleOutsideGrant = "access_outside_grant"
	// RuleUnusualHours: an "access.session.start" outside the configured
	// working hours (Hours, Days, Location). Subject: the administrator.
	RuleUnusualHours = "unusual_hours"
	// RuleBreakGlass: any break-glass session started ("access.session.start"),
	// informational. Subject: the grant.
	RuleBreakGlass = "break_glass"
	// RuleMFAChange: an administrator's second factors changed, informational:
	// an authenticator enrolled ("mfa.confirm"), a first enrolment approved
	// ("mfa.approve", online or on the server's host), factors reset
	// ("mfa.reset"), a security key registered or removed
	// ("mfa.webauthn.register", "mfa.webauthn.remove"). Whoever steals an
	// enrolment certificate enrols their own authenticator this way.
	// Subject: the administrator whose factors changed, with their account
	// (audit.Entry.TargetWho: the entry's target_account, the actor's
	// account for a change of one's own; the SPIFFE ID alone for an entry
	// that records none), and the change.
	RuleMFAChange = "mfa_change"
)

// Audit actions the access rules read.
const (
	actionMFASession   = "mfa.session"
	actionMFAConfirm   = "mfa.confirm"
	actionApprove      = "access.approve"
	actionConnect      = "access.connect"
	actionAccessCert   = "access.cert"
	actionSessionStart = "access.session.start"
	actionWebAuthnIn   = "mfa.webauthn.login"
)

// mfaChanges are the audit actions RuleMFAChange reports, with what each
// did.
var mfaChanges = map[string]string{
	"mfa.confirm":           "authenticator enrolled",
	"mfa.approve":           "first enrolment approved",
	"mfa.reset":             "second factors reset",
	"mfa.webauthn.register": "security key registered",
	"mfa.webauthn.remove":   "security key removed",
}

// WorkHours is when break-glass sessions are expected: from Start to End
// (minutes after midnight, End exclusive; End before Start spans
// midnight) on Days, in Location.
type WorkHours struct {
	Start, End int
	Days       [7]bool // by time.Weekday
	Location   *time.Location
}

// DefaultWorkHours is 07:00 to 19:00, Monday to Friday, UTC.
func DefaultWorkHours() WorkHours {
	w := WorkHours{Start: 7 * 60, End: 19 * 60, Location: time.UTC}
	for d := time.Monday; d <= time.Friday; d++ {
		w.Days[d] = true
	}
	return w
}

// Within reports whether t falls in the working hours.
func (w WorkHours) Within(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	if w.Start <= w.End {
		return w.Days[day] && m >= w.Start && m < w.End
	}
	// Spanning midnight: the early hours belong to the previous day's shift.
	if m >= w.Start {
		return w.Days[day]
	}
	return m < w.End && w.Days[(day+6)%7]
}

// ParseWorkHours reads "07:00-19:00", days ("mon", "tue", …) and an IANA
// time zone name ("" is UTC).
func ParseWorkHours(hours string, days []string, zone string) (WorkHours, error) {
	w := DefaultWorkHours()
	if hours != "" {
		a, b, ok := strings.Cut(hours, "-")
		start, err1 := clockMinutes(a)
		end, err2 := clockMinutes(b)
		if !ok || err1 != nil || err2 != nil || start == end {
			return w, fmt.Errorf("hours %q: want HH:MM-HH:MM", hours)
		}
		w.Start, w.End = start, end
	}
	if days != nil {
		w.Days = [7]bool{}
		names := map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
		for _, d := range days {
			wd, ok := names[strings.ToLower(d)]
			if !ok {
				return w, fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat or sun", d)
			}
			w.Days[wd] = true
		}
	}
	if zone != "" {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return w, fmt.Errorf("timezone %q: %v", zone, err)
		}
		w.Location = loc
	}
	return w, nil
}

func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// observeAccess feeds an audit entry to the access rules.
func (e *Engine) observeAccess(out []Alert, now time.Time, en *audit.Entry) []Alert {
	d := en.Detail
	refused := strings.HasPrefix(en.Result, "denied")
	switch {
	case mfaChanges[en.Action] != "" && en.Result == "ok":
		facts := withAccount(map[string]string{"by": en.Actor, "change": mfaChanges[en.Action]}, en)
		for _, k := range []string{"factor", "key", "awaiting_approval"} {
			if d[k] != "" {
				facts[k] = d[k]
			}
		}
		if a := en.TargetAccount(); a != "" {
			facts["target_account"] = a
		}
		// Keyed by whom the change is about, with their account
		// (audit.Entry.TargetWho): a name removed and made again is
		// another subject.
		who := orDash(en.TargetWho())
		out = e.fire(out, now, RuleMFAChange, who+" "+en.Action, "", "second factors of "+who+" changed: "+mfaChanges[en.Action], facts)
	case (en.Action == actionMFASession || en.Action == actionMFAConfirm || en.Action == actionWebAuthnIn) && refused:
		facts := withAccount(map[string]string{"last_result": en.Result}, en)
		if d["locked_until"] != "" {
			facts["locked_until"] = d["locked_until"]
		}
		out = e.fire(out, now, RuleMFAFailures, orDash(en.Who()), "", "repeated MFA failures for {subject}", facts)
	case en.Action == actionApprove && d["self_approval"] == "true":
		out = e.fire(out, now, RuleSelfApproval, orDash(en.Target), "",
			"grant {subject} approved by its own requester (refused)", withAccount(map[string]string{"admin": en.Actor, "node": d["node"]}, en))
	case en.Action == actionApprove && d["approver_made_by_requester"] == "true":
		out = e.fire(out, now, RuleSelfApproval, orDash(en.Target), "",
			"grant {subject} approved by an account its requester created ("+en.Result+")",
			withAccount(map[string]string{"admin": en.Actor, "requester": d["requester"], "node": d["node"]}, en))
	case (en.Action == actionConnect || en.Action == actionAccessCert) && d["outside_grant"] != "":
		out = e.fire(out, now, RuleOutsideGrant, orDash(en.Who()), "",
			"access outside a grant by {subject}", withAccount(map[string]string{"grant": d["grant"], "node": d["node"], "why": d["outside_grant"]}, en))
	case en.Action == actionSessionStart && en.Result == "ok":
		facts := withAccount(map[string]string{"admin": en.Actor, "node": en.Target, "mode": d["mode"], "session": d["session"]}, en)
		out = e.fire(out, now, RuleBreakGlass, orDash(d["grant"]), "", "break-glass session on "+orDash(en.Target)+" by "+orDash(en.Who()), facts)
		if !e.cfg.WorkHours.Within(en.Time) {
			out = e.fire(out, now, RuleUnusualHours, orDash(en.Who()), "",
				"break-glass session by {subject} outside working hours", withAccount(map[string]string{"node": en.Target, "at": en.Time.UTC().Format(time.RFC3339)}, en))
		}
	}
	return out
}

// withAccount adds to an alert's facts the account of the administrator
// who acted, when the entry records it.
func withAccount(facts map[string]string, en *audit.Entry) map[string]string {
	if a := en.ActorAccount(); a != "" {
		facts["account"] = a
	}
	return facts
}

// observeAccessRecord feeds an agent's refusal record to the access rules.
func (e *Engine) observeAccessRecord(out []Alert, now time.Time, r *flow.Record) []Alert {
	if r.Unmapped == nil || r.Unmapped.ReasonCode != flow.ReasonOutsideGrant {
		return out
	}
	// Named as an audit entry names who acted (audit.Who), so an agent's
	// refusal and the control plane's of one account are one subject.
	who := audit.Who(endpointID(r.SrcEndpoint), r.Unmapped.Account)
	facts := map[string]string{"node": r.Unmapped.Node, "why": r.Unmapped.Reason}
	if r.Unmapped.Account != "" {
		facts["account"] = r.Unmapped.Account
	}
	return e.fire(out, now, RuleOutsideGrant, orDash(who), "", "access outside a grant by {subject}", facts)
}
