package detect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"moat/internal/audit"
	"moat/internal/flow"
)

func TestRules(t *testing.T) {
	hsReasons := []string{flow.ReasonBadCertificate, flow.ReasonExpired, flow.ReasonUnknownAuthority}
	tests := []struct {
		name    string
		rule    string
		key     string
		attack  []ev
		benign  []ev
		resolve []ev // events that clear the condition; nil: the window passes
	}{
		{
			name: "scan", rule: RuleScan, key: "moat/scan/198.51.100.66",
			attack: every(30, 0, time.Second, func(i int) ev { return r2ev(denyFlow("198.51.100.66", "10.0.1.5", 1+i)) }),
			// One client retrying one denied port, and another touching
			// fewer ports than the threshold.
			benign: append(
				every(30, 0, time.Second, func(int) ev { return r2ev(denyFlow("10.0.0.7", "10.0.1.5", 5432)) }),
				every(9, 0, time.Second, func(i int) ev { return r2ev(denyFlow("10.0.0.8", "10.0.1.5", 8000+i)) })...),
		},
		{
			name: "deny burst", rule: RuleDenyBurst, key: "moat/deny_burst/all",
			attack: every(60, 0, 500*time.Millisecond, func(i int) ev {
				return r2ev(denyFlow(fmt.Sprintf("10.9.0.%d", i), "10.0.1.5", 22))
			}),
			// The same count spread over ten minutes; as many handshakes
			// refused by an agent still starting (not ready: no decision).
			benign: append(every(60, 0, 10*time.Second, func(i int) ev {
				return r2ev(denyFlow(fmt.Sprintf("10.9.0.%d", i), "10.0.1.5", 22))
			}), every(60, 0, 500*time.Millisecond, func(i int) ev {
				return r2ev(handshakeFail(fmt.Sprintf("10.9.1.%d", i), flow.ReasonNotReady))
			})...),
		},
		{
			name: "failed handshakes", rule: RuleHandshake, key: "moat/handshake_failures/203.0.113.9",
			attack: every(8, 0, 10*time.Second, func(i int) ev { return r2ev(handshakeFail("203.0.113.9", hsReasons[i%3])) }),
			// A few failures each from several clients; allowed flows;
			// handshakes a starting agent could not serve yet.
			benign: append(append(
				every(12, 0, 10*time.Second, func(i int) ev { return r2ev(handshakeFail(fmt.Sprintf("203.0.113.%d", i%4), "expired")) }),
				every(20, 0, time.Second, func(int) ev { return r2ev(allowFlow("web", "api")) })...),
				every(8, 0, 10*time.Second, func(int) ev { return r2ev(handshakeFail("203.0.113.9", flow.ReasonNotReady)) })...),
		},
		{
			name: "revoked identity", rule: RuleRevoked, key: "moat/revoked_identity/spiffe://moat.test/svc/old-batch",
			attack: []ev{r2ev(revokedUse("old-batch"))},
			benign: []ev{r2ev(denyFlow("10.0.0.7", "10.0.1.5", 5432)), r2ev(handshakeFail("10.0.0.7", "expired"))},
		},
		{
			name: "first-seen edge", rule: RuleNewEdge, key: "moat/new_edge/spiffe://moat.test/svc/web -> spiffe://moat.test/svc/payments",
			attack: []ev{
				{at: 0, rec: allowFlow("web", "api")},
				{at: 2 * time.Minute, rec: allowFlow("web", "payments")},
				{at: 3 * time.Minute, rec: allowFlow("web", "payments")},
			},
			// Edges learned while learning, seen again later; a denied
			// attempt is no edge.
			benign: []ev{
				{at: 0, rec: allowFlow("web", "api")},
				{at: 10 * time.Second, rec: allowFlow("api", "db")},
				{at: 2 * time.Minute, rec: allowFlow("web", "api")},
				{at: 3 * time.Minute, rec: allowFlow("api", "db")},
				{at: 4 * time.Minute, rec: rec(flow.ClassNetworkActivity, flow.VerdictDeny, "", "no intention", svcEP("web", 0), svcEP("payments", 443))},
			},
		},
		{
			name: "WAF spike", rule: RuleWAFSpike, key: "moat/waf_spike/192.0.2.77",
			attack: every(10, 0, 2*time.Second, func(int) ev { return r2ev(wafEvent("192.0.2.77", true)) }),
			// Detections not blocked (detection-only mode), and a few blocks.
			benign: append(
				every(10, 0, 2*time.Second, func(int) ev { return r2ev(wafEvent("192.0.2.77", false)) }),
				every(4, 0, 2*time.Second, func(int) ev { return r2ev(wafEvent("192.0.2.78", true)) })...),
		},
		{
			name: "policy widened", rule: RulePolicyWidened, key: "moat/policy_widened/policy",
			attack: []ev{
				{ent: policyApply("prod", "ok", map[string]string{DetailWildcard: "true", "rules": "12"})},
				{at: time.Minute, ent: policyApply("prod", "ok", map[string]string{DetailDefault: "allow"})},
			},
			benign: []ev{
				{ent: policyApply("prod", "ok", map[string]string{"rules": "12"})},
				{ent: policyApply("prod", "denied: role viewer", map[string]string{DetailWildcard: "true"})},
				{ent: &audit.Entry{Action: "svc.register", Target: "web", Result: "ok", Detail: map[string]string{DetailWildcard: "true"}}},
				{ent: policyApply("prod", "ok", map[string]string{DetailDefault: "deny"})},
			},
			resolve: []ev{{at: 5 * time.Minute, ent: policyApply("prod", "ok", nil)}},
		},
		{
			name: "audit would-deny", rule: RuleAuditWouldDeny,
			key:    "moat/audit_would_deny/spiffe://moat.test/svc/web -> spiffe://moat.test/svc/db:5432",
			attack: every(5, 0, time.Second, func(int) ev { return r2ev(auditFlow("web", "db")) }),
			benign: every(5, 0, time.Second, func(int) ev { return r2ev(allowFlow("web", "db")) }),
		},
		{
			name: "egress denied", rule: RuleEgressDenied, key: "moat/egress_denied/spiffe://moat.test/svc/api",
			attack: []ev{r2ev(egressFlow("api", "evil.example", flow.VerdictDeny, flow.ReasonEgressDenied))},
			// Allowed egress, and a host-firewall drop of an inbound probe
			// (that one is the scan rule's business).
			benign: []ev{
				r2ev(egressFlow("api", "api.stripe.com", flow.VerdictAllow, "")),
				r2ev(firewallDrop(flow.DirectionInbound)),
			},
		},
		{
			name: "egress plain HTTP to another host", rule: RuleEgressDenied, key: "moat/egress_denied/spiffe://moat.test/svc/api",
			attack: []ev{r2ev(egressFlow("api", "api.example", flow.VerdictDeny, flow.ReasonHTTPRefused))},
			// A tunnel closed for being idle is no attempt to leave.
			benign: []ev{r2ev(egressFlow("api", "api.example", flow.VerdictAllow, flow.ReasonIdleTimeout))},
		},
		{
			name: "egress dropped by the host firewall", rule: RuleEgressDenied, key: "moat/egress_denied/10.0.0.5",
			attack: []ev{r2ev(firewallDrop(flow.DirectionOutbound))},
			benign: []ev{r2ev(egressFlow("api", "api.stripe.com", flow.VerdictAllow, ""))},
		},
		{
			// A name carrying data out through DNS, refused by the node's
			// DNS filter; in audit mode it is the audit rule's business.
			name: "DNS refused by the filter", rule: RuleEgressDenied, key: "moat/egress_denied/10.0.0.5",
			attack: []ev{r2ev(dnsRefused(flow.VerdictDeny))},
			benign: []ev{r2ev(egressFlow("api", "api.stripe.com", flow.VerdictAllow, ""))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/attack", func(t *testing.T) {
			clk := newClock()
			e, col := newTestEngine(t, clk, testRules())
			feed(e, clk, tc.attack)
			e.Sweep()
			got := col.all()
			if len(got) != 1 {
				t.Fatalf("attack raised %d alerts, want 1: %+v", len(got), got)
			}
			a := got[0]
			if a.Rule != tc.rule || a.Status != StatusFiring || a.Key != tc.key {
				t.Fatalf("alert = %s %s %q, want %s firing %q", a.Rule, a.Status, a.Key, tc.rule, tc.key)
			}
			if a.Severity != testRules()[tc.rule].Severity || a.Summary == "" || a.StartsAt.IsZero() {
				t.Errorf("alert lacks severity, summary or start: %+v", a)
			}
			col.reset()
			if tc.resolve != nil {
				feed(e, clk, tc.resolve)
			} else {
				clk.Advance(testRules()[tc.rule].Window + time.Second)
				e.Sweep()
			}
			got = col.all()
			if len(got) != 1 || got[0].Status != StatusResolved || got[0].Key != tc.key || got[0].EndsAt.IsZero() {
				t.Fatalf("after the condition cleared got %+v, want one resolve of %q", got, tc.key)
			}
		})
		t.Run(tc.name+"/benign", func(t *testing.T) {
			clk := newClock()
			e, col := newTestEngine(t, clk, testRules())
			feed(e, clk, tc.benign)
			e.Sweep()
			for _, a := range col.all() {
				t.Errorf("benign stream raised %s %s %q", a.Rule, a.Status, a.Key)
			}
		})
	}
}

func TestDisabledRuleStaysQuiet(t *testing.T) {
	clk := newClock()
	rules := testRules()
	rc := rules[RuleScan]
	rc.Enabled = false
	rules[RuleScan] = rc
	e, col := newTestEngine(t, clk, rules)
	feed(e, clk, every(30, 0, time.Second, func(i int) ev { return r2ev(denyFlow("198.51.100.66", "10.0.1.5", 1+i)) }))
	for _, a := range col.all() {
		if a.Rule == RuleScan {
			t.Fatalf("disabled rule fired: %+v", a)
		}
	}
}

func TestDedupWindow(t *testing.T) {
	clk := newClock()
	e, col := newTestEngine(t, clk, testRules())
	scan := func(start time.Duration) {
		feed(e, clk, every(15, start, time.Second, func(i int) ev { return r2ev(denyFlow("198.51.100.66", "10.0.1.5", 100+i)) }))
	}
	count := func(st Status) int {
		n := 0
		for _, a := range col.all() {
			if a.Rule == RuleScan && a.Status == st {
				n++
			}
		}
		return n
	}
	scan(0)
	scan(20 * time.Second) // still within the window: the alert is already active
	if n := count(StatusFiring); n != 1 {
		t.Fatalf("continuing scan fired %d times, want 1", n)
	}
	clk.Set(t0.Add(5 * time.Minute))
	e.Sweep()
	if n := count(StatusResolved); n != 1 {
		t.Fatalf("resolves = %d, want 1", n)
	}
	scan(10 * time.Minute) // returns within the hour's dedup window
	clk.Set(t0.Add(20 * time.Minute))
	e.Sweep()
	if f, r := count(StatusFiring), count(StatusResolved); f != 1 || r != 1 {
		t.Fatalf("within dedup: firing %d resolved %d, want 1 and 1", f, r)
	}
	scan(2 * time.Hour) // a new dedup window
	if n := count(StatusFiring); n != 2 {
		t.Fatalf("after the dedup window firing = %d, want 2", n)
	}
}

func TestMaxSubjectsBoundsState(t *testing.T) {
	clk := newClock()
	rules := testRules()
	rc := rules[RuleHandshake]
	rc.MaxSubjects = 3
	rules[RuleHandshake] = rc
	e, _ := newTestEngine(t, clk, rules)
	feed(e, clk, every(10, 0, time.Second, func(i int) ev { return r2ev(handshakeFail(fmt.Sprintf("10.1.0.%d", i), "expired")) }))
	st := e.Stats()
	if st.SubjectsDropped[RuleHandshake] != 7 {
		t.Fatalf("subjects dropped = %d, want 7", st.SubjectsDropped[RuleHandshake])
	}
	clk.Advance(time.Hour)
	e.Sweep()
	e.mu.Lock()
	n := len(e.windows[RuleHandshake].subjects)
	e.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d subjects left after the window passed, want 0", n)
	}
}

func TestWriteNeverBlocks(t *testing.T) {
	e, err := New(Config{Queue: 2})
	if err != nil {
		t.Fatal(err)
	}
	r := denyFlow("10.0.0.1", "10.0.0.2", 1)
	for i := range 5 {
		err := e.Write(*r)
		if i < 2 && err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if i >= 2 && !errors.Is(err, ErrQueueFull) {
			t.Fatalf("write %d to a full queue: %v, want ErrQueueFull", i, err)
		}
	}
	e.ObserveAudit(audit.Entry{Action: ActionPolicyApply})
	if st := e.Stats(); st.Queued != 2 || st.Dropped != 4 {
		t.Fatalf("stats = %+v, want 2 queued, 4 dropped", st)
	}
}

func TestEngineIgnoresItsOwnFindings(t *testing.T) {
	clk := newClock()
	e, col := newTestEngine(t, clk, testRules())
	var loop []ev
	for i := range 30 {
		f := Finding(Alert{Key: "k", Rule: RuleScan, Severity: SeverityHigh, StartsAt: t0})
		f.ClassUID = flow.ClassNetworkActivity
		f.SrcEndpoint, f.DstEndpoint = ipEP("10.0.0.1", 1), ipEP("10.0.0.2", i+1)
		f.Unmapped = &flow.Moat{Verdict: flow.VerdictDeny}
		loop = append(loop, ev{at: time.Duration(i) * time.Millisecond, rec: &f})
	}
	feed(e, clk, loop)
	if got := col.all(); len(got) != 0 {
		t.Fatalf("own findings raised %+v", got)
	}
}

func TestNewRejectsBadRules(t *testing.T) {
	for name, mut := range map[string]func(Rules){
		"zero threshold": func(r Rules) { c := r[RuleScan]; c.Threshold = 0; r[RuleScan] = c },
		"zero window":    func(r Rules) { c := r[RuleWAFSpike]; c.Window = 0; r[RuleWAFSpike] = c },
		"bad severity":   func(r Rules) { c := r[RuleScan]; c.Severity = "urgent"; r[RuleScan] = c },
		"unknown rule":   func(r Rules) { r["nope"] = r[RuleScan] },
	} {
		r := DefaultRules()
		mut(r)
		if _, err := New(Config{Rules: r}); err == nil || !strings.HasPrefix(err.Error(), "detect: ") {
			t.Errorf("%s: err = %v, want a detect: error", name, err)
		}
	}
}

func TestDedupKeyStableAndBounded(t *testing.T) {
	if DedupKey(RuleScan, "10.0.0.1") != "moat/scan/10.0.0.1" {
		t.Fatal(DedupKey(RuleScan, "10.0.0.1"))
	}
	long := strings.Repeat("x", 1000)
	k := DedupKey(RuleNewEdge, long)
	if len(k) > 255 || k != DedupKey(RuleNewEdge, long) || k == DedupKey(RuleNewEdge, long+"y") {
		t.Fatalf("long key %q is not bounded, stable and distinct", k)
	}
}

func TestFiringAlertsBecomeFindings(t *testing.T) {
	clk := newClock()
	var findings []flow.Record
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Findings: flow.WriterFunc(func(r flow.Record) error {
		findings = append(findings, r)
		return nil
	})})
	if err != nil {
		t.Fatal(err)
	}
	feed(e, clk, every(12, 0, time.Second, func(i int) ev { return r2ev(denyFlow("198.51.100.66", "10.0.1.5", 1+i)) }))
	clk.Advance(time.Hour)
	e.Sweep()
	if len(findings) != 1 || findings[0].ClassUID != flow.ClassDetectionFinding || findings[0].FindingInfo.UID != "moat/scan/198.51.100.66" {
		t.Fatalf("findings = %+v, want one scan finding (resolves write none)", findings)
	}
}

func TestRunSweepsOnItsOwn(t *testing.T) {
	clk := newClock()
	col := &collector{ch: make(chan Alert, 4)}
	e, err := New(Config{Rules: testRules(), Now: clk.Now, Notifier: col, Sweep: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	if err := e.Write(*revokedUse("old-batch")); err != nil {
		t.Fatal(err)
	}
	if a := <-col.ch; a.Status != StatusFiring || a.Rule != RuleRevoked {
		t.Fatalf("first alert %+v", a)
	}
	clk.Advance(time.Hour) // no Sweep call: Run's ticker must resolve it
	if a := <-col.ch; a.Status != StatusResolved || a.Rule != RuleRevoked {
		t.Fatalf("second alert %+v", a)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func egressFlow(src, host, verdict, code string) *flow.Record {
	r := rec(flow.ClassNetworkActivity, verdict, "egress", code, svcEP(src, 0), &flow.Endpoint{Hostname: host, Port: 443})
	r.FirewallRule = &flow.Rule{Name: "payments"}
	return r
}

func dnsRefused(verdict string) *flow.Record {
	dst := ipEP("", 53)
	dst.Hostname = "aGVsbG8.evil.example."
	r := rec(flow.ClassNetworkActivity, verdict, "dns", flow.ReasonDNSRefused, ipEP("10.0.0.5", 40000), dst)
	r.ConnectionInfo = &flow.ConnectionInfo{DirectionID: flow.DirectionOutbound}
	return r
}

func firewallDrop(dir int) *flow.Record {
	r := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "firewall", flow.ReasonFirewall, ipEP("10.0.0.5", 40000), ipEP("203.0.113.5", 443))
	r.ConnectionInfo = &flow.ConnectionInfo{DirectionID: dir}
	return r
}

// TestClaimedIdentityInAlerts: a refused handshake's peer is recorded by
// its address, the identity its certificate claimed kept apart
// (flow.Moat.Claimed). The alerts say what was claimed: a revoked
// identity's names it as its subject, the failed handshakes' as a fact.
func TestClaimedIdentityInAlerts(t *testing.T) {
	clk := newClock()
	e, col := newTestEngine(t, clk, testRules())
	const claim = "spiffe://moat.test/svc/old-batch"
	revoked := rec(flow.ClassNetworkActivity, flow.VerdictDeny, "handshake", flow.ReasonRevoked, ipEP("203.0.113.9", 51000), svcEP("db", 5432))
	revoked.Unmapped.Claimed = claim
	failed := every(8, 0, 10*time.Second, func(int) ev {
		r := handshakeFail("203.0.113.10", flow.ReasonUnknownAuthority)
		r.Unmapped.Claimed = claim
		return r2ev(r)
	})
	feed(e, clk, append([]ev{r2ev(revoked)}, failed...))
	var sawRevoked, sawFailed bool
	for _, a := range col.all() {
		switch {
		case a.Rule == RuleRevoked:
			sawRevoked = true
			if a.Subject != claim || a.Details["claimed"] != claim || a.Details["src_ip"] != "203.0.113.9" {
				t.Errorf("revoked identity alert %+v: want the claim as subject and fact, beside the address", a)
			}
		case a.Rule == RuleHandshake:
			sawFailed = true
			if a.Subject != "203.0.113.10" || a.Details["last_claimed"] != claim {
				t.Errorf("failed handshakes alert %+v: want the address as subject and the claim as a fact", a)
			}
		}
	}
	if !sawRevoked || !sawFailed {
		t.Fatalf("alerts %+v: want revoked_identity and handshake_failures", col.all())
	}
}
