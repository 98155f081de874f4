package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/pquerna/otp/totp"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/seal"
	"moat/internal/testkit"
)

// admin is an administrator of the access tests: credentials and TOTP secret.
type admin struct {
	env      cmdEnv
	secret   string
	id       string
	lastStep int64 // the TOTP step of the last code this admin logged in with
}

// code is the administrator's TOTP code, skew steps away from now.
func (a *admin) code(t *testing.T, skew int) string {
	t.Helper()
	c, err := totp.GenerateCode(a.secret, time.Now().Add(time.Duration(skew)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol enrols a TOTP authenticator through the CLI and logs in: the
// confirming code is the current step's, the login code the next one's.
func enrol(t *testing.T, env cmdEnv) *admin {
	t.Helper()
	var en api.MFAEnrollment
	if err := json.Unmarshal([]byte(must(t, env, "admin", "mfa", "enroll", "--output", "json")), &en); err != nil {
		t.Fatal(err)
	}
	a := &admin{env: env, secret: en.Secret}
	a.lastStep = time.Now().Unix() / 30
	must(t, env, "admin", "mfa", "confirm", a.code(t, 0))
	a.login(t)
	return a
}

// login logs in with the code of the next TOTP step, once that step is
// later than the last one used (the server takes each step once), and
// returns the code.
func (a *admin) login(t *testing.T) string {
	t.Helper()
	code := a.nextCode(t)
	out := must(t, a.env, "admin", "mfa", "login", code)
	a.id = strings.Fields(out)[3]
	return code
}

// nextCode is the code of the next TOTP step, once that step is later than
// the last one used, which it becomes.
func (a *admin) nextCode(t *testing.T) string {
	t.Helper()
	for {
		at := time.Now().Add(30 * time.Second)
		if step := at.Unix() / 30; step > a.lastStep {
			code, err := totp.GenerateCode(a.secret, at)
			if err != nil {
				t.Fatal(err)
			}
			a.lastStep = step
			return code
		}
		// Wait for the clock to reach the next step (at most one).
		time.Sleep(time.Until(time.Unix((a.lastStep)*30, 0)) + 10*time.Millisecond)
	}
}

// accessUser is the local account break-glass shells run as in the test:
// the test's own, or nobody when the test runs as root.
func accessUser(t *testing.T) string {
	if os.Getuid() == 0 {
		return "nobody"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// breakGlass is a fleet of real processes: a sealed server, a node agent,
// two enrolled administrators.
type breakGlass struct {
	dir, data    string
	server       *proc
	agent        *proc
	alice, bob   *admin
	serverAddr   string
	echoAddr     string
	echoPort     int
	listenBefore []netip.AddrPort
}

func startBreakGlass(t *testing.T) *breakGlass { return startBreakGlassWith(t, "") }

// startBreakGlassWith starts the fleet with more keys of the server's
// access section (YAML flow-map entries), and with administrators the
// server's host makes (moat server admin-recover) before the server runs,
// credentials in DIR/NAME.
func startBreakGlassWith(t *testing.T, access string, hostAdmins ...string) *breakGlass {
	b := &breakGlass{dir: t.TempDir()}
	b.data = filepath.Join(b.dir, "server")
	base := freeRun(t, 2)
	b.serverAddr = "127.0.0.1:" + strconv.Itoa(base)
	env := cmdEnv{"MOAT_SERVER": b.serverAddr, "MOAT_ADMIN_DIR": b.data + ".admin"}

	t.Log("a sealed control plane, made and run by the binary")
	must(t, env, "server", "init", "--data-dir", b.data, "--trust-domain", "example.org")
	cfg := filepath.Join(b.dir, "server.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nlisten: %s\naccess:\n  approvals: {\"*\": 1}\n%s", b.data, b.serverAddr, access)), 0o600)
	must(t, env, "server", "run", "--config", cfg, "--validate")
	for _, name := range hostAdmins {
		must(t, env, "server", "admin-recover", "--config", cfg, "--admin", name, "--role", "admin", "--out", filepath.Join(b.dir, name))
	}
	b.server = moatStart(t, env, nil, "server", "run", "--config", cfg)
	waitUntil(t, time.Minute, "the server", func() bool { return moatRun(t, env, "", "admin", "whoami").code == 0 })

	t.Log("without a second factor the sensitive calls are refused, with the way out")
	pol := filepath.Join(b.dir, "deny.yaml")
	os.WriteFile(pol, []byte("default: deny\n"), 0o600)
	r := moatRun(t, env, "", "policy", "apply", "-f", pol)
	if want := "moat: policy.apply needs a fresh MFA proof, and admin \"admin\" has no second factor: enrol one with \"moat admin mfa enroll\" (401)\n"; r.code != 1 || r.errOut != want {
		t.Fatalf("policy apply before enrolment: exit %d, stderr %q, want %q", r.code, r.errOut, want)
	}
	b.alice = enrol(t, env)

	t.Log("a second administrator, made under the first one's MFA session, enrols too")
	bobDir := filepath.Join(b.dir, "bob")
	must(t, env, "admin", "create", "--name", "bob", "--role", "admin", "--out", bobDir)
	b.bob = enrol(t, env.with("MOAT_ADMIN_DIR", bobDir))

	t.Log("a node agent joins, with break-glass shells as", accessUser(t))
	tok := must(t, env, "token", "create", "--node", "web-1")
	mesh := "127.0.0.1:" + strconv.Itoa(base+1)
	b.agent = moatStart(t, env, nil, "agent", "--data-dir", filepath.Join(b.dir, "web-1"), "--server", b.serverAddr,
		"--node", "web-1", "--join", tok, "--listen", mesh, "--access-user", accessUser(t))
	waitUntil(t, time.Minute, "the agent's access tunnel", func() bool { return strings.Contains(b.agent.errb.String(), "access tunnel open") })
	b.listenBefore = listeners(t, b.agent.cmd.Process.Pid)
	if len(b.listenBefore) == 0 {
		t.Fatal("the agent listens on nothing: its mesh port is missing from its sockets")
	}

	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	b.echoAddr = echo.Addr().String()
	b.echoPort = echo.Addr().(*net.TCPAddr).Port
	return b
}

// request asks for a grant as alice and has bob approve it; it returns the
// grant's ID.
func (b *breakGlass) request(t *testing.T, args ...string) string {
	t.Helper()
	id := must(t, b.alice.env, append([]string{"access", "request"}, args...)...)
	out := must(t, b.bob.env, "access", "approve", id)
	if !strings.Contains(out, "active until") {
		t.Fatalf("approve: %s", out)
	}
	return id
}

// TestBreakGlassShell is the acceptance scenario of break-glass access with
// real processes: TOTP enrolment, a request approved by a second admin, a
// shell through the agent, revocation ending a live session, the replayed
// recording, the audit trail, and no new listening port on the node.
func TestBreakGlassShell(t *testing.T) {
	b := startBreakGlass(t)
	alice, bob := b.alice, b.bob

	t.Log("a code is good once: the login code of a moment ago is refused")
	used := alice.login(t)
	if r := moatRun(t, alice.env, "", "admin", "mfa", "login", used); r.code != 1 || r.errOut != "moat: MFA code already used: wait for the next one (401)\n" {
		t.Fatalf("reused code: exit %d: %q", r.code, r.errOut)
	}

	t.Log("a stolen enrolment certificate, without the TOTP secret, cannot apply policy nor enrol its own authenticator")
	stolen := filepath.Join(b.dir, "stolen")
	os.MkdirAll(stolen, 0o700)
	for _, f := range []string{api.CertFile, api.KeyFile, api.BundleFile} {
		data, err := os.ReadFile(filepath.Join(b.data+".admin", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(stolen, f), data, 0o600)
	}
	thief := alice.env.with("MOAT_ADMIN_DIR", stolen)
	pol := filepath.Join(b.dir, "open.yaml")
	os.WriteFile(pol, []byte("rules:\n  - {name: all, from: [\"*\"], to: web, ports: [80]}\n"), 0o600)
	if r := moatRun(t, thief, "", "policy", "apply", "-f", pol); r.code != 1 || !strings.HasSuffix(r.errOut, "moat: policy.apply needs a fresh MFA proof: give a code from your authenticator (\"moat admin mfa login\") (401)\n") {
		t.Fatalf("stolen certificate applying policy: exit %d: %q", r.code, r.errOut)
	}
	if r := moatRun(t, thief, "123456\n", "policy", "apply", "-f", pol); r.code != 1 || !strings.HasSuffix(r.errOut, "moat: MFA code refused (401)\n") {
		t.Fatalf("stolen certificate with a guessed code: exit %d: %q", r.code, r.errOut)
	}
	if r := moatRun(t, thief, "", "admin", "mfa", "enroll"); r.code != 1 || !strings.Contains(r.errOut, "replacing an enrolled authenticator needs a fresh MFA proof") {
		t.Fatalf("stolen certificate enrolling: exit %d: %q", r.code, r.errOut)
	}

	t.Log("alice asks for a shell on web-1; she may not approve it herself; bob does")
	id := must(t, alice.env, "access", "request", "--node", "web-1", "--shell", "--reason", "INC-42", "--for", "1h")
	if r := moatRun(t, alice.env, "", "access", "approve", id); r.code != 1 || r.errOut != "moat: a requester cannot approve their own grant: another admin must (403)\n" {
		t.Fatalf("self-approval: exit %d: %q", r.code, r.errOut)
	}
	if out := must(t, bob.env, "access", "approve", id); !strings.Contains(out, "active until") {
		t.Fatalf("approve: %s", out)
	}

	t.Log("a shell through the agent runs commands as the configured user and shows their output")
	r := moatRun(t, alice.env, "echo hello-$((6*7))\nid -un\nexit 3\n", "ssh", "web-1")
	if r.code != 3 || r.out != "hello-42\n"+accessUser(t)+"\n" {
		t.Fatalf("ssh: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
	}
	t.Log("with a terminal: a PTY of the size asked for")
	if r := moatRun(t, alice.env, "", "ssh", "-t", "web-1", "tty; stty size"); r.code != 0 || !strings.HasPrefix(r.out, "/dev/pts/") || !strings.Contains(r.out, "24 80") {
		t.Fatalf("ssh -t: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
	}

	t.Log("a live session ends when the grant is revoked, before the revocation answers")
	stdin, feed, err := os.Pipe() // a file, so that the process's end is not held by a copy of it
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	live := moatStart(t, alice.env, stdin, "ssh", "-t", "web-1")
	stdin.Close()
	fmt.Fprintf(feed, "echo live-$((20+1))\n")
	waitUntil(t, time.Minute, "the live session's output", func() bool { return strings.Contains(live.out.String(), "live-21") })
	start := time.Now()
	out := must(t, bob.env, "access", "revoke", id)
	if out != "grant "+id+" revoked; 1 live session(s) ended" {
		t.Fatalf("revoke: %q", out)
	}
	waitUntil(t, testkit.WaitLimit, "moat ssh to exit", live.exited)
	t.Logf("session ended %s after the revocation was sent", time.Since(start).Round(time.Millisecond))
	if live.code != 255 || !strings.Contains(live.errb.String(), "the session ended without an exit status") {
		t.Fatalf("live session: exit %d: %s", live.code, live.errb.String())
	}
	if r := moatRun(t, alice.env, "", "ssh", "web-1", "true"); r.code == 0 || !strings.Contains(r.errOut, "no active grant") {
		t.Fatalf("ssh after revocation: exit %d: %q", r.code, r.errOut)
	}

	t.Log("the recordings play back, checked against the audit log")
	var grants []api.GrantListing
	if err := json.Unmarshal([]byte(must(t, alice.env, "access", "list", "--all", "--output", "json")), &grants); err != nil {
		t.Fatal(err)
	}
	var sessions []api.AccessSession
	for _, g := range grants {
		if g.ID == id {
			sessions = g.Sessions
		}
	}
	if len(sessions) != 3 {
		t.Fatalf("%d sessions recorded for the grant, want 3: %+v", len(sessions), sessions)
	}
	waitUntil(t, time.Minute, "the recordings to reach the control plane", func() bool {
		var gs []api.GrantListing
		json.Unmarshal([]byte(must(t, alice.env, "access", "list", "--all", "--output", "json")), &gs)
		for _, g := range gs {
			if g.ID == id {
				for _, s := range g.Sessions {
					if !s.Stored {
						return false
					}
				}
				return true
			}
		}
		return false
	})
	if got := must(t, alice.env, "access", "replay", "--instant", sessions[0].ID); got != "hello-42\n"+accessUser(t) {
		t.Fatalf("replay: %q", got)
	}
	if got := must(t, alice.env, "access", "replay", "--instant", sessions[2].ID); !strings.Contains(got, "live-21") {
		t.Fatalf("replay of the revoked session: %q", got)
	}
	cast := filepath.Join(b.dir, "s1.cast")
	must(t, alice.env, "access", "export", "-o", cast, sessions[0].ID)
	if path, err := exec.LookPath("asciinema"); err == nil {
		// asciinema reads its controls from a terminal: give it one.
		cmd := exec.Command(path, "cat", cast)
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(tty) // EIO once it exits
		tty.Close()
		if err := cmd.Wait(); err != nil || !strings.Contains(string(out), "hello-42") {
			t.Fatalf("asciinema cat: %v: %s", err, out)
		}
	} else {
		t.Fatal("asciinema is not installed (scripts/test installs it)")
	}

	t.Log("no listening port was added on the node")
	if after := listeners(t, b.agent.cmd.Process.Pid); !slices.Equal(after, b.listenBefore) {
		t.Fatalf("the agent listens on %v, before the sessions on %v", after, b.listenBefore)
	}

	t.Log("the audit log holds request, approval, start, end and revocation in order, and verifies")
	b.server.stop()
	entries := verifiedAuditLog(t, b.data)
	var trail []string
	for _, e := range entries {
		en := e.Entry
		switch en.Action {
		case "access.request", "access.approve", "access.session.start", "access.session.end", "access.revoke":
			if (en.Target == id || en.Detail["grant"] == id) && en.Result == "ok" {
				trail = append(trail, en.Action)
			}
		}
	}
	want := []string{"access.request", "access.approve",
		"access.session.start", "access.session.end", // the shell with commands
		"access.session.start", "access.session.end", // the terminal
		"access.session.start", "access.session.end", "access.revoke"} // the live session, ended by the revocation
	if !slices.Equal(trail, want) {
		t.Fatalf("audit trail of grant %s:\n%s\nwant\n%s", id, strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range entries {
		if e.Entry.Action == "access.session.end" && e.Entry.Detail["session"] == sessions[0].ID && e.Entry.Detail["recording_sha256"] != sessions[0].Recording {
			t.Fatalf("the end entry names recording %s, the session %s", e.Entry.Detail["recording_sha256"], sessions[0].Recording)
		}
	}
}

// verifiedAuditLog opens the stopped server's audit log as its owner would,
// with the keyring under the KEK beside the data directory, verifies it and
// returns its entries.
func verifiedAuditLog(t *testing.T, data string) []audit.Indexed {
	t.Helper()
	kek, err := seal.OpenKeyFile(data + ".kek")
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: data, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(audit.Config{Dir: filepath.Join(data, audit.DirName), ReadOnly: true, Sealer: kr.AEAD()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Verify(context.Background()); err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	es, err := l.Entries(0, l.Size())
	if err != nil {
		t.Fatal(err)
	}
	return es
}
