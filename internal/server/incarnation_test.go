package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/testkit"
)

// accessNode joins node web-1 to the fixture's control plane and returns
// its agent's certificate.
func (f *authFixture) accessNode(t *testing.T) *tls.Certificate {
	t.Helper()
	return f.joinNode(t, "web-1")
}

// joinNode joins node to the fixture's control plane with a token the
// fixture's admin creates, and returns its agent's certificate.
func (f *authFixture) joinNode(t *testing.T, node string) *tls.Certificate {
	t.Helper()
	var tok api.TokenResponse
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathTokens, api.TokenRequest{Node: node}, &tok); code != http.StatusOK {
		t.Fatalf("token create: %d %s", code, e.Error)
	}
	return f.join(t, tok.Token, node)
}

// activeGrant has a ask for a shell grant on web-1 through the API and the
// fixture's admin approve it.
func (f *authFixture) activeGrant(t *testing.T, a *authAccount) api.Grant {
	t.Helper()
	return f.activeGrantOn(t, a, "web-1")
}

// activeGrantOn is activeGrant on node.
func (f *authFixture) activeGrantOn(t *testing.T, a *authAccount, node string) api.Grant {
	t.Helper()
	var l api.GrantListing
	req := api.AccessRequest{Node: node, Mode: api.ModeShell, Reason: "incident 42", For: time.Hour}
	if code, e := f.call(t, a.session, "POST", api.PathAccess, req, &l); code != http.StatusOK {
		t.Fatalf("access request by %s: %d %s", a.name, code, e.Error)
	}
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathAccessApprov, api.GrantRef{ID: l.ID}, &l); code != http.StatusOK || l.State != api.GrantActive {
		t.Fatalf("access approve: %d %s, state %q", code, e.Error, l.State)
	}
	return l.Grant
}

// reportSession reports a shell session of g held by its requester, as
// its node's agent does: its start, its end with the recording's digest,
// and the recording. The session is marked relayed in the store first, as
// access.connect marks the connections it relays.
func (f *authFixture) reportSession(t *testing.T, node *tls.Certificate, g api.Grant, body []byte) api.AccessSession {
	t.Helper()
	return f.reportSessionAt(t, node, g, body, time.Time{}, time.Time{})
}

// reportSessionAt is reportSession with the times the node reports for
// the session's start and end (zero: none, the server's clock).
func (f *authFixture) reportSessionAt(t *testing.T, node *tls.Certificate, g api.Grant, body []byte, started, ended time.Time) api.AccessSession {
	t.Helper()
	x := f.endSession(t, node, g, body, started, ended)
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	resp, err := f.uploadRecording(ctx, node, bytes.NewReader(recordingUpload(t, x, body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("recording upload: %d", resp.StatusCode)
	}
	return x
}

// endSession reports the start and the end of a shell session of g held
// by its requester, whose recording is body, and returns the session.
func (f *authFixture) endSession(t *testing.T, node *tls.Certificate, g api.Grant, body []byte, started, ended time.Time) api.AccessSession {
	t.Helper()
	sum := sha256.Sum256(body)
	x := api.AccessSession{ID: newSessionID(), Grant: g.ID, Admin: g.Requester, Mode: g.Mode, Detail: "shell", Started: started}
	if err := putJSON(f.ctx, f.st, relayedKey(g.ID, x.ID), relayedSession{Node: g.Node, Expires: g.Expires}); err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, node, "POST", api.PathNodeAccessEvent, api.AccessEvent{Kind: "start", Session: x}, nil); code != http.StatusOK {
		t.Fatalf("session start: %d %s", code, e.Error)
	}
	x.Recording, x.EndReason, x.Ended = hex.EncodeToString(sum[:]), "exit", ended
	if code, e := f.call(t, node, "POST", api.PathNodeAccessEvent, api.AccessEvent{Kind: "end", Session: x}, nil); code != http.StatusOK {
		t.Fatalf("session end: %d %s", code, e.Error)
	}
	return x
}

// recordingUpload is the body of the upload of session x's recording:
// its header line, then the recording.
func recordingUpload(t *testing.T, x api.AccessSession, body []byte) []byte {
	t.Helper()
	head, err := json.Marshal(api.RecordingUpload{Session: x, Size: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	return append(append(head, '\n'), body...)
}

// uploadRecording sends an upload's body, as the node presenting node
// does, over a connection of its own.
func (f *authFixture) uploadRecording(ctx context.Context, node *tls.Certificate, body io.Reader) (*http.Response, error) {
	tr := f.transport(node)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "POST", "https://"+f.srv.Addr()+api.PathNodeAccessRec, body)
	if err != nil {
		return nil, err
	}
	return (&http.Client{Transport: tr}).Do(req)
}

// renew renews a's enrolment certificate through the API.
func (f *authFixture) renew(t *testing.T, a *authAccount) *tls.Certificate {
	t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if code, e := f.call(t, a.cert, "POST", api.PathAdminRenew, api.AdminRenewRequest{CSR: csr}, &resp); code != http.StatusOK {
		t.Fatalf("renew %s: %d %s", a.name, code, e.Error)
	}
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return ca.TLSCertificate(chain, key)
}

// outcome is the last audit entry since from of action by actor that is
// not an intent.
func (f *authFixture) outcome(t *testing.T, from int64, action, actor string) *audit.Entry {
	t.Helper()
	var out *audit.Entry
	for _, en := range f.entriesSince(t, from) {
		if en.Entry.Action == action && en.Entry.Actor == actor && en.Entry.Result != resultPending {
			e := en.Entry
			out = &e
		}
	}
	return out
}

// TestRecreatedAccountInheritsNothing: administrator accounts are named,
// and a name comes back when an account is removed and another is made
// with it, for another person perhaps. The new account inherits nothing of
// the old one: not the recordings of the sessions the old one held, not
// its grants, not its second factor, not a certificate of the old one that
// outlived the revocations. Each attempt is refused and audited, while an
// administrator who was not removed still reads their own recording.
func TestRecreatedAccountInheritsNothing(t *testing.T) {
	f := newAuthFixture(t)
	node := f.accessNode(t)
	alice := f.newAdmin(t, "alice", api.RoleOperator)
	f.enrolMFA(t, alice)
	dave := f.newAdmin(t, "dave", api.RoleOperator)
	f.enrolMFA(t, dave)
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "root@web-1:~# cat /etc/shadow\r\n"]` + "\n")
	g := f.activeGrant(t, alice)
	rec := f.reportSession(t, node, g, body)
	dg := f.activeGrant(t, dave)
	drec := f.reportSession(t, node, dg, body)
	if code, e, got := f.fetch(t, alice.session, api.PathAccessRec+"?session="+rec.ID); code != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("alice reading the recording of her session: %d %s", code, e.Error)
	}

	// A certificate of alice's that no removal revokes: the oldest of
	// more renewals than the account remembers.
	first := alice.cert
	for range maxEarlierCerts + 1 {
		alice.cert = f.renew(t, alice)
	}
	// alice's second factors as they stand, which a write landing just
	// after her removal (an enrolment or a login under way) leaves behind.
	// (Its codes are left unspent, so that the test needs no wait for
	// the next one.)
	var oldMFA mfaRecord
	if err := getJSON(f.ctx, f.st, prefixMFA+"alice", &oldMFA); err != nil {
		t.Fatal(err)
	}
	oldMFA.TOTP.LastStep = 0
	oldSecret := alice.secret

	// A grant of dave's that needs two approvals, one of them alice's.
	pendingID, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	pending := api.Grant{ID: pendingID, Requester: dave.id, RequesterAccount: dave.account, Node: "web-1", Mode: api.ModeShell, Reason: "two",
		For: time.Hour, Requested: now, PendingUntil: now.Add(time.Hour), Needed: 2, Approvals: []api.Approval{{By: alice.id, Account: alice.account, At: now}}}
	if err := putJSON(f.ctx, f.st, prefixGrant+pending.ID, pending); err != nil {
		t.Fatal(err)
	}

	t.Log("alice is removed; her grant ends with her, her approval of dave's pending grant is withdrawn")
	if code, e := f.call(t, f.accs["admin"].session, "DELETE", api.PathAdmins, api.AdminRemove{Name: "alice"}, nil); code != http.StatusOK {
		t.Fatalf("admin remove: %d %s", code, e.Error)
	}
	var ls []api.GrantListing
	if code, e := f.call(t, f.accs["admin"].session, "GET", api.PathAccess+"?id="+g.ID, nil, &ls); code != http.StatusOK || len(ls) != 1 {
		t.Fatalf("access list: %d %s", code, e.Error)
	}
	if ls[0].State != api.GrantRevoked {
		t.Errorf("alice's active grant after her removal: %s, want %s", ls[0].State, api.GrantRevoked)
	}
	var pl []api.GrantListing
	if code, e := f.call(t, f.accs["admin"].session, "GET", api.PathAccess+"?id="+pending.ID, nil, &pl); code != http.StatusOK || len(pl) != 1 {
		t.Fatalf("access list: %d %s", code, e.Error)
	}
	if pl[0].State != api.GrantPending || len(pl[0].Approvals) != 0 {
		t.Errorf("dave's pending grant after alice's removal: %s, approvals %+v; want pending with none", pl[0].State, pl[0].Approvals)
	}
	if err := putJSON(f.ctx, f.st, prefixMFA+"alice", oldMFA); err != nil {
		t.Fatal(err)
	}

	t.Log("another alice is made")
	alice2 := f.newAdmin(t, "alice", api.RoleOperator)
	if alice2.id != alice.id {
		t.Fatalf("the new account's SPIFFE ID %s is not the old one's %s", alice2.id, alice.id)
	}

	t.Log("the old alice's authenticator is not the new alice's second factor")
	alice2.secret = oldSecret
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var sess api.CertResponse
	from := f.log.Size()
	if code, e := f.call(t, alice2.cert, "POST", api.PathMFASession, api.MFASessionRequest{Code: alice2.code(t), CSR: csr}, &sess); code != http.StatusUnauthorized {
		t.Errorf("an MFA session for the new alice with the old alice's authenticator: %d %q, want 401", code, e.Error)
	}
	if len(sess.Chain) > 0 {
		// The old authenticator let the new account in: carry on with
		// that session, to try the rest.
		chain, err := api.ParseChain(sess.Chain)
		if err != nil {
			t.Fatal(err)
		}
		alice2.session = ca.TLSCertificate(chain, key)
	} else {
		if o := f.outcome(t, from, "mfa.session", alice2.id); o == nil || !strings.HasPrefix(o.Result, "denied") {
			t.Errorf("the refused MFA session is not audited as refused: %+v", o)
		}
		alice2.last = 0 // a new authenticator: none of its codes is spent
		f.enrolMFA(t, alice2)
	}

	t.Log("the new alice reads none of the old alice's recordings")
	from = f.log.Size()
	code, e, got := f.fetch(t, alice2.session, api.PathAccessRec+"?session="+rec.ID)
	if code != http.StatusForbidden || len(got) != 0 {
		t.Errorf("the new alice reading the old alice's recording: %d %q, %d bytes; want 403", code, e.Error, len(got))
	}
	if o := f.outcome(t, from, "access.recording", alice2.id); o == nil || !strings.HasPrefix(o.Result, "denied") || o.Target != rec.ID ||
		o.Detail["refused_reader"] != readerHeld+" under the same name, by another account" {
		t.Errorf("the refused read is not audited as the name's earlier account's: %+v", o)
	}

	t.Log("nor takes the credentials of the old alice's grant")
	_, csr, err = ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	from = f.log.Size()
	var ac api.AccessCert
	code, e = f.call(t, alice2.session, "POST", api.PathAccessCert, api.AccessCertRequest{Grant: g.ID, CSR: csr}, &ac)
	if want := "grant " + g.ID + " belongs to an earlier account named " + alice.id; code != http.StatusForbidden || len(ac.Chain) != 0 || !strings.HasPrefix(e.Error, want) {
		t.Errorf("the new alice taking the old alice's grant's certificate: %d %q, want 403 %q…", code, e.Error, want)
	}
	if o := f.outcome(t, from, "access.cert", alice2.id); o == nil || !strings.HasPrefix(o.Result, "denied") || o.Detail["outside_grant"] != "an earlier account of the requester's name" {
		t.Errorf("the refused certificate is not audited as refused: %+v", o)
	}

	t.Log("nor is the old alice's surviving certificate the new alice's")
	var rev identity.Revocations
	if err := getJSON(f.ctx, f.st, keyRevocations, &rev); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rev.Serials, identity.SerialHex(first.Leaf.SerialNumber)) {
		t.Fatal("the oldest certificate was revoked: it is no survivor")
	}
	if code, e := f.call(t, first, "GET", api.PathMFA, nil, nil); code != http.StatusUnauthorized || !strings.Contains(e.Error, "issued to an earlier account named \"alice\"") {
		t.Errorf("the old alice's surviving certificate on the new alice's account: %d %q, want 401", code, e.Error)
	}
	from = f.log.Size()
	f.srv.flushRefusals(f.ctx)
	summarised := false
	for _, en := range f.entriesSince(t, from) {
		if en.Entry.Action == ActionRefused && strings.Contains(en.Entry.Detail["top"], alice.id+" mfa.status "+api.ReasonEarlierAccount+" ×1") {
			summarised = true
		}
	}
	if !summarised {
		t.Errorf("the refusal of the earlier account's certificate is not in the refusals' audit entry: %+v", f.entriesSince(t, from))
	}

	t.Log("dave, not removed, still reads his own")
	if code, e, got := f.fetch(t, dave.session, api.PathAccessRec+"?session="+drec.ID); code != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("dave reading the recording of his session: %d %s", code, e.Error)
	}
	// and the new alice her own.
	g2 := f.activeGrant(t, alice2)
	rec2 := f.reportSession(t, node, g2, body)
	if code, e, got := f.fetch(t, alice2.session, api.PathAccessRec+"?session="+rec2.ID); code != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("the new alice reading the recording of her own session: %d %s", code, e.Error)
	}
}

// createBy has by create the administrator name through the API, and
// enrols its second factor.
func (f *authFixture) createBy(t *testing.T, by *authAccount, name, role string) *authAccount {
	t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if code, e := f.call(t, by.session, "POST", api.PathAdmins, api.AdminRequest{Name: name, Role: role, CSR: csr}, &resp); code != http.StatusOK {
		t.Fatalf("admin create %s by %s: %d %s", name, by.name, code, e.Error)
	}
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		t.Fatal(err)
	}
	a := f.account(t, name, role, ca.TLSCertificate(chain, key))
	f.enrolMFA(t, a)
	return a
}

// TestApproverMadeByRemovedAccount: an account made by an account the
// requester made is the requester's second hand, and its approval says
// so, even once the account between them is removed (its name may then be
// made again by someone else): who made an account is recorded by account
// when it is made, not looked up by name when asked.
func TestApproverMadeByRemovedAccount(t *testing.T) {
	f := newAuthFixture(t)
	f.accessNode(t)
	rita := f.createBy(t, f.accs["admin"], "rita", api.RoleAdmin)
	mid := f.createBy(t, rita, "mid", api.RoleAdmin)
	xena := f.createBy(t, mid, "xena", api.RoleAdmin)
	var made adminRecord
	if err := getJSON(f.ctx, f.st, prefixAdmin+"xena", &made); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(made.MadeBy, []string{mid.account, rita.account, f.accs["admin"].account}) {
		t.Errorf("xena's account was made by %v, want mid's, rita's and the first admin's accounts", made.MadeBy)
	}
	if code, e := f.call(t, f.accs["admin"].session, "DELETE", api.PathAdmins, api.AdminRemove{Name: "mid"}, nil); code != http.StatusOK {
		t.Fatalf("admin remove: %d %s", code, e.Error)
	}
	// mid's name is made again, by the fixture's admin: another account.
	f.createBy(t, f.accs["admin"], "mid", api.RoleAdmin)
	var l api.GrantListing
	req := api.AccessRequest{Node: "web-1", Mode: api.ModeShell, Reason: "incident 43", For: time.Hour}
	if code, e := f.call(t, rita.session, "POST", api.PathAccess, req, &l); code != http.StatusOK {
		t.Fatalf("access request: %d %s", code, e.Error)
	}
	from := f.log.Size()
	if code, e := f.call(t, xena.session, "POST", api.PathAccessApprov, api.GrantRef{ID: l.ID}, &l); code != http.StatusOK {
		t.Fatalf("access approve: %d %s", code, e.Error)
	}
	if o := f.outcome(t, from, "access.approve", xena.id); o == nil || o.Detail["approver_made_by_requester"] != "true" {
		t.Errorf("xena, made by an account rita made, approving rita's grant: audited %+v, want approver_made_by_requester", o)
	}
}

// legacyAdmin stores name's account as a release before account IDs left
// it (no ID), with a certificate the CA signed for it then (no account
// mark).
func (f *authFixture) legacyAdmin(t *testing.T, name, role string) *authAccount {
	t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.AdminID(f.srv.td, name)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := f.srv.CA().SignCSR(csr, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := putJSON(f.ctx, f.st, prefixAdmin+name, adminRecord{Role: role, Cert: issuedAdminCert(chain, f.srv.CA().Bundle().X509Authorities())}); err != nil {
		t.Fatal(err)
	}
	return f.account(t, name, role, ca.TLSCertificate(chain, key))
}

// TestAccountsFromBeforeIDs: what was recorded before accounts carried an
// ID matches no account, its own name's included: a grant of then is no
// one's, a session of then is read by the role alone, and an account of
// then asks for no grant until a renewal gives it an ID, which it is told.
// The renewal adopts it: its certificates of then still count, its second
// factor is still its own. A certificate without an account mark is
// refused on an account made since.
func TestAccountsFromBeforeIDs(t *testing.T) {
	f := newAuthFixture(t)
	f.accessNode(t)
	admin := f.accs["admin"]
	lena := f.legacyAdmin(t, "lena", api.RoleOperator)
	if lena.account != "" {
		t.Fatalf("a legacy account with ID %q", lena.account)
	}
	f.enrolMFA(t, lena)
	now := time.Now().UTC()
	g := api.Grant{ID: "1" + strings.Repeat("0", 31), Requester: lena.id, Node: "web-1", Mode: api.ModeShell, Reason: "then", For: time.Hour,
		Requested: now, Needed: 1, Approvals: []api.Approval{{By: admin.id, At: now}}, Starts: now, Expires: now.Add(time.Hour)}
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "then\r\n"]` + "\n")
	x := f.plantRecording(t, g, body, true)

	from := f.log.Size()
	if code, e, _ := f.fetch(t, lena.session, api.PathAccessRec+"?session="+x.ID); code != http.StatusForbidden || !strings.Contains(e.Error, "none recorded before IDs") {
		t.Errorf("lena reading the recording of her session of then: %d %q, want 403 saying why", code, e.Error)
	}
	if o := f.outcome(t, from, "access.recording", lena.id); o == nil || !strings.HasPrefix(o.Result, "denied") {
		t.Errorf("the refused read is not audited as refused: %+v", o)
	}
	if code, e, got := f.fetch(t, admin.session, api.PathAccessRec+"?session="+x.ID); code != http.StatusOK || !bytes.Equal(got, body) {
		t.Errorf("an admin reading a recording of then: %d %q", code, e.Error)
	}
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, lena.session, "POST", api.PathAccessCert, api.AccessCertRequest{Grant: g.ID, CSR: csr}, nil); code != http.StatusForbidden ||
		!strings.Contains(e.Error, "was recorded before accounts carried an ID, so it is no account's") {
		t.Errorf("lena taking the certificate of her grant of then: %d %q, want 403 saying why", code, e.Error)
	}
	req := api.AccessRequest{Node: "web-1", Mode: api.ModeShell, Reason: "incident 44", For: time.Hour}
	if code, e := f.call(t, lena.session, "POST", api.PathAccess, req, nil); code != http.StatusForbidden ||
		!strings.Contains(e.Error, `admin "lena"'s account was made before accounts carried an ID`) || !strings.Contains(e.Error, "moat admin renew") {
		t.Errorf("lena asking for a grant before her account has an ID: %d %q, want 403 saying why and what to do", code, e.Error)
	}

	t.Log("a renewal gives lena's account an ID and keeps what was hers")
	old := lena.cert
	lena.cert = f.renew(t, lena)
	var rec adminRecord
	if err := getJSON(f.ctx, f.st, prefixAdmin+"lena", &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Account == "" || !rec.Adopted {
		t.Fatalf("lena's account after a renewal: %+v, want an adopted ID", rec)
	}
	var st api.MFAStatus
	if code, e := f.call(t, old, "GET", api.PathMFA, nil, &st); code != http.StatusOK || st.TOTP.IsZero() {
		t.Errorf("lena's certificate of then, after the renewal: %d %q, authenticator %v", code, e.Error, st.TOTP)
	}
	var l api.GrantListing
	if code, e := f.call(t, lena.session, "POST", api.PathAccess, req, &l); code != http.StatusOK || l.RequesterAccount != rec.Account {
		t.Errorf("lena asking for a grant once adopted: %d %q, requester account %q", code, e.Error, l.RequesterAccount)
	}

	t.Log("an account made since takes no certificate without its mark")
	nina := f.newAdmin(t, "nina", api.RoleOperator)
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	ninaID, err := identity.AdminID(f.srv.td, "nina")
	if err != nil {
		t.Fatal(err)
	}
	chain, err := f.srv.CA().SignCSR(csr, ninaID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, ca.TLSCertificate(chain, key), "GET", api.PathMFA, nil, nil); code != http.StatusUnauthorized || e.Reason != api.ReasonEarlierAccount {
		t.Errorf("an unmarked certificate of nina's name: %d %q (reason %q), want 401 %s", code, e.Error, e.Reason, api.ReasonEarlierAccount)
	}
	if code, e := f.call(t, nina.cert, "GET", api.PathMFA, nil, nil); code != http.StatusOK {
		t.Errorf("nina's own certificate: %d %q", code, e.Error)
	}
}

// TestFlowFollowEndsWithTheAccount: a follow stream ends when its
// caller's account is removed, even one opened with a certificate that no
// removal revokes (the oldest of more renewals than an account
// remembers).
func TestFlowFollowEndsWithTheAccount(t *testing.T) {
	f := newAuthFixture(t)
	vera := f.newAdmin(t, "vera", api.RoleViewer)
	first := vera.cert
	for range maxEarlierCerts + 1 {
		vera.cert = f.renew(t, vera)
	}
	st := f.follow(t, first)

	if code, e := f.call(t, f.accs["admin"].session, "DELETE", api.PathAdmins, api.AdminRemove{Name: "vera"}, nil); code != http.StatusOK {
		t.Fatalf("admin remove: %d %s", code, e.Error)
	}
	var rev identity.Revocations
	if err := getJSON(f.ctx, f.st, keyRevocations, &rev); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(rev.Serials, identity.SerialHex(first.Leaf.SerialNumber)) {
		t.Fatal("the oldest certificate was revoked: it is no survivor")
	}
	st.ends(t, "the stream of a removed administrator's surviving certificate")
}
