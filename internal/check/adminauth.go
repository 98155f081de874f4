package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"moat/internal/api"
	"moat/internal/server"
)

// RuleWeakAdminAuth reports a control plane whose configuration lets an
// administrator's enrolment certificate alone, or one administrator
// alone, do what moat otherwise gates behind a second factor or a second
// administrator: change policy, mint identities, and open break-glass
// sessions on nodes.
const RuleWeakAdminAuth = "MOAT-009"

func adminAuthRules() []Rule {
	return []Rule{
		{RuleWeakAdminAuth, High, "Administration or break-glass access without a second factor or a second administrator",
			"The server's configuration turns MFA off (mfa.required: false), exempts a role from it (mfa.roles), or leaves sensitive calls out of mfa.actions (policy changes, join tokens, revocations, key and CA rotation, accounts, break-glass requests, approvals, session certificates and recordings): whoever copies an administrator's enrolment certificate makes those calls without the authenticator. Or break-glass grants start without another administrator's approval (access.approvals of 0): one administrator, or one stolen credential, opens a shell on a node alone. Grants on every target without approval are reported at high, on named targets at medium.",
			"Leave mfa.required, mfa.roles and mfa.actions at their defaults (or add the calls listed), and keep access.approvals at 1 or more except for lab targets, each suppressed with its reason."},
	}
}

// checkAdminAuth adds a finding for each way f's MFA and break-glass
// settings fall below the defaults. f has passed the server's own
// validation, so its sections read as the server reads them.
func checkAdminAuth(doc *yaml.Node, f *server.File, add func(rule string, line int, addr, format string, args ...any), addSev func(sev Severity, rule string, line int, addr, format string, args ...any)) {
	mfa, err := f.MFA.Config("mfa")
	if err != nil {
		return
	}
	switch {
	case mfa.Off:
		add(RuleWeakAdminAuth, lineOf(doc, "mfa", "required"), "server.mfa.required",
			"MFA is off: every administrator call, break-glass session certificates and approvals included, is made with the enrolment certificate alone")
	default:
		if mfa.Roles != nil {
			var exempt []string
			for _, r := range []string{api.RoleOperator, api.RoleAdmin} {
				if !slices.Contains(mfa.Roles, r) {
					exempt = append(exempt, r)
				}
			}
			if len(exempt) > 0 {
				add(RuleWeakAdminAuth, lineOf(doc, "mfa", "roles"), "server.mfa.roles",
					"mfa.roles leaves out %s: their calls (break-glass requests and session certificates among them) need no second factor", strings.Join(exempt, " and "))
			}
		}
		if mfa.Actions != nil {
			var left []string
			for _, a := range server.DefaultMFAActions {
				if !mfa.Requires(api.RoleAdmin, a) {
					left = append(left, a)
				}
			}
			if len(left) > 0 {
				add(RuleWeakAdminAuth, lineOf(doc, "mfa", "actions"), "server.mfa.actions",
					"mfa.actions leaves out %s: made with the enrolment certificate alone", strings.Join(left, ", "))
			}
		}
	}
	access, err := f.Access.Config("access")
	if err != nil {
		return
	}
	targets := make([]string, 0, len(access.Approvals))
	for t, n := range access.Approvals {
		if n == 0 {
			targets = append(targets, t)
		}
	}
	sort.Strings(targets)
	for _, t := range targets {
		line := lineOf(doc, "access", "approvals", t)
		addr := fmt.Sprintf("server.access.approvals[%q]", t)
		if t == "*" {
			addSev(High, RuleWeakAdminAuth, line, addr, "break-glass grants on every node and service start without another administrator's approval")
			continue
		}
		addSev(Medium, RuleWeakAdminAuth, line, addr, "break-glass grants on %s start without another administrator's approval", t)
	}
}
