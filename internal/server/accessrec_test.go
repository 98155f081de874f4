package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
)

// TestAccessRecordingReaders: a session's recording is read by the
// administrator who held the session, by the approvers of its grant, and
// by role access.recording_role (admin by default) or above; any other
// administrator, an operator with a live MFA session included, is refused
// with 403 naming the session and who may read it, and the refusal is in
// the audit log as a denied access.recording. The refusal is the same for
// a session with no stored recording and for one that does not exist, so
// that it tells a non-reader nothing of the session; a reader is told.
func TestAccessRecordingReaders(t *testing.T) {
	f := newAuthFixture(t)
	admin := f.accs["admin"]
	acc := map[string]*authAccount{"admin": admin}
	for _, name := range []string{"holder", "approver", "bystander", "other"} {
		a := f.newAdmin(t, name, api.RoleOperator)
		f.enrolMFA(t, a)
		acc[name] = a
	}
	g := api.Grant{ID: "1" + strings.Repeat("0", 31), Requester: acc["holder"].id, Node: "web-1", Mode: api.ModeShell,
		Needed: 1, Approvals: []api.Approval{{By: acc["approver"].id, At: time.Now().UTC()}}}
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "root@web-1:~# cat /etc/shadow\r\n"]` + "\n")
	rec := f.plantRecording(t, g, body, true)
	unsent := f.plantRecording(t, g, body, false)
	// other held a session of a grant the bystander approved: neither
	// reads the other grant's recordings by it.
	f.plantRecording(t, api.Grant{ID: "2" + strings.Repeat("0", 31), Requester: acc["other"].id, Node: "web-1", Mode: api.ModeShell,
		Approvals: []api.Approval{{By: acc["bystander"].id}}}, body, true)
	missing := newSessionID()
	refusal := func(session string) string {
		return fmt.Sprintf("role \"operator\" may not read the recording of session %s: it is for the administrator who held the session, the approvers of its grant, and role \"admin\" or above", session)
	}
	for _, tc := range []struct {
		who, session string
		code         int
		msg          string // the error, or "" for the recording itself
	}{
		{"holder", rec.ID, http.StatusOK, ""},
		{"approver", rec.ID, http.StatusOK, ""},
		{"admin", rec.ID, http.StatusOK, ""},
		{"bystander", rec.ID, http.StatusForbidden, refusal(rec.ID)},
		{"other", rec.ID, http.StatusForbidden, refusal(rec.ID)},
		{"bystander", unsent.ID, http.StatusForbidden, refusal(unsent.ID)},
		{"bystander", missing, http.StatusForbidden, refusal(missing)},
		{"holder", unsent.ID, http.StatusNotFound, "session " + unsent.ID + ": the control plane holds no recording (not yet sent, or past retention)"},
		{"approver", unsent.ID, http.StatusNotFound, "session " + unsent.ID + ": the control plane holds no recording (not yet sent, or past retention)"},
		{"admin", missing, http.StatusNotFound, fmt.Sprintf("no session %q", missing)},
	} {
		a := acc[tc.who]
		from := f.log.Size()
		code, e, got := f.fetch(t, a.session, api.PathAccessRec+"?session="+tc.session)
		if code != tc.code || e.Error != tc.msg || (tc.msg == "" && string(got) != string(body)) || (tc.msg != "" && len(got) != 0) {
			t.Errorf("%s fetching session %s: %d %q, %d bytes; want %d %q", tc.who, tc.session, code, e.Error, len(got), tc.code, tc.msg)
			continue
		}
		var outcome *audit.Entry
		for _, en := range f.entriesSince(t, from) {
			if en.Entry.Action == "access.recording" && en.Entry.Actor == a.id && en.Entry.Result != resultPending {
				outcome = &en.Entry
			}
		}
		switch {
		case outcome == nil:
			t.Errorf("%s fetching session %s: no access.recording outcome in the audit log", tc.who, tc.session)
		case outcome.Target != tc.session:
			t.Errorf("%s fetching session %s: audited target %q", tc.who, tc.session, outcome.Target)
		case tc.code == http.StatusForbidden && (outcome.Result != "denied: "+tc.msg || outcome.Detail["grant"] != "" || outcome.Detail["stored_on"] != "" || outcome.Detail["reader"] != ""):
			// The refusal says nothing of the session beyond what the
			// caller asked: no grant, no server keeping it.
			t.Errorf("%s refused session %s: audited %q %v", tc.who, tc.session, outcome.Result, outcome.Detail)
		case tc.code == http.StatusOK && (outcome.Result != "ok" || outcome.Detail["grant"] != g.ID || outcome.Detail["reader"] == ""):
			t.Errorf("%s reading session %s: audited %q %v", tc.who, tc.session, outcome.Result, outcome.Detail)
		}
	}
}

// TestRecordingReader is recordingReader's table, the configured role
// included: with access.recording_role operator every operator reads
// every recording, as a team that shares its shells may want; a viewer
// still reads none, and a participant only their own sessions'.
func TestRecordingReader(t *testing.T) {
	const (
		holder   = "spiffe://example.org/admin/holder"
		approver = "spiffe://example.org/admin/approver"
		other    = "spiffe://example.org/admin/other"
	)
	g := api.Grant{ID: "1" + strings.Repeat("0", 31), Requester: holder, Approvals: []api.Approval{{By: approver}}}
	x := api.AccessSession{ID: newSessionID(), Grant: g.ID, Admin: holder}
	otherGrant := api.Grant{ID: "2" + strings.Repeat("0", 31), Requester: other, Approvals: []api.Approval{{By: approver}}}
	var byDefault, byOperator AccessConfig
	byDefault.defaults()
	byOperator.RecordingRole = api.RoleOperator
	byOperator.defaults()
	for _, tc := range []struct {
		name string
		cfg  *AccessConfig
		c    caller
		g    api.Grant
		want string
	}{
		{"the holder", &byDefault, caller{ID: holder, Role: api.RoleOperator}, g, readerHeld},
		{"the holder, the grant no longer kept", &byDefault, caller{ID: holder, Role: api.RoleOperator}, api.Grant{}, readerHeld},
		{"an approver", &byDefault, caller{ID: approver, Role: api.RoleOperator}, g, readerApproved},
		{"an approver, the grant no longer kept", &byDefault, caller{ID: approver, Role: api.RoleOperator}, api.Grant{}, ""},
		{"an approver of another grant", &byDefault, caller{ID: approver, Role: api.RoleOperator}, otherGrant, ""},
		{"another operator", &byDefault, caller{ID: other, Role: api.RoleOperator}, g, ""},
		{"an admin", &byDefault, caller{ID: other, Role: api.RoleAdmin}, g, readerRole},
		{"no role", &byDefault, caller{ID: other}, g, ""},
		{"no caller", &byDefault, caller{}, api.Grant{ID: g.ID, Approvals: []api.Approval{{By: ""}}}, ""},
		{"another operator, recording_role operator", &byOperator, caller{ID: other, Role: api.RoleOperator}, g, readerRole},
		{"a viewer, recording_role operator", &byOperator, caller{ID: other, Role: api.RoleViewer}, g, ""},
	} {
		if got := recordingReader(tc.cfg, &tc.c, x, tc.g); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
