package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/seal"
	"moat/internal/server"
	"moat/internal/store"
)

// TestBreakGlassRecordingTampered: an insider on the server's host who
// truncates a session's recording, or edits it and seals it again with
// the keyring (and even sets the session's digest in the store to the
// edited one), gets no altered recording played or exported: the server
// and then the client check it against the digest the session's end put
// in the audit log.
func TestBreakGlassRecordingTampered(t *testing.T) {
	b := startBreakGlass(t)
	env := b.alice.env
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-56", "--for", "1h")
	if r := moatRun(t, env, "", "ssh", "web-1", "echo evidence-$((6*7))"); r.code != 0 || r.out != "evidence-42\n" {
		t.Fatalf("ssh: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	x := storedSessions(t, env, id, 1)[0]
	if got := must(t, env, "access", "replay", "--instant", x.ID); got != "evidence-42" {
		t.Fatalf("replay: %q", got)
	}
	kr := openKeyring(t, b.data, b.data+".kek")
	path := filepath.Join(b.data, "recordings", x.ID+".cast.sealed")
	name := "recording/" + x.ID
	sealed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := seal.ReadSealedFile(path, kr.AEAD(), name)
	if err != nil {
		t.Fatal(err)
	}
	edited := []byte(strings.ReplaceAll(string(plain), "evidence-42", "nothing-42!"))
	replay := func(what, want string) {
		t.Helper()
		r := moatRun(t, env, "", "access", "replay", "--instant", x.ID)
		if r.code == 0 || strings.Contains(r.out, "42") || !strings.Contains(r.errOut, want) {
			t.Fatalf("replay of the %s recording: exit %d: %q %q, want %q", what, r.code, r.out, r.errOut, want)
		}
		out := filepath.Join(b.dir, "export.cast")
		r = moatRun(t, env, "", "access", "export", "-o", out, x.ID)
		if _, err := os.Stat(out); r.code == 0 || err == nil || !strings.Contains(r.errOut, want) {
			t.Fatalf("export of the %s recording: exit %d: %q, file: %v", what, r.code, r.errOut, err)
		}
	}

	t.Log("truncated: the server finds it does not open")
	if err := os.WriteFile(path, sealed[:len(sealed)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	replay("truncated", "the stored recording is missing or does not open")

	t.Log("edited and sealed again: the server finds it is not the audited one")
	if err := seal.WriteSealedFile(path, kr.AEAD(), name, edited); err != nil {
		t.Fatal(err)
	}
	replay("edited", "the stored recording does not match the digest in the audit log")

	t.Log("edited, and the session's digest in the store set to the edit's: the client finds it is not the audited one")
	b.server.stop()
	st, err := store.OpenBolt(store.BoltConfig{Dir: b.data, Sealer: server.NewStoreSealer(kr.AEAD())})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "access/session/" + id + "/" + x.ID
	kv, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var rec api.AccessSession
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(edited)
	rec.Recording = hex.EncodeToString(sum[:])
	v, _ := json.Marshal(rec)
	if _, err := st.Put(ctx, key, v); err != nil {
		t.Fatal(err)
	}
	st.Close()
	b.server = moatStart(t, env, nil, "server", "run", "--config", filepath.Join(b.dir, "server.yaml"))
	waitUntil(t, time.Minute, "the server", func() bool { return moatRun(t, env, "", "admin", "whoami").code == 0 })
	replay("edited and re-digested", fmt.Sprintf("SHA-256 %s is not the %s in the audit log: the recording was altered", rec.Recording, x.Recording))

	t.Log("the refused reads are in the audit log")
	b.server.stop()
	refused := 0
	for _, e := range verifiedAuditLog(t, b.data) {
		if e.Entry.Action == "access.recording" && e.Entry.Target == x.ID && strings.HasPrefix(e.Entry.Result, "error: session "+x.ID+": the stored recording") {
			refused++
		}
	}
	if refused != 4 {
		t.Fatalf("%d refused recording reads in the audit log, want 4 (replay and export, truncated and edited)", refused)
	}
}

// TestBreakGlassRecordingKeepsWhatWasShown: an administrator who cuts
// their client off (killed, not closed) to keep the end of a session out
// of its recording does not: the node records what it sends before it
// sends it, so what the administrator saw is in the recording, and the
// session's end is reported.
func TestBreakGlassRecordingKeepsWhatWasShown(t *testing.T) {
	b := startBreakGlass(t)
	env := b.alice.env
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-57", "--for", "1h")
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	live := moatStart(t, env, stdin, "ssh", "-t", "web-1")
	stdin.Close()
	fmt.Fprintf(feed, "echo shown-$((20+2))\n")
	waitUntil(t, time.Minute, "the session's output", func() bool { return strings.Contains(live.out.String(), "shown-22") })
	if err := live.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	x := storedSessions(t, env, id, 1)[0]
	if x.Ended.IsZero() || x.Recording == "" {
		t.Fatalf("the cut session: %+v", x)
	}
	if got := must(t, env, "access", "replay", "--instant", x.ID); !strings.Contains(got, "shown-22") {
		t.Fatalf("the recording of the cut session lacks what was shown: %q", got)
	}
}

// TestBreakGlassShellScriptRecorded: a shell without a terminal reads its
// commands from the administrator's input, and its recording shows only
// output: commands whose output is thrown away would leave nothing in it.
// The commands such a shell reads are recorded, as an exec's command is,
// whether or not the agent records what is typed on a terminal.
func TestBreakGlassShellScriptRecorded(t *testing.T) {
	b := startBreakGlass(t)
	env := b.alice.env
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-58", "--for", "1h")
	script := "echo unseen-$((40+2)) >/dev/null 2>&1\nexit 0\n"
	if r := moatRun(t, env, script, "ssh", "web-1"); r.code != 0 || r.out != "" {
		t.Fatalf("ssh: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	x := storedSessions(t, env, id, 1)[0]
	cast := filepath.Join(b.dir, "script.cast")
	must(t, env, "access", "export", "-o", cast, x.ID)
	raw, err := os.ReadFile(cast)
	if err != nil {
		t.Fatal(err)
	}
	var typed strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n")[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("recording line %q: %v", line, err)
		}
		if ev[1] == "i" {
			typed.WriteString(ev[2].(string))
		}
	}
	if typed.String() != script {
		t.Fatalf("the recording of a shell fed its commands holds %q of them, want %q:\n%s", typed.String(), script, raw)
	}
}

// TestSessionReportFieldsPrintable: what a node reports of a session goes
// into the session's audit entries as it is: a report (here from a node
// whose root forges one with the node's own credentials) whose detail,
// remote address or end reason holds a line break or an escape sequence
// is refused, and no session entry holds one.
func TestSessionReportFieldsPrintable(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-59", "--for", "1h")
	must(t, b.alice.env, "ssh", "web-1", "true")
	x := storedSessions(t, b.alice.env, id, 1)[0]
	hc := b.nodeTLS(t)
	url := "https://" + b.serverAddr + api.PathNodeAccessEvent
	forged := "\n2026-01-01T00:00:00Z spiffe://example.org/admin/bob access.revoke ok\x1b[2K"
	for i, mut := range []func(*api.AccessSession){
		func(s *api.AccessSession) { s.Detail = "shell" + forged },
		func(s *api.AccessSession) { s.Remote = "127.0.0.1:1" + forged },
		func(s *api.AccessSession) { s.EndReason = "exit" + forged },
	} {
		for _, kind := range []string{"start", "end"} {
			s := x
			s.ID = fmt.Sprintf("00000000000000000000000%d", i)
			s.Ended, s.Recording, s.Stored, s.StoredOn = time.Time{}, "", false, ""
			mut(&s)
			body, _ := json.Marshal(api.AccessEvent{Kind: kind, Session: s})
			resp, err := hc.Post(url, "application/json", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "printable characters only") {
				t.Errorf("a %s report with field %d forged: %d %s", kind, i, resp.StatusCode, msg)
			}
		}
	}
	b.server.stop()
	for _, e := range verifiedAuditLog(t, b.data) {
		if strings.HasPrefix(e.Entry.Action, "access.session.") && !printableEntry(e.Entry) {
			t.Errorf("a session's audit entry holds a control character: %+q", e.Entry)
		}
	}
}

// TestNodeCannotInventSessions: root on a node holds the node's
// credentials and may report sessions of its grants, truthfully or not,
// but only sessions the control plane relayed to it: one it never relayed
// (here twenty, each with a fresh ID, under a grant that is active) is
// refused, start or end, and nothing of it reaches the audit log or the
// grant's sessions. Each was an audit entry and a stored session before,
// as many as the node cared to send.
func TestNodeCannotInventSessions(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-60", "--for", "1h")
	must(t, b.alice.env, "ssh", "web-1", "true")
	x := storedSessions(t, b.alice.env, id, 1)[0]
	hc := b.nodeTLS(t)
	url := "https://" + b.serverAddr + api.PathNodeAccessEvent
	for i := range 20 {
		kind := []string{"start", "end"}[i%2]
		s := x
		s.ID = fmt.Sprintf("%024x", i+1)
		s.Ended, s.Recording, s.Stored, s.StoredOn = time.Time{}, "", false, ""
		body, _ := json.Marshal(api.AccessEvent{Kind: kind, Session: s})
		resp, err := hc.Post(url, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(msg), "not relayed") {
			t.Fatalf("a %s report of session %s, which was never relayed: %d %s", kind, s.ID, resp.StatusCode, msg)
		}
	}
	t.Log("the session relayed is reported again, as a retrying agent does: answered, once on record")
	body, _ := json.Marshal(api.AccessEvent{Kind: "start", Session: x})
	resp, err := hc.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the relayed session's start again: %d", resp.StatusCode)
	}
	if got := storedSessions(t, b.alice.env, id, 1); got[0].ID != x.ID {
		t.Fatalf("the grant's session is %s, want %s", got[0].ID, x.ID)
	}
	b.server.stop()
	starts := 0
	for _, e := range verifiedAuditLog(t, b.data) {
		if e.Entry.Action == "access.session.start" || e.Entry.Action == "access.session.end" {
			if e.Entry.Detail["session"] != x.ID {
				t.Errorf("an entry of a session never relayed: %+v", e.Entry)
			}
			starts++
		}
	}
	if starts != 2 {
		t.Errorf("%d session entries, want the relayed session's start and end", starts)
	}
}
