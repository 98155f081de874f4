package server

import (
	"net/http"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/ca"
)

// TestFactorChangeNeedsItsAuditEntry: a call of any role that changes the
// caller's own second factors, MFA sessions or certificate is, like the calls of
// operators and above, on record before it takes effect: while the audit
// log cannot be written it is refused with nothing changed, so no
// enrolment, key, logout or renewal happens unseen by the log and detection.
func TestFactorChangeNeedsItsAuditEntry(t *testing.T) {
	f := newAuthFixture(t)
	admin, viewer := f.accs["admin"], f.accs["viewer"]
	actions := map[string]bool{}
	for _, r := range f.srv.AdminRoutes() {
		actions[r.Action] = true
	}
	for a := range ownCredentialActions {
		if !actions[a] {
			t.Errorf("ownCredentialActions names %q, which no admin call is", a)
		}
	}

	f.auditDown.Store(true)
	var en api.MFAEnrollment
	code, e := f.call(t, viewer.cert, "POST", api.PathMFAEnroll, nil, &en)
	if code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "nothing was changed") || en.Secret != "" {
		t.Fatalf("mfa enroll while the audit log is down: %d %q, secret answered: %t", code, e.Error, en.Secret != "")
	}
	code, e = f.call(t, admin.session, "POST", api.PathMFALogout, nil, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "nothing was changed") {
		t.Fatalf("mfa logout while the audit log is down: %d %q", code, e.Error)
	}
	t.Log("a renewal of an enrolment certificate is such a change too: it signs a credential and rewrites the account's record")
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	before := f.revisions(t)
	var renewed api.CertResponse
	code, e = f.call(t, viewer.cert, "POST", api.PathAdminRenew, api.AdminRenewRequest{CSR: csr}, &renewed)
	if code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "nothing was changed") || len(renewed.Chain) != 0 {
		t.Fatalf("admin renew while the audit log is down: %d %q, chain answered: %t", code, e.Error, len(renewed.Chain) != 0)
	}
	if after := f.revisions(t); after[prefixAdmin+viewer.name] != before[prefixAdmin+viewer.name] {
		t.Fatalf("the viewer's account record changed under a renewal the audit log did not hold (revision %d, then %d)", before[prefixAdmin+viewer.name], after[prefixAdmin+viewer.name])
	}
	f.auditDown.Store(false)

	var st api.MFAStatus
	if code, e := f.call(t, admin.session, "GET", api.PathMFA, nil, &st); code != http.StatusOK || st.Session.IsZero() {
		t.Fatalf("the admin's session after the refused logout: %d %q %+v", code, e.Error, st)
	}
	if code, e := f.call(t, viewer.cert, "POST", api.PathMFAConfirm, api.MFACode{Code: "000000"}, nil); code != http.StatusBadRequest || !strings.Contains(e.Error, "no enrolment is waiting") {
		t.Fatalf("the viewer's enrolment after the refused enroll: %d %q", code, e.Error)
	}
}
