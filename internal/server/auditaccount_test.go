package server

import (
	"net/http"
	"testing"

	"moat/internal/api"
	"moat/internal/audit"
)

// TestAuditEntriesRecordTheAccount: every audit entry of an
// administrator's call records the account that made it beside the
// SPIFFE ID, and the entries of "admin create" and "admin remove" the
// account made and removed, so that two accounts of one name (one
// removed, one made again with the name) are told apart in the log.
func TestAuditEntriesRecordTheAccount(t *testing.T) {
	f := newAuthFixture(t)
	node := f.accessNode(t)
	admin := f.accs["admin"]
	if admin.account == "" {
		t.Fatal("the fixture's admin has no account ID")
	}
	// entries since from of action, intent and outcome alike.
	of := func(from int64, action string) []audit.Entry {
		var out []audit.Entry
		for _, en := range f.entriesSince(t, from) {
			if en.Entry.Action == action {
				out = append(out, en.Entry)
			}
		}
		return out
	}
	check := func(what string, es []audit.Entry, want int, actor, account, target string) {
		t.Helper()
		if len(es) != want {
			t.Fatalf("%s: %d entries, want %d: %+v", what, len(es), want, es)
		}
		for _, e := range es {
			if e.Actor != actor || e.ActorAccount() != account {
				t.Errorf("%s: entry by %s account %q, want %s account %q: %+v", what, e.Actor, e.ActorAccount(), actor, account, e)
			}
			if e.Result != resultPending && e.Detail[audit.DetailTargetAccount] != target {
				t.Errorf("%s: target account %q, want %q: %+v", what, e.Detail[audit.DetailTargetAccount], target, e)
			}
		}
	}

	from := f.log.Size()
	alice := f.newAdmin(t, "alice", api.RoleOperator)
	check("admin create", of(from, "admin.create"), 2, admin.id, admin.account, alice.account)
	f.enrolMFA(t, alice)
	from = f.log.Size()
	if code, e := f.call(t, alice.session, "GET", api.PathAccess, nil, nil); code != http.StatusOK {
		t.Fatalf("access list: %d %s", code, e.Error)
	}
	check("alice's read", of(from, "access.list"), 1, alice.id, alice.account, "")
	from = f.log.Size()
	f.reportSession(t, node, f.activeGrant(t, alice), []byte(`{"version": 2, "width": 80, "height": 24}`+"\n"))
	check("alice's break-glass session", of(from, ActionSessionStart), 1, alice.id, alice.account, "")

	t.Log("alice is removed, and another alice made")
	from = f.log.Size()
	if code, e := f.call(t, admin.session, "DELETE", api.PathAdmins, api.AdminRemove{Name: "alice"}, nil); code != http.StatusOK {
		t.Fatalf("admin remove: %d %s", code, e.Error)
	}
	check("admin remove", of(from, "admin.remove"), 2, admin.id, admin.account, alice.account)
	from = f.log.Size()
	alice2 := f.newAdmin(t, "alice", api.RoleOperator)
	if alice2.account == alice.account || alice2.id != alice.id {
		t.Fatalf("the new alice: %s account %s; the old: %s account %s", alice2.id, alice2.account, alice.id, alice.account)
	}
	check("admin create again", of(from, "admin.create"), 2, admin.id, admin.account, alice2.account)
	f.enrolMFA(t, alice2)
	from = f.log.Size()
	if code, e := f.call(t, alice2.session, "GET", api.PathAccess, nil, nil); code != http.StatusOK {
		t.Fatalf("access list: %d %s", code, e.Error)
	}
	reads := of(from, "access.list")
	check("the new alice's read", reads, 1, alice2.id, alice2.account, "")
	old := audit.Entry{Actor: alice.id, Detail: map[string]string{audit.DetailAccount: alice.account}}
	if reads[0].Who() == old.Who() {
		t.Errorf("the two alices are one in the log: %q", old.Who())
	}
}
