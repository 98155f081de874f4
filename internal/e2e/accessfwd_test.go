package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/testkit"
)

// grantState is the state access list shows for grant id.
func grantState(t *testing.T, env cmdEnv, id string) string {
	t.Helper()
	var gs []api.GrantListing
	if err := json.Unmarshal([]byte(must(t, env, "access", "list", "--all", "--output", "json")), &gs); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.ID == id {
			return g.State
		}
	}
	return ""
}

// openSSH runs ssh(1) to node through "moat access proxy", with the grant
// credentials in dir and no other configuration.
func openSSH(t *testing.T, env cmdEnv, dir, node string, args ...string) result {
	t.Helper()
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal("ssh is not installed (scripts/test installs openssh-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-o", "IdentitiesOnly=yes",
		"-i", filepath.Join(dir, "id_ed25519"), "-o", "CertificateFile=" + filepath.Join(dir, "id_ed25519-cert.pub"),
		"-o", "ProxyCommand=" + moatBinary(t) + " access proxy %h"}
	cmd := exec.CommandContext(ctx, ssh, append(append(opts, node), args...)...)
	cmd.Env = env.list()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, out: out.String(), errOut: errb.String()}
}

// TestBreakGlassOpenSSH: ssh(1) and scp reach the node through the
// ProxyCommand with the grant's SSH certificate, and are refused once the
// grant has expired.
func TestBreakGlassOpenSSH(t *testing.T) {
	b := startBreakGlass(t)
	alice := b.alice
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-44", "--for", "40s")

	t.Log("ssh-cert writes the grant's key, certificate and the host CA for ssh(1)")
	conf := must(t, alice.env, "access", "ssh-cert", "web-1")
	dir := filepath.Join(alice.env["MOAT_ADMIN_DIR"], "access", "web-1")
	if !strings.Contains(conf, "ProxyCommand moat access proxy %h") || !strings.Contains(conf, filepath.Join(dir, "id_ed25519-cert.pub")) {
		t.Fatalf("ssh-cert: %s", conf)
	}
	r := openSSH(t, alice.env, dir, "web-1", "echo via-openssh; id -un")
	if r.code != 0 || r.out != "via-openssh\n"+accessUser(t)+"\n" {
		t.Fatalf("ssh: exit %d: %q %q", r.code, r.out, r.errOut)
	}

	t.Log("scp (the SFTP protocol, the node's sftp-server) copies a file from the node")
	local := filepath.Join(b.dir, "passwd.copy")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	scp := exec.CommandContext(ctx, "scp", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+filepath.Join(dir, "known_hosts"), "-o", "IdentitiesOnly=yes",
		"-i", filepath.Join(dir, "id_ed25519"), "-o", "CertificateFile="+filepath.Join(dir, "id_ed25519-cert.pub"),
		"-o", "ProxyCommand="+moatBinary(t)+" access proxy %h", "web-1:/etc/passwd", local)
	scp.Env = alice.env.list()
	if out, err := scp.CombinedOutput(); err != nil {
		t.Fatalf("scp: %v: %s", err, out)
	}
	want, _ := os.ReadFile("/etc/passwd")
	if got, _ := os.ReadFile(local); string(got) != string(want) {
		t.Fatalf("scp copied %d bytes, want /etc/passwd's %d", len(got), len(want))
	}

	t.Log("once the grant has expired, ssh is refused: the ProxyCommand finds no grant to take a certificate under")
	waitUntil(t, 2*time.Minute, "the grant to expire", func() bool { return grantState(t, alice.env, id) == api.GrantExpired })
	r = openSSH(t, alice.env, dir, "web-1", "echo should-not-run")
	if r.code == 0 || strings.Contains(r.out, "should-not-run") || !strings.Contains(r.errOut, "you hold no active grant for a shell on node web-1") {
		t.Fatalf("ssh after expiry: exit %d: %q %q", r.code, r.out, r.errOut)
	}

	t.Log("no listening port was added on the node")
	if after := listeners(t, b.agent.cmd.Process.Pid); !slices.Equal(after, b.listenBefore) {
		t.Fatalf("the agent listens on %v, before the sessions on %v", after, b.listenBefore)
	}
}

// echoOnce sends a line over a new connection to addr and returns what
// came back before the connection ended (or a few seconds passed).
func echoOnce(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(c, line)
	got, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(got)
}

// TestBreakGlassForward: a forwarded port reaches a service only while the
// grant lasts and only if the intentions admit the administrator's
// identity; the node listens on nothing new.
func TestBreakGlassForward(t *testing.T) {
	b := startBreakGlass(t)
	alice := b.alice
	must(t, alice.env, "svc", "register", "--node", "web-1", "--name", "db", "--port", strconv.Itoa(b.echoPort))
	deny := filepath.Join(b.dir, "deny.yaml")
	os.WriteFile(deny, []byte("default: deny\n"), 0o600)
	must(t, alice.env, "policy", "apply", "-f", deny)

	t.Log("before any grant, there is nothing to forward")
	if r := moatRun(t, alice.env, "", "access", "forward", "--service", "db"); r.code == 0 || !strings.Contains(r.errOut, "no active grant") {
		t.Fatalf("forward without a grant: exit %d: %q", r.code, r.errOut)
	}
	id := b.request(t, "--service", "db", "--reason", "INC-45", "--for", "1h")
	fwd := moatStart(t, alice.env, nil, "access", "forward", "--service", "db", "--local", "127.0.0.1:0")
	local := forwardAddr(t, fwd)

	t.Log("the intentions decide for admin/admin: denied until a rule names it")
	if got := echoOnce(t, local, "ping-1"); got != "" {
		t.Fatalf("a denied forward echoed %q", got)
	}
	waitUntil(t, testkit.WaitLimit, "the refusal to be reported", func() bool {
		return strings.Contains(fwd.errb.String(), "refused: admin/admin → db:"+strconv.Itoa(b.echoPort)+" denied by default-deny")
	})
	allow := filepath.Join(b.dir, "allow.yaml")
	os.WriteFile(allow, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: break-glass-db\n    from: [admin/admin]\n    to: db\n    ports: [%d]\n", b.echoPort)), 0o600)
	must(t, alice.env, "policy", "apply", "-f", allow)
	waitUntil(t, time.Minute, "the forward to reach db", func() bool { return echoOnce(t, local, "ping-2") == "ping-2" })

	t.Log("a connection held open is cut by the revocation, and new ones fail")
	live, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	rd := bufio.NewReader(live)
	fmt.Fprintln(live, "ping-3")
	if got, _ := rd.ReadString('\n'); got != "ping-3\n" {
		t.Fatalf("live connection: %q", got)
	}
	must(t, b.bob.env, "access", "revoke", id)
	live.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := rd.ReadString('\n'); err != io.EOF {
		t.Fatalf("the live forwarded connection was not cut: %v", err)
	}
	if got := echoOnce(t, local, "ping-4"); got != "" {
		t.Fatalf("a revoked forward echoed %q", got)
	}

	t.Log("no listening port was added on the node")
	if after := listeners(t, b.agent.cmd.Process.Pid); !slices.Equal(after, b.listenBefore) {
		t.Fatalf("the agent listens on %v, before the sessions on %v", after, b.listenBefore)
	}

	t.Log("the forwarded sessions are on record with their bytes")
	b.server.stop()
	forwarded := 0
	for _, e := range verifiedAuditLog(t, b.data) {
		en := e.Entry
		if en.Action == "access.session.end" && en.Detail["grant"] == id && en.Detail["bytes_out"] != "0" {
			forwarded++
		}
	}
	if forwarded < 2 {
		t.Fatalf("%d forwarded sessions with bytes on record, want at least 2 (ping-2, ping-3)", forwarded)
	}
}

// forwardAddr waits for a forward to say where it listens.
func forwardAddr(t *testing.T, fwd *proc) string {
	t.Helper()
	var local string
	waitUntil(t, time.Minute, "the forward to listen", func() bool {
		line, _, ok := strings.Cut(fwd.out.String(), "\n")
		if !ok {
			return false
		}
		local = strings.Fields(line)[1]
		return true
	})
	return local
}

// TestBreakGlassForwardAsksAgain: a running forward takes a new grant
// certificate for each new connection. Once the administrator's MFA
// session has ended, the next connection makes it ask for a code, saying
// why; the connection already open runs on meanwhile; given a code, the
// waiting connection goes through.
func TestBreakGlassForwardAsksAgain(t *testing.T) {
	b := startBreakGlass(t)
	alice := b.alice
	must(t, alice.env, "svc", "register", "--node", "web-1", "--name", "db", "--port", strconv.Itoa(b.echoPort))
	allow := filepath.Join(b.dir, "allow.yaml")
	os.WriteFile(allow, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: break-glass-db\n    from: [admin/admin]\n    to: db\n    ports: [%d]\n", b.echoPort)), 0o600)
	must(t, alice.env, "policy", "apply", "-f", allow)
	b.request(t, "--service", "db", "--reason", "INC-46", "--for", "1h")
	codes, answer := io.Pipe()
	defer answer.Close()
	fwd := moatStart(t, alice.env, codes, "access", "forward", "--service", "db", "--local", "127.0.0.1:0")
	local := forwardAddr(t, fwd)
	waitUntil(t, time.Minute, "the forward to reach db", func() bool { return echoOnce(t, local, "ping-1") == "ping-1" })
	held, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldRd := bufio.NewReader(held)
	echo := func(c net.Conn, rd *bufio.Reader, line string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(time.Minute))
		fmt.Fprintln(c, line)
		if got, err := rd.ReadString('\n'); got != line+"\n" {
			t.Fatalf("%s: got %q, %v", line, got, err)
		}
	}
	echo(held, heldRd, "held-1")

	t.Log("alice logs out: her MFA session ends, the forward's copy of it included")
	must(t, alice.env, "admin", "mfa", "logout")
	next, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	nextRd := bufio.NewReader(next)
	fmt.Fprintln(next, "ping-2")
	why := fmt.Sprintf("moat: each new connection to db:%d takes a new grant certificate, which needs a live MFA session, and you have none", b.echoPort)
	waitUntil(t, time.Minute, "the forward to ask for a code", func() bool {
		e := fwd.errb.String()
		return strings.Contains(e, why) && strings.Contains(e, "Code from your authenticator: ")
	})
	t.Log("while it asks, the connection already open runs on")
	echo(held, heldRd, "held-2")

	t.Log("given a code, the waiting connection goes through")
	fmt.Fprintln(answer, alice.nextCode(t))
	next.SetDeadline(time.Now().Add(time.Minute))
	if got, err := nextRd.ReadString('\n'); got != "ping-2\n" {
		t.Fatalf("the connection that waited for the code: got %q, %v (forward said %q)", got, err, fwd.errb.String())
	}
	if got := echoOnce(t, local, "ping-3"); got != "ping-3" {
		t.Fatalf("a connection after the login: %q", got)
	}
}

// TestBreakGlassForwardSessionMFA: under access.session_mfa a grant
// certificate needs an MFA session begun within access.session_cert_ttl
// (5s here), so a forward asks for a code, saying why, though alice's MFA
// session lives on (15m): for a new connection, or for the first
// certificate if her session was already that old when it started. Given
// the code, the connection goes through.
func TestBreakGlassForwardSessionMFA(t *testing.T) {
	b := startBreakGlassWith(t, "  session_cert_ttl: 5s\n  session_mfa: true\n")
	alice := b.alice
	must(t, alice.env, "svc", "register", "--node", "web-1", "--name", "db", "--port", strconv.Itoa(b.echoPort))
	allow := filepath.Join(b.dir, "allow.yaml")
	os.WriteFile(allow, []byte(fmt.Sprintf("default: deny\nrules:\n  - name: break-glass-db\n    from: [admin/admin]\n    to: db\n    ports: [%d]\n", b.echoPort)), 0o600)
	must(t, alice.env, "policy", "apply", "-f", allow)
	b.request(t, "--service", "db", "--reason", "INC-47", "--for", "1h")
	alice.login(t)
	codes, answer := io.Pipe()
	defer answer.Close()
	fwd := moatStart(t, alice.env, codes, "access", "forward", "--service", "db", "--local", "127.0.0.1:0")

	const why = "moat: each session's grant certificate needs an MFA session begun for it, at most 5s before (access.session_mfa): yours began "
	var next net.Conn
	var nextRd *bufio.Reader
	defer func() {
		if next != nil {
			next.Close()
		}
	}()
	waitUntil(t, time.Minute, "the forward to ask for a code for its MFA session's age", func() bool {
		if strings.Contains(fwd.errb.String(), why) {
			return true
		}
		line, _, ok := strings.Cut(fwd.out.String(), "\n")
		if !ok {
			return false // not listening yet
		}
		if next == nil {
			c, err := net.Dial("tcp", strings.Fields(line)[1])
			if err != nil {
				t.Fatal(err)
			}
			next, nextRd = c, bufio.NewReader(c)
			fmt.Fprintln(next, "ping")
		}
		// An echo: the MFA session was young enough; try a new connection.
		next.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if got, _ := nextRd.ReadString('\n'); got == "ping\n" {
			next.Close()
			next = nil
		}
		return false
	})
	waitUntil(t, time.Minute, "the prompt", func() bool { return strings.Contains(fwd.errb.String(), "Code from your authenticator: ") })
	fmt.Fprintln(answer, alice.nextCode(t))
	if next == nil {
		t.Log("it asked for the certificate it takes before it listens")
		if got := echoOnce(t, forwardAddr(t, fwd), "ping"); got != "ping" {
			t.Fatalf("the first connection after the code: %q (forward said %q)", got, fwd.errb.String())
		}
		return
	}
	t.Log("a new connection asked, and waited for the code")
	next.SetReadDeadline(time.Now().Add(time.Minute))
	if got, err := nextRd.ReadString('\n'); got != "ping\n" {
		t.Fatalf("the connection that waited for the code: got %q, %v (forward said %q)", got, err, fwd.errb.String())
	}
}
