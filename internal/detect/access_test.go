package detect

import (
	"testing"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
)

func firing(as []Alert, rule string) []Alert {
	var out []Alert
	for _, a := range as {
		if a.Rule == rule && a.Status == StatusFiring {
			out = append(out, a)
		}
	}
	return out
}

// The access rules read the entries the control plane writes for second
// factors and break-glass sessions, and the agents' refusals.
func TestAccessRules(t *testing.T) {
	const alice, bob = "spiffe://moat.test/admin/alice", "spiffe://moat.test/admin/bob"
	// Two accounts of the name alice: one removed, one made again.
	const acctA, acctB = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	night := time.Date(2026, 11, 24, 2, 30, 0, 0, time.UTC) // a Tuesday, 02:30 UTC
	cases := []struct {
		name  string
		evs   []ev
		rule  string
		subj  string
		fires int
	}{
		{"two MFA failures are not yet an alert", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "denied: MFA code refused"}},
			{at: time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "denied: MFA code refused"}},
		}, RuleMFAFailures, alice, 0},
		{"the third MFA failure within the window fires", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "denied: MFA code refused"}},
			{at: time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.confirm", Result: "denied: MFA code refused"}},
			{at: 2 * time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "denied: MFA code already used: wait for the next one"}},
		}, RuleMFAFailures, alice, 1},
		{"a good code is no failure", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "ok"}},
			{at: time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "ok"}},
			{at: 2 * time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "ok"}},
		}, RuleMFAFailures, alice, 0},
		{"a requester approving their own grant", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "access.approve", Target: "1ab", Result: "denied: a requester cannot approve their own grant: another admin must",
				Detail: map[string]string{"self_approval": "true", "node": "web-1"}}},
		}, RuleSelfApproval, "1ab", 1},
		{"an approval by an account the requester created", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "access.approve", Target: "1ab", Result: "ok",
				Detail: map[string]string{"requester": alice, "approver_made_by_requester": "true", "node": "web-1"}}},
		}, RuleSelfApproval, "1ab", 1},
		{"another admin's approval is no alert", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "access.approve", Target: "1ab", Result: "ok", Detail: map[string]string{"requester": alice}}},
		}, RuleSelfApproval, "1ab", 0},
		{"connecting under another's grant", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "access.connect", Target: "web-1", Result: "denied: grant 1ab belongs to " + alice,
				Detail: map[string]string{"grant": "1ab", "outside_grant": "not the requester"}}},
		}, RuleOutsideGrant, bob, 1},
		{"an agent refusing a certificate outside its grant", []ev{
			{at: 0, rec: func() *flow.Record {
				r := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "access", flow.ReasonOutsideGrant, &flow.Endpoint{UID: bob}, &flow.Endpoint{Name: "web-1"})
				return r
			}()},
		}, RuleOutsideGrant, bob, 1},
		{"an enrolment is reported", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.confirm", Target: alice, Result: "ok", Detail: map[string]string{"factor": "totp"}}},
		}, RuleMFAChange, alice + " mfa.confirm", 1},
		{"a refused confirmation is no change", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.confirm", Target: alice, Result: "denied: MFA code refused"}},
		}, RuleMFAChange, alice + " mfa.confirm", 0},
		{"a reset that records no account is reported under the admin reset", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok"}},
		}, RuleMFAChange, alice + " mfa.reset", 1},
		{"a reset names the account reset", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctA}}},
		}, RuleMFAChange, audit.Who(alice, acctA) + " mfa.reset", 1},
		{"resets of two accounts of one name are two subjects", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctA}}},
			{at: time.Second, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctB}}},
		}, RuleMFAChange, audit.Who(alice, acctA) + " mfa.reset", 2},
		{"resets of one account are one subject", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctA}}},
			{at: time.Second, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctA}}},
		}, RuleMFAChange, audit.Who(alice, acctA) + " mfa.reset", 1},
		{"approvals of two accounts of one name are two subjects", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "mfa.approve", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctA}}},
			{at: time.Second, ent: &audit.Entry{Actor: bob, Action: "mfa.approve", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailTargetAccount: acctB}}},
		}, RuleMFAChange, audit.Who(alice, acctA) + " mfa.approve", 2},
		{"an enrolment of one's own is the actor's account's", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.confirm", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailAccount: acctA}}},
			{at: time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.confirm", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailAccount: acctB}}},
		}, RuleMFAChange, audit.Who(alice, acctA) + " mfa.confirm", 2},
		{"another's account is not the target's", []ev{
			{at: 0, ent: &audit.Entry{Actor: bob, Action: "mfa.reset", Target: alice, Result: "ok", Detail: map[string]string{audit.DetailAccount: acctB}}},
		}, RuleMFAChange, alice + " mfa.reset", 1},
		{"a security key registered is reported", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.webauthn.register", Target: alice, Result: "ok", Detail: map[string]string{"key": "yubi"}}},
		}, RuleMFAChange, alice + " mfa.webauthn.register", 1},
		{"a refused security key counts as an MFA failure", []ev{
			{at: 0, ent: &audit.Entry{Actor: alice, Action: "mfa.webauthn.login", Result: "denied: security key assertion refused"}},
			{at: time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.webauthn.login", Result: "denied: security key assertion refused"}},
			{at: 2 * time.Second, ent: &audit.Entry{Actor: alice, Action: "mfa.session", Result: "denied: MFA code refused"}},
		}, RuleMFAFailures, alice, 1},
		{"every break-glass session is reported", []ev{
			{at: 0, ent: &audit.Entry{Time: t0, Actor: alice, Action: "access.session.start", Target: "web-1", Result: "ok", Detail: map[string]string{"grant": "1ab", "mode": "shell"}}},
		}, RuleBreakGlass, "1ab", 1},
		{"a session in working hours is usual", []ev{
			{at: 0, ent: &audit.Entry{Time: t0, Actor: alice, Action: "access.session.start", Target: "web-1", Result: "ok", Detail: map[string]string{"grant": "1ab"}}},
		}, RuleUnusualHours, alice, 0},
		{"a session at night is unusual", []ev{
			{at: 0, ent: &audit.Entry{Time: night, Actor: alice, Action: "access.session.start", Target: "web-1", Result: "ok", Detail: map[string]string{"grant": "1ab"}}},
		}, RuleUnusualHours, alice, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			e, col := newTestEngine(t, clk, testRules())
			feed(e, clk, c.evs)
			got := firing(col.all(), c.rule)
			if len(got) != c.fires {
				t.Fatalf("%d %s alerts, want %d: %+v", len(got), c.rule, c.fires, col.all())
			}
			if c.fires > 0 && got[0].Subject != c.subj {
				t.Fatalf("subject %q, want %q", got[0].Subject, c.subj)
			}
		})
	}
}

func TestWorkHours(t *testing.T) {
	w, err := ParseWorkHours("22:00-06:00", []string{"sun", "mon"}, "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 22, 23, 0, 0, 0, paris), true},  // Sunday night
		{time.Date(2026, 11, 23, 5, 59, 0, 0, paris), true},  // Monday early: Sunday's shift
		{time.Date(2026, 11, 23, 6, 0, 0, 0, paris), false},  // its end
		{time.Date(2026, 11, 24, 23, 0, 0, 0, paris), false}, // Tuesday night: not a working day
		{time.Date(2026, 11, 24, 1, 0, 0, 0, paris), true},   // Tuesday early: Monday's shift
	} {
		if got := w.Within(c.at); got != c.want {
			t.Errorf("Within(%s) = %v, want %v", c.at, got, c.want)
		}
	}
	for _, bad := range [][3]string{{"7-19", "", ""}, {"07:00-07:00", "", ""}, {"", "monday", ""}, {"", "", "Mars/Olympus"}} {
		var days []string
		if bad[1] != "" {
			days = []string{bad[1]}
		}
		if _, err := ParseWorkHours(bad[0], days, bad[2]); err == nil {
			t.Errorf("ParseWorkHours(%q, %q, %q) accepted", bad[0], bad[1], bad[2])
		}
	}
}

// An alerts file tunes unusual_hours, and refuses hours on another rule.
func TestAccessRulesConfig(t *testing.T) {
	s, err := Load([]byte("rules:\n  unusual_hours: {hours: \"09:00-17:00\", days: [mon, tue], timezone: UTC}\nsinks:\n  - {name: w, type: webhook, url: \"https://siem.example/in\"}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.WorkHours.Start != 9*60 || s.WorkHours.End != 17*60 || !s.WorkHours.Days[time.Tuesday] || s.WorkHours.Days[time.Wednesday] {
		t.Fatalf("work hours %+v", s.WorkHours)
	}
	_, err = Load([]byte("rules:\n  scan: {hours: \"09:00-17:00\"}\nsinks:\n  - {name: w, type: webhook, url: \"https://siem.example/in\"}\n"), nil)
	if err == nil || err.Error() != "rules.scan: only unusual_hours takes hours, days and timezone" {
		t.Fatalf("hours on scan: %v", err)
	}
}

// A name removed and made again is another account, for another person
// perhaps: the rules keyed by who acted count each account apart, so the
// new account neither completes the old one's count nor is silenced by
// the old one's alert. Entries written before accounts were recorded are
// counted by name, as they were.
func TestAccessRulesKeyByAccount(t *testing.T) {
	const alice = "spiffe://moat.test/admin/alice"
	const oldAcct, newAcct = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	by := func(account, action, result string, detail map[string]string) *audit.Entry {
		d := map[string]string{}
		for k, v := range detail {
			d[k] = v
		}
		if account != "" {
			d[audit.DetailAccount] = account
		}
		return &audit.Entry{Actor: alice, Action: action, Target: "web-1", Result: result, Detail: d}
	}
	refused := "denied: MFA code refused"
	outside := map[string]string{"grant": "1ab", "outside_grant": "not the requester"}

	t.Run("MFA failures of two accounts of one name are not one count", func(t *testing.T) {
		clk := newClock()
		e, col := newTestEngine(t, clk, testRules())
		feed(e, clk, []ev{
			{at: 0, ent: by(oldAcct, "mfa.session", refused, nil)},
			{at: time.Second, ent: by(oldAcct, "mfa.session", refused, nil)},
			{at: 2 * time.Second, ent: by(newAcct, "mfa.session", refused, nil)},
		})
		if got := firing(col.all(), RuleMFAFailures); len(got) != 0 {
			t.Fatalf("two failures of the removed account and one of the new joined into %+v", got)
		}
		feed(e, clk, []ev{
			{at: 3 * time.Second, ent: by(newAcct, "mfa.session", refused, nil)},
			{at: 4 * time.Second, ent: by(newAcct, "mfa.session", refused, nil)},
		})
		got := firing(col.all(), RuleMFAFailures)
		if len(got) != 1 || got[0].Subject != alice+" (account "+newAcct+")" {
			t.Fatalf("three failures of the new account: %+v, want one alert for it", got)
		}
	})
	t.Run("an alert of the removed account does not silence the new one's", func(t *testing.T) {
		clk := newClock()
		e, col := newTestEngine(t, clk, testRules())
		feed(e, clk, []ev{
			{at: 0, ent: by(oldAcct, "access.connect", "denied: not the requester", outside)},
			{at: time.Minute, ent: by(newAcct, "access.connect", "denied: not the requester", outside)},
		})
		got := firing(col.all(), RuleOutsideGrant)
		if len(got) != 2 || got[0].Subject == got[1].Subject || got[0].Key == got[1].Key {
			t.Fatalf("access outside a grant by two accounts of one name: %+v, want an alert each", got)
		}
		if got[1].Details["account"] != newAcct {
			t.Errorf("the new account's alert names account %q, want %q", got[1].Details["account"], newAcct)
		}
	})
	t.Run("an agent's refusals count with the control plane's of the account", func(t *testing.T) {
		const acct, other = "123456789abcdef0123456789abcdef0", "fedcba9876543210fedcba9876543210"
		rules := testRules()
		rc := rules[RuleOutsideGrant]
		rc.Threshold = 2
		rules[RuleOutsideGrant] = rc
		agentRefusal := func(account string) *flow.Record {
			r := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "access", flow.ReasonOutsideGrant, &flow.Endpoint{UID: alice}, &flow.Endpoint{Name: "web-1"})
			r.Unmapped.Account = account
			return r
		}
		clk := newClock()
		e, col := newTestEngine(t, clk, rules)
		feed(e, clk, []ev{
			{at: 0, rec: agentRefusal(other)},
			{at: time.Second, ent: by(acct, "access.connect", "denied: not the requester", outside)},
		})
		if got := firing(col.all(), RuleOutsideGrant); len(got) != 0 {
			t.Fatalf("an agent's refusal of one account and the control plane's of another joined into %+v", got)
		}
		feed(e, clk, []ev{{at: 2 * time.Second, rec: agentRefusal(acct)}})
		got := firing(col.all(), RuleOutsideGrant)
		if len(got) != 1 || got[0].Subject != alice+" (account "+acct+")" || got[0].Details["account"] != acct {
			t.Fatalf("a refusal by the control plane and one by an agent of one account: %+v, want one alert for it", got)
		}
	})
	t.Run("entries without an account are counted by name", func(t *testing.T) {
		clk := newClock()
		e, col := newTestEngine(t, clk, testRules())
		feed(e, clk, []ev{
			{at: 0, ent: by("", "mfa.session", refused, nil)},
			{at: time.Second, ent: by("", "mfa.session", refused, nil)},
			{at: 2 * time.Second, ent: by("", "mfa.confirm", refused, nil)},
		})
		got := firing(col.all(), RuleMFAFailures)
		if len(got) != 1 || got[0].Subject != alice {
			t.Fatalf("three failures recorded without an account: %+v, want one alert for %s", got, alice)
		}
	})
}
