package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/store"
	"moat/internal/testkit"
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
	g := api.Grant{ID: "1" + strings.Repeat("0", 31), Requester: acc["holder"].id, RequesterAccount: acc["holder"].account, Node: "web-1", Mode: api.ModeShell,
		Needed: 1, Approvals: []api.Approval{{By: acc["approver"].id, Account: acc["approver"].account, At: time.Now().UTC()}}}
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "root@web-1:~# cat /etc/shadow\r\n"]` + "\n")
	rec := f.plantRecording(t, g, body, true)
	unsent := f.plantRecording(t, g, body, false)
	// other held a session of a grant the bystander approved: neither
	// reads the other grant's recordings by it.
	f.plantRecording(t, api.Grant{ID: "2" + strings.Repeat("0", 31), Requester: acc["other"].id, RequesterAccount: acc["other"].account, Node: "web-1", Mode: api.ModeShell,
		Approvals: []api.Approval{{By: acc["bystander"].id, Account: acc["bystander"].account}}}, body, true)
	missing := newSessionID()
	refusal := func(session string) string {
		return fmt.Sprintf("role \"operator\" may not read the recording of session %s: it is for the account that held the session, its grant's approvers, and role \"admin\" or above (matched by account ID, not name; none recorded before IDs)", session)
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
		// The accounts of the names, and of later accounts of the same
		// names (removed, then made again).
		holderAcct, approverAcct, otherAcct = "1a", "2a", "3a"
		laterHolder, laterApprover          = "1b", "2b"
	)
	g := api.Grant{ID: "1" + strings.Repeat("0", 31), Requester: holder, RequesterAccount: holderAcct,
		Approvals: []api.Approval{{By: approver, Account: approverAcct}}}
	x := api.AccessSession{ID: newSessionID(), Grant: g.ID, Admin: holder, AdminAccount: holderAcct}
	otherGrant := api.Grant{ID: "2" + strings.Repeat("0", 31), Requester: other, RequesterAccount: otherAcct,
		Approvals: []api.Approval{{By: approver, Account: approverAcct}}}
	// Recorded before accounts carried an ID: no account's.
	oldGrant := api.Grant{ID: g.ID, Requester: holder, Approvals: []api.Approval{{By: approver}}}
	oldSession := api.AccessSession{ID: x.ID, Grant: g.ID, Admin: holder}
	var byDefault, byOperator AccessConfig
	byDefault.defaults()
	byOperator.RecordingRole = api.RoleOperator
	byOperator.defaults()
	for _, tc := range []struct {
		name string
		cfg  *AccessConfig
		c    caller
		x    api.AccessSession
		g    api.Grant
		want string
	}{
		{"the holder", &byDefault, caller{ID: holder, Account: holderAcct, Role: api.RoleOperator}, x, g, readerHeld},
		{"the holder, the grant no longer kept", &byDefault, caller{ID: holder, Account: holderAcct, Role: api.RoleOperator}, x, api.Grant{}, readerHeld},
		{"an approver", &byDefault, caller{ID: approver, Account: approverAcct, Role: api.RoleOperator}, x, g, readerApproved},
		{"an approver, the grant no longer kept", &byDefault, caller{ID: approver, Account: approverAcct, Role: api.RoleOperator}, x, api.Grant{}, ""},
		{"an approver of another grant", &byDefault, caller{ID: approver, Account: approverAcct, Role: api.RoleOperator}, x, otherGrant, ""},
		{"another operator", &byDefault, caller{ID: other, Account: otherAcct, Role: api.RoleOperator}, x, g, ""},
		{"a later account of the holder's name", &byDefault, caller{ID: holder, Account: laterHolder, Role: api.RoleOperator}, x, g, ""},
		{"a later account of an approver's name", &byDefault, caller{ID: approver, Account: laterApprover, Role: api.RoleOperator}, x, g, ""},
		{"an account of the holder's name made before IDs", &byDefault, caller{ID: holder, Role: api.RoleOperator}, oldSession, oldGrant, ""},
		{"the holder, the session recorded before IDs", &byDefault, caller{ID: holder, Account: holderAcct, Role: api.RoleOperator}, oldSession, g, ""},
		{"an approver, the approval recorded before IDs", &byDefault, caller{ID: approver, Account: approverAcct, Role: api.RoleOperator}, x, oldGrant, ""},
		{"an admin", &byDefault, caller{ID: other, Account: otherAcct, Role: api.RoleAdmin}, x, g, readerRole},
		{"an admin, recorded before IDs", &byDefault, caller{ID: other, Role: api.RoleAdmin}, oldSession, oldGrant, readerRole},
		{"no role", &byDefault, caller{ID: other, Account: otherAcct}, x, g, ""},
		{"no caller", &byDefault, caller{}, x, api.Grant{ID: g.ID, Approvals: []api.Approval{{By: ""}}}, ""},
		{"another operator, recording_role operator", &byOperator, caller{ID: other, Account: otherAcct, Role: api.RoleOperator}, x, g, readerRole},
		{"a viewer, recording_role operator", &byOperator, caller{ID: other, Account: otherAcct, Role: api.RoleViewer}, x, g, ""},
	} {
		if got := recordingReader(tc.cfg, &tc.c, tc.x, tc.g); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRelayedMarksDropped: a connection access.connect relayed leaves a
// mark until its node reports the session; one that never became a
// session is dropped an hour after its grant ended, not kept for ever,
// and the marks of grants active or just ended are kept.
func TestRelayedMarksDropped(t *testing.T) {
	f := newAuthFixture(t)
	now := f.srv.now()
	marks := map[string]time.Time{
		"old":  now.Add(-relayedSlack - time.Minute),
		"live": now.Add(time.Hour),
		"just": now.Add(-relayedSlack + time.Minute),
	}
	keys := map[string]string{}
	for what, end := range marks {
		keys[what] = relayedKey("1"+strings.Repeat("0", 31), newSessionID())
		if err := putJSON(f.ctx, f.st, keys[what], relayedSession{Node: "web-1", Expires: end}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.srv.dropRelayed(f.ctx); err != nil {
		t.Fatal(err)
	}
	for what, key := range keys {
		_, err := f.st.Get(f.ctx, key)
		if gone := errors.Is(err, store.ErrNotFound); gone != (what == "old") {
			t.Errorf("the mark of a grant ending at %s (%s): dropped %v, err %v", marks[what], what, gone, err)
		}
	}
}

// TestNodeCannotBackdateSession: a compromised node reports the times of
// the sessions it serves, and the recordings' retention counts from a
// session's end. A node that reports a session as started and ended a
// year ago must not have its recording deleted at the next retention
// pass, nor one that reports it ending in the far future keep it for
// ever: the server keeps a session's times within its grant and its own
// clock, and the recording is still read after the pass.
func TestNodeCannotBackdateSession(t *testing.T) {
	f := newAuthFixture(t)
	node := f.accessNode(t)
	alice := f.newAdmin(t, "alice", api.RoleOperator)
	f.enrolMFA(t, alice)
	g := f.activeGrant(t, alice)
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "root@web-1:~# rm -rf /var/log\r\n"]` + "\n")
	now := f.srv.now()
	past := now.AddDate(-1, 0, 0)
	x := f.reportSessionAt(t, node, g, body, past, past.Add(time.Minute))
	future := f.reportSessionAt(t, node, g, body, now, now.AddDate(100, 0, 0))
	if err := f.srv.expireRecordings(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, x := range []api.AccessSession{x, future} {
		id := x.ID
		got, _, err := f.srv.findSession(f.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		after := f.srv.now()
		if !got.Stored || got.Started.Before(g.Starts) || got.Ended.Before(got.Started) || got.Ended.After(after) {
			t.Errorf("session %s reported by its node as %s to %s: stored %v, kept as %s to %s; want stored, within the grant from %s and not after %s",
				id, x.Started, x.Ended, got.Stored, got.Started, got.Ended, g.Starts, after)
		}
		code, e, rec := f.fetch(t, f.accs["admin"].session, api.PathAccessRec+"?session="+id)
		if code != http.StatusOK || string(rec) != string(body) {
			t.Errorf("session %s after the retention pass: %d %q", id, code, e.Error)
		}
	}
}

// TestRecordingUploadTrickled: compromised nodes that trickle their
// recordings' bytes, as many as the server has upload slots, hold every
// slot, but only while their bytes keep the minimum rate: each is cut
// off (408, to send it again later) and its slot freed, and an honest
// node's recording then lands rather than waiting for ever; a node cut
// off that asks again at once is told to wait, so that it does not take
// the slot back before the others.
func TestRecordingUploadTrickled(t *testing.T) {
	f := newAuthFixtureWith(t, authOptions{access: func(c *AccessConfig) { c.UploadGrace = 2 * time.Second }})
	alice := f.newAdmin(t, "alice", api.RoleOperator)
	f.enrolMFA(t, alice)
	body := []byte(`{"version": 2, "width": 80, "height": 24}` + "\n" + `[0.1, "o", "root@web:~# uptime\r\n"]` + "\n")
	type session struct {
		node *tls.Certificate
		x    api.AccessSession
	}
	var sessions []session
	for i := range maxUploads + 1 {
		name := fmt.Sprintf("web-%d", i+1)
		node := f.joinNode(t, name)
		sessions = append(sessions, session{node, f.endSession(t, node, f.activeGrantOn(t, alice, name), body, time.Time{}, time.Time{})})
	}
	attackers, honest := sessions[:maxUploads], sessions[maxUploads]

	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	answers := make(chan string, len(attackers))
	for _, a := range attackers {
		held, feed := io.Pipe()
		// A megabyte announced, then a byte every tenth of a second.
		head, err := json.Marshal(api.RecordingUpload{Session: a.x, Size: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			if _, err := feed.Write(append(head, '\n')); err != nil {
				return
			}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for range tick.C {
				if _, err := feed.Write([]byte{' '}); err != nil {
					return
				}
			}
		}()
		go func() {
			defer held.Close()
			resp, err := f.uploadRecording(ctx, a.node, held)
			if err != nil {
				answers <- err.Error()
				return
			}
			defer resp.Body.Close()
			var e api.Error
			_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
			answers <- fmt.Sprintf("%d %s", resp.StatusCode, e.Error)
		}()
	}
	testkit.WaitFor(t, "the trickled uploads to hold every slot", func() bool {
		f.srv.access.mu.Lock()
		defer f.srv.access.mu.Unlock()
		return len(f.srv.access.uploads) == maxUploads
	})
	for range attackers {
		select {
		case got := <-answers:
			if !strings.HasPrefix(got, "408 recording: 1048576 bytes announced, fewer sent: ") || !strings.Contains(got, "slower than 16384 bytes a second") {
				t.Errorf("a trickled upload answered %q; want 408 naming the minimum rate", got)
			}
		case <-ctx.Done():
			t.Fatal("the trickled uploads still hold the server's slots")
		}
	}
	again, err := f.uploadRecording(ctx, attackers[0].node, bytes.NewReader(recordingUpload(t, attackers[0].x, body)))
	if err != nil {
		t.Fatal(err)
	}
	var e api.Error
	_ = json.NewDecoder(io.LimitReader(again.Body, 1<<16)).Decode(&e)
	again.Body.Close()
	if again.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e.Error, "arrived too slowly and was cut off: try again in") || again.Header.Get("Retry-After") == "" {
		t.Errorf("a node cut off asking again at once: %d %q, Retry-After %q; want 503 telling it to wait",
			again.StatusCode, e.Error, again.Header.Get("Retry-After"))
	}
	resp, err := f.uploadRecording(ctx, honest.node, bytes.NewReader(recordingUpload(t, honest.x, body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the honest node's upload once the trickled ones were cut off: %d", resp.StatusCode)
	}
	got, _, err := f.srv.findSession(f.ctx, honest.x.ID)
	if err != nil || !got.Stored {
		t.Fatalf("the honest node's session: stored %v, %v", got.Stored, err)
	}
}
