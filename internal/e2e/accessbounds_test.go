package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/pquerna/otp/totp"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/flow"
)

// callErr is the refusal of a call: its status and message.
func callErr(t *testing.T, err error) (int, string) {
	t.Helper()
	var se *api.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return se.Code, se.Msg
}

// printableEntry says whether every field of e an administrator reads
// holds printable characters only: no line, escape sequence or direction
// override that would forge what a reader of the log sees.
func printableEntry(e audit.Entry) bool {
	ok := func(s string) bool {
		for _, r := range s {
			if !unicode.IsPrint(r) {
				return false
			}
		}
		return true
	}
	if !ok(e.Actor) || !ok(e.Target) || !ok(e.Result) {
		return false
	}
	for k, v := range e.Detail {
		if !ok(k) || !ok(v) {
			return false
		}
	}
	return true
}

// TestBreakGlassRequestBounds: what a grant's requester sends is bounded
// and checked before anything is kept: a reason with a line break, an
// escape sequence, a direction override or past its length, a duration
// past the maximum, a target that is not a name, are refused with the
// field named, and the refusals' audit entries hold none of those
// characters, even where the refused value is the entry's target.
func TestBreakGlassRequestBounds(t *testing.T) {
	c := newCluster(t)
	c.startAgent("n1")
	alice := c.newGrantAccount("alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	forged := "INC-1\n2026-01-01T00:00:00Z admin/bob access.approve ok"
	for _, tc := range []struct {
		name string
		req  api.AccessRequest
		want string
	}{
		{"a reason with a new line", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: forged, For: time.Hour}, "reason: printable characters only"},
		{"a reason with an escape sequence", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-1\x1b[2K\rapproved", For: time.Hour}, "reason: printable characters only"},
		{"a reason with a direction override", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-1 \u202edevorppa", For: time.Hour}, "reason: printable characters only"},
		{"a reason past its length", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: strings.Repeat("x", api.MaxReason+1), For: time.Hour}, "reason: at most 256 bytes"},
		{"a blank reason", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: " \u00a0", For: time.Hour}, "reason: say why"},
		{"a grant past the maximum", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-1", For: 8*time.Hour + time.Second}, "want a positive duration of at most 8h0m0s"},
		{"a negative duration", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-1", For: -time.Hour}, "want a positive duration"},
		{"a node that is not a name", api.AccessRequest{Node: forged, Mode: api.ModeShell, Reason: "INC-1", For: time.Hour}, "node: "},
		{"a service that is not a name", api.AccessRequest{Mode: api.ModeForward, Service: "db\x1b]52;c;eA==\a", Reason: "INC-1", For: time.Hour}, "service: "},
		{"a shell naming a port", api.AccessRequest{Node: "n1", Mode: api.ModeShell, Port: 22, Reason: "INC-1", For: time.Hour}, "a shell grant names a node only"},
	} {
		err := alice.session.Call(ctx, http.MethodPost, api.PathAccess, tc.req, nil)
		if code, msg := callErr(t, err); code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want 400 %q", tc.name, code, msg, tc.want)
		}
	}
	var grants []api.GrantListing
	if err := c.call(http.MethodGet, api.PathAccess+"?all=1", nil, &grants); err != nil || len(grants) != 0 {
		t.Fatalf("grants after the refused requests: %v, %v", grants, err)
	}
	refused := 0
	for _, e := range auditEntries(t, c, "access.request") {
		if strings.HasPrefix(e.Result, "error: ") {
			refused++
		}
		if !printableEntry(e) {
			t.Errorf("an audit entry of a refused request holds a control character: %+q", e)
		}
	}
	if refused != 10 {
		t.Errorf("%d refused requests in the audit log, want 10", refused)
	}
	t.Log("a grant ID that is not one, as the target of an approval, a revocation, a certificate")
	for _, path := range []string{api.PathAccessApprov, api.PathAccessRevoke} {
		err := c.call(http.MethodPost, path, api.GrantRef{ID: forged}, nil)
		if code, _ := callErr(t, err); code != http.StatusBadRequest {
			t.Errorf("%s of grant %q: %v", path, forged, err)
		}
	}
	err := alice.session.Call(ctx, http.MethodPost, api.PathAccessCert, api.AccessCertRequest{Grant: forged}, nil)
	if code, _ := callErr(t, err); code != http.StatusBadRequest {
		t.Errorf("access.cert of grant %q: %v", forged, err)
	}
	for _, action := range []string{"access.approve", "access.revoke", "access.cert"} {
		es := auditEntries(t, c, action)
		if len(es) == 0 {
			t.Errorf("no audit entry of the refused %s", action)
		}
		for _, e := range es {
			if !printableEntry(e) {
				t.Errorf("an audit entry of a refused %s holds a control character: %+q", action, e)
			}
		}
	}
}

// requestShell asks, as a, for a shell on n1 and returns the pending grant.
func requestShell(t *testing.T, a *grantAccount, reason string) api.Grant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var l api.GrantListing
	if err := a.session.Call(ctx, http.MethodPost, api.PathAccess, api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: reason, For: time.Hour}, &l); err != nil {
		t.Fatalf("access request by %s: %v", a.name, err)
	}
	return l.Grant
}

// TestBreakGlassGrantTimeBox: a grant is approved while it waits and
// used while it runs, never outside: an approval of a request that lapsed
// or was withdrawn is refused, a second approval does not move an active
// grant's end, two approvers at once start it once, and once it ends
// (server time) its credentials and its relay are refused, and the
// refusals are in the audit log as outside the grant.
func TestBreakGlassGrantTimeBox(t *testing.T) {
	c := newCluster(t)
	n1 := c.startAgent("n1")
	alice := c.newGrantAccount("alice")
	_, bobDir := c.newAdmin("bob", api.RoleAdmin)
	bob := c.mfaAdmin(bobDir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Log("a request left waiting past pending_for lapses, and is not approved after")
	lapsed := requestShell(t, alice, "INC-70")
	c.clk.Advance(time.Hour + time.Second)
	err := c.call(http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: lapsed.ID}, nil)
	if code, msg := callErr(t, err); code != http.StatusConflict || msg != "grant "+lapsed.ID+" is declined, not pending" {
		t.Fatalf("approving a lapsed request: %d %q", code, msg)
	}

	t.Log("a request its requester withdrew is not approved after")
	withdrawn := requestShell(t, alice, "INC-71")
	if err := alice.session.Call(ctx, http.MethodPost, api.PathAccessRevoke, api.GrantRef{ID: withdrawn.ID}, nil); err != nil {
		t.Fatal(err)
	}
	err = c.call(http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: withdrawn.ID}, nil)
	if code, msg := callErr(t, err); code != http.StatusConflict || msg != "grant "+withdrawn.ID+" is revoked, not pending" {
		t.Fatalf("approving a withdrawn request: %d %q", code, msg)
	}

	t.Log("two approvers at once: the grant starts once, with one approval")
	raced := requestShell(t, alice, "INC-72")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, cl := range []*api.Client{c.admin, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cl.Call(ctx, http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: raced.ID}, nil)
		}()
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two approvals at once of a grant needing one: %v, %v", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil {
			if code, _ := callErr(t, err); code != http.StatusConflict {
				t.Fatalf("the losing approval: %v", err)
			}
		}
	}
	var ls []api.GrantListing
	if err := c.call(http.MethodGet, api.PathAccess+"?id="+raced.ID, nil, &ls); err != nil {
		t.Fatal(err)
	}
	g := ls[0].Grant
	if ls[0].State != api.GrantActive || len(g.Approvals) != 1 || !g.Expires.Equal(g.Starts.Add(time.Hour)) {
		t.Fatalf("the raced grant: %s, %d approvals, %s to %s", ls[0].State, len(g.Approvals), g.Starts, g.Expires)
	}

	t.Log("a later approval does not extend an active grant")
	c.clk.Advance(30 * time.Minute)
	err = c.call(http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: g.ID}, nil)
	if code, msg := callErr(t, err); code != http.StatusConflict || msg != "grant "+g.ID+" is active, not pending" {
		t.Fatalf("approving an active grant again: %d %q", code, msg)
	}
	c.settle("n1's agent to hold the grant", func() bool {
		h, ok := n1.Grant(g.ID)
		return ok && h.Active(c.clk.Now())
	})
	cert := grantCert(t, alice, g)
	if said, err := relayedShell(t, alice, g, cert, nil); err != nil || !strings.HasPrefix(said, "SSH-2.0-moat") {
		t.Fatalf("the grant while it runs: %q, %v", said, err)
	}

	t.Log("past its end, by the server's clock, the grant gives no credentials and no relay")
	c.clk.Advance(30*time.Minute + time.Second)
	key := func() []byte {
		_, csr, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}()
	err = alice.session.Call(ctx, http.MethodPost, api.PathAccessCert, api.AccessCertRequest{Grant: g.ID, CSR: key}, nil)
	if code, msg := callErr(t, err); code != http.StatusForbidden || msg != "grant "+g.ID+" is expired" {
		t.Fatalf("credentials of an expired grant: %d %q", code, msg)
	}
	_, err = alice.session.Stream(ctx, api.PathAccessDial, http.Header{api.HeaderGrant: {g.ID}, api.HeaderALPN: {api.ALPNAccessSSH}})
	if code, msg := callErr(t, err); code != http.StatusForbidden || msg != "grant "+g.ID+" is expired" {
		t.Fatalf("a relay under an expired grant: %d %q", code, msg)
	}
	for _, action := range []string{"access.cert", "access.connect"} {
		var outside []string
		for _, e := range auditEntries(t, c, action) {
			if (e.Target == g.ID || e.Detail["grant"] == g.ID) && strings.HasPrefix(e.Result, "denied: ") {
				outside = append(outside, e.Detail["outside_grant"])
			}
		}
		if len(outside) != 1 || outside[0] != api.GrantExpired {
			t.Errorf("the refused %s's audit entries: outside_grant %q, want one %q", action, outside, api.GrantExpired)
		}
	}
}

// TestMFACodeWindow: a TOTP code is taken within one 30-second step of the
// server's clock either way, no further: the code of two steps before or
// after is refused (a code read off a screen a minute ago, or one an
// attacker computed ahead from a clock they control, buys nothing), and
// the later one is taken once the server's clock reaches it, so the
// refusal was the window's.
func TestMFACodeWindow(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	s, err := api.NewAdminSession(c.addr, c.adminDir, api.SessionConfig{Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code := func(steps int) string {
		t.Helper()
		v, err := totp.GenerateCode(c.secrets[c.adminDir], c.clk.Now().Add(time.Duration(steps)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// A code equal to one of the window's would be taken: pick times
	// whose codes differ from it.
	window := map[string]bool{code(-1): true, code(0): true, code(1): true}
	for _, steps := range []int{-2, 2} {
		v := code(steps)
		if window[v] {
			t.Logf("the code %d steps away equals one of the window's; not tried", steps)
			continue
		}
		if _, err := s.Login(ctx, v); !errors.Is(err, api.ErrUnauthenticated) || !strings.Contains(err.Error(), "MFA code refused") {
			t.Fatalf("the code of %d steps away: %v", steps, err)
		}
	}
	ahead := code(2)
	c.clk.Advance(60 * time.Second)
	if _, err := s.Login(ctx, ahead); err != nil {
		t.Fatalf("the code once its step is the server's: %v", err)
	}
	refused := 0
	for _, e := range auditEntries(t, c, "mfa.session") {
		if strings.HasPrefix(e.Result, "denied: MFA code refused") {
			refused++
		}
	}
	if refused < 1 {
		t.Fatalf("the refused codes are not in the audit log")
	}
}

// TestBreakGlassGrantIsOneNodes: a grant reaches its node only. The relay
// goes where the grant it names points; an administrator who holds grants
// on two nodes and presents one node's grant certificate inside the relay
// to the other is refused there, by the agent, as outside the grant, and
// the refusal is a security event naming them.
func TestBreakGlassGrantIsOneNodes(t *testing.T) {
	c := newCluster(t)
	recs := &accessRefusals{got: map[string]flow.Record{}}
	n1 := c.startAgent("n1")
	n2 := c.startAgent("n2", func(cfg *agent.Config) { cfg.Flows = recs })
	alice := c.newGrantAccount("alice")
	g1 := c.shellGrant(alice, n1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var l api.GrantListing
	if err := alice.session.Call(ctx, http.MethodPost, api.PathAccess, api.AccessRequest{Node: "n2", Mode: api.ModeShell, Reason: "INC-73", For: time.Hour}, &l); err != nil {
		t.Fatal(err)
	}
	if err := c.call(http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: l.ID}, &l); err != nil || l.State != api.GrantActive {
		t.Fatalf("approve: %v, %s", err, l.State)
	}
	g2 := l.Grant
	c.settle("n2's agent to hold its grant", func() bool {
		g, ok := n2.Grant(g2.ID)
		return ok && g.Active(c.clk.Now())
	})
	if _, ok := n2.Grant(g1.ID); ok {
		t.Fatalf("n2's agent holds n1's grant %s", g1.ID)
	}

	t.Log("n1's grant certificate, inside the relay to n2, is refused")
	if said, err := relayedShell(t, alice, g2, grantCert(t, alice, g1), nil); err == nil {
		t.Fatalf("n2's agent admitted n1's grant certificate: it said %q", said)
	}
	rec := refusal(t, c, recs, alice.id, "grant "+g1.ID+" is not a grant of node \"n2\"")
	if rec.Unmapped.ReasonCode != flow.ReasonOutsideGrant || rec.Unmapped.Account != alice.account {
		t.Fatalf("the refusal's record: %+v", rec.Unmapped)
	}
	t.Log("n2's own grant certificate is admitted")
	if said, err := relayedShell(t, alice, g2, grantCert(t, alice, g2), nil); err != nil || !strings.HasPrefix(said, "SSH-2.0-moat") {
		t.Fatalf("n2's grant: %q, %v", said, err)
	}
}

// TestBreakGlassStolenEnrolment: a thief holding an administrator's
// enrolment certificate and key, but not their authenticator, gets no
// break-glass access: asking for a grant, approving one (as another
// administrator whose certificate was stolen too) and taking a grant's
// credentials all need a fresh second factor; and a relay opened under
// the victim's active grant admits no one without the grant's
// certificate: the agent refuses the enrolment certificate and records
// the refusal.
func TestBreakGlassStolenEnrolment(t *testing.T) {
	c := newCluster(t)
	recs := &accessRefusals{got: map[string]flow.Record{}}
	n1 := c.startAgent("n1", func(cfg *agent.Config) { cfg.Flows = recs })
	alice := c.newGrantAccount("alice")
	thief, err := api.NewClientFromDir(c.addr, alice.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	bobThief, _ := c.newAdmin("bob", api.RoleAdmin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	req := api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-74", For: time.Hour}
	if err := thief.Call(ctx, http.MethodPost, api.PathAccess, req, nil); !errors.Is(err, api.ErrMFARequired) {
		t.Fatalf("a request with alice's stolen enrolment certificate: %v", err)
	}
	pending := requestShell(t, alice, "INC-75")
	if err := bobThief.Call(ctx, http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: pending.ID}, nil); !errors.Is(err, api.ErrMFARequired) {
		t.Fatalf("an approval with bob's stolen enrolment certificate: %v", err)
	}
	var ls []api.GrantListing
	if err := c.call(http.MethodGet, api.PathAccess+"?id="+pending.ID, nil, &ls); err != nil || ls[0].State != api.GrantPending {
		t.Fatalf("the grant after the refused approval: %+v, %v", ls, err)
	}

	g := c.shellGrant(alice, n1)
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	if err := thief.Call(ctx, http.MethodPost, api.PathAccessCert, api.AccessCertRequest{Grant: g.ID, CSR: csr}, nil); !errors.Is(err, api.ErrMFARequired) {
		t.Fatalf("the grant's credentials with the stolen enrolment certificate: %v", err)
	}
	// Refused before their handler, they are counted in the summary of
	// refused calls, by who made them.
	for _, want := range []string{alice.id.String() + " access.request unauthenticated ×",
		"spiffe://example.org/admin/bob access.approve unauthenticated ×", alice.id.String() + " access.cert unauthenticated ×"} {
		c.settle("the refusal "+want+" in the audit log", func() bool {
			for _, e := range auditEntries(t, c, "security.refused") {
				if strings.Contains(e.Detail["top"], want) {
					return true
				}
			}
			return false
		})
	}

	t.Log("a relay under alice's grant, with her enrolment certificate inside: the agent refuses it")
	enrolment, _, err := api.LoadCredentials(alice.dir)
	if err != nil {
		t.Fatal(err)
	}
	stolen := &grantAccount{name: alice.name, id: alice.id, account: alice.account, session: thief, dir: alice.dir}
	if said, err := relayedShell(t, stolen, g, enrolment, nil); err == nil {
		t.Fatalf("the agent admitted an enrolment certificate under grant %s: it said %q", g.ID, said)
	}
	rec := refusal(t, c, recs, alice.id, "an administrator must present the certificate of an access grant")
	if rec.Unmapped.ReasonCode != flow.ReasonOutsideGrant {
		t.Fatalf("the refusal's record: %+v", rec.Unmapped)
	}
}
