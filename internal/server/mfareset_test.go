package server

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/store"
)

// TestMFAResetActsOnTheAccount: "moat admin mfa reset" removes the second
// factors of the name's current account, ending its MFA sessions, and its
// audit entry names that account (target_account). Second factors stored
// under the name for an earlier account of it (a write landing after
// that account's removal) are no account's: the reset leaves them as they
// are, resets nothing and says so, as every other reader ignores them.
func TestMFAResetActsOnTheAccount(t *testing.T) {
	f := newAuthFixture(t)
	admin := f.accs["admin"]
	alice := f.newAdmin(t, "alice", api.RoleOperator)
	f.enrolMFA(t, alice)

	reset := func(name string) (int, api.Error, *audit.Entry) {
		t.Helper()
		from := f.log.Size()
		code, e := f.call(t, admin.session, "POST", api.PathMFAReset, api.MFAReset{Name: name}, nil)
		return code, e, f.outcome(t, from, "mfa.reset", admin.id)
	}

	t.Log("alice's factors are reset: the entry names her account, her session ends")
	code, e, o := reset("alice")
	if code != http.StatusOK {
		t.Fatalf("mfa reset alice: %d %s", code, e.Error)
	}
	if o == nil || o.Result != "ok" || o.Target != alice.id || o.Detail[audit.DetailTargetAccount] != alice.account || o.Detail["sessions_ended"] != "1" {
		t.Errorf("the reset's audit entry: %+v, want ok on %s with target_account %s and one session ended", o, alice.id, alice.account)
	}
	if _, err := f.st.Get(f.ctx, prefixMFA+"alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("alice's second factors after the reset: %v, want none stored", err)
	}
	var st api.MFAStatus
	if code, e := f.call(t, alice.session, "GET", api.PathMFA, nil, &st); code != http.StatusOK || !st.TOTP.IsZero() || !st.Session.IsZero() {
		t.Errorf("alice's status after the reset: %d %q, authenticator %v, session %v; want none of either", code, e.Error, st.TOTP, st.Session)
	}

	t.Log("alice enrols again, leaves, and her factors land after her removal")
	alice.last = 0 // a new authenticator: none of its codes is spent
	f.enrolMFA(t, alice)
	var oldMFA mfaRecord
	if err := getJSON(f.ctx, f.st, prefixMFA+"alice", &oldMFA); err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, admin.session, "DELETE", api.PathAdmins, api.AdminRemove{Name: "alice"}, nil); code != http.StatusOK {
		t.Fatalf("admin remove: %d %s", code, e.Error)
	}
	if err := putJSON(f.ctx, f.st, prefixMFA+"alice", oldMFA); err != nil {
		t.Fatal(err)
	}
	alice2 := f.newAdmin(t, "alice", api.RoleOperator)
	stale, err := f.st.Get(f.ctx, prefixMFA+"alice")
	if err != nil {
		t.Fatal(err)
	}

	t.Log("a reset of the new alice, who has no factor, leaves the earlier account's alone")
	code, e, o = reset("alice")
	if code != http.StatusConflict || !strings.Contains(e.Error, `admin "alice" has no second factor to reset`) {
		t.Errorf("mfa reset of the new alice: %d %q, want 409 saying there is nothing to reset", code, e.Error)
	}
	if o == nil || o.Result == "ok" || o.Detail[audit.DetailTargetAccount] != alice2.account || o.Detail["mfa_of_earlier_account"] != "ignored" {
		t.Errorf("the refused reset's audit entry: %+v, want refused with target_account %s, the earlier account's factors ignored", o, alice2.account)
	}
	if kv, err := f.st.Get(f.ctx, prefixMFA+"alice"); err != nil || kv.ModRevision != stale.ModRevision {
		t.Errorf("the earlier alice's factors after the new alice's reset: %v (revision %d, was %d), want untouched", err, kv.ModRevision, stale.ModRevision)
	}

	t.Log("the new alice enrols over them, and a reset then removes hers")
	alice2.last = 0
	f.enrolMFA(t, alice2)
	code, e, o = reset("alice")
	if code != http.StatusOK {
		t.Fatalf("mfa reset of the new alice once enrolled: %d %s", code, e.Error)
	}
	if o == nil || o.Detail[audit.DetailTargetAccount] != alice2.account || o.Detail[audit.DetailTargetAccount] == alice.account {
		t.Errorf("the reset's audit entry: %+v, want target_account %s (the new account's)", o, alice2.account)
	}
	if _, err := f.st.Get(f.ctx, prefixMFA+"alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the new alice's second factors after the reset: %v, want none stored", err)
	}

	t.Log("a name with no account has nothing to reset")
	if code, e, _ := reset("ghost"); code != http.StatusNotFound || !strings.Contains(e.Error, `admin "ghost" does not exist`) {
		t.Errorf("mfa reset of a name with no account: %d %q, want 404", code, e.Error)
	}
}

// TestEarlierFactorsNotedOnlyWhenStored: a call that reads the caller's
// second factors notes that it ignored an earlier account's
// (mfa_of_earlier_account) only when some are stored, not for an account
// that never had any.
func TestEarlierFactorsNotedOnlyWhenStored(t *testing.T) {
	f := newAuthFixture(t)
	carl := f.newAdmin(t, "carl", api.RoleViewer)
	from := f.log.Size()
	if code, e := f.call(t, carl.cert, "GET", api.PathMFA, nil, nil); code != http.StatusOK {
		t.Fatalf("mfa status: %d %s", code, e.Error)
	}
	if o := f.outcome(t, from, "mfa.status", carl.id); o == nil || o.Detail["mfa_of_earlier_account"] != "" {
		t.Errorf("the status of an account with no second factors stored: %+v, want no earlier account's noted", o)
	}
	if err := putJSON(f.ctx, f.st, prefixMFA+"carl", mfaRecord{Account: "0123456789abcdef0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	from = f.log.Size()
	if code, e := f.call(t, carl.cert, "GET", api.PathMFA, nil, nil); code != http.StatusOK {
		t.Fatalf("mfa status: %d %s", code, e.Error)
	}
	if o := f.outcome(t, from, "mfa.status", carl.id); o == nil || o.Detail["mfa_of_earlier_account"] != "ignored" {
		t.Errorf("the status of an account with an earlier account's second factors stored: %+v, want them noted as ignored", o)
	}
}
