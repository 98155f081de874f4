package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/store/storetest"
)

// moatIn runs a moat command with stdin and returns its exit code, stdout
// and stderr.
func moatIn(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, moatBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("moat %s: %v", strings.Join(args, " "), err)
	}
	return code, o.String(), e.String()
}

// tunnelServer waits until one server logs that node's access tunnel is
// open to it, and returns it.
func (c *moatCluster) tunnelServer(node string, not *moatServer) *moatServer {
	c.t.Helper()
	var found *moatServer
	waitFor(c.t, node+"'s access tunnel open to a server", func() bool {
		for _, s := range c.servers {
			if s != not && !s.p.exited() && strings.Contains(s.p.out.String(), `msg="access tunnel open" node=`+node) {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// sessionsOf lists grant id's sessions as access list shows them.
func sessionsOf(t *testing.T, env []string, id string) []api.AccessSession {
	t.Helper()
	var gs []api.GrantListing
	if err := json.Unmarshal([]byte(mustMoat(t, env, "access", "list", "--all", "--output", "json")), &gs); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.ID == id {
			return g.Sessions
		}
	}
	return nil
}

// TestAccessThroughAnyServer: in a cluster an administrator reaches a node
// through whichever server they reach, not only the one holding the
// node's access tunnel; a revocation through another server ends the
// relayed session before it answers; recordings replay through every
// server, and an operator with no part in the session is refused by the
// server reached before it asks the one keeping the recording; when the
// tunnel's server dies the agent opens one to another and
// access goes on there.
func TestAccessThroughAnyServer(t *testing.T) {
	etcd := storetest.StartEtcdCluster(t, 1)
	c := newMoatCluster(t, etcd, 2)
	user := "nobody"
	if os.Getuid() != 0 {
		user = os.Getenv("USER")
	}

	t.Log("a second administrator, to approve")
	bobDir := filepath.Join(c.dir, "bob")
	mustMoat(t, c.env(), "admin", "create", "--name", "bob", "--role", "admin", "--out", bobDir)
	enrolMFA(t, c.addrs(), bobDir)

	ports := freePorts(t, 1)
	tok := mustMoat(t, c.env(), "token", "create", "--node", "web-1")
	start(t, "agent web-1", nil, moatBin, "agent", "--data-dir", filepath.Join(c.dir, "agent-web-1"), "--server", c.addrs(),
		"--node", "web-1", "--join", tok, "--listen", addr(ports[0]), "--access-user", user)
	holder := c.tunnelServer("web-1", nil)
	var other *moatServer
	for _, s := range c.servers {
		if s != holder {
			other = s
		}
	}
	t.Logf("web-1's tunnel is open to %s; alice and bob use %s only", holder.name, other.name)
	alice := c.via(other)
	bobEnv := []string{"MOAT_SERVER=" + other.listen, "MOAT_ADMIN_DIR=" + bobDir}

	id := mustMoat(t, alice, "access", "request", "--node", "web-1", "--shell", "--reason", "INC-7", "--for", "1h")
	if out := mustMoat(t, bobEnv, "access", "approve", id); !strings.Contains(out, "active until") {
		t.Fatalf("approve: %s", out)
	}

	t.Log("a shell through the server that does not hold the tunnel")
	code, out, errOut := moatIn(t, alice, "echo hello-$((6*7))\nid -un\nexit 3\n", "ssh", "web-1")
	if code != 3 || out != "hello-42\n"+user+"\n" {
		t.Fatalf("ssh through %s: exit %d, stdout %q, stderr %q", other.name, code, out, errOut)
	}
	if !strings.Contains(holder.p.out.String(), "relaying for another server") {
		t.Fatalf("%s did not relay for %s", holder.name, other.name)
	}

	t.Log("a live session through one server ends when the grant is revoked through the other, before the revocation answers")
	cmd := exec.Command(moatBin, "ssh", "-t", "web-1")
	cmd.Env = append(os.Environ(), alice...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var liveOut, liveErr logBuffer
	cmd.Stdout, cmd.Stderr = &liveOut, &liveErr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	fmt.Fprintf(stdin, "echo live-$((20+1))\n")
	waitFor(t, "the live session's output", func() bool { return strings.Contains(liveOut.String(), "live-21") })
	sent := time.Now()
	out = mustMoat(t, []string{"MOAT_SERVER=" + holder.listen, "MOAT_ADMIN_DIR=" + bobDir}, "access", "revoke", id)
	if out != "grant "+id+" revoked; 1 live session(s) ended" {
		t.Fatalf("revoke through %s: %q", holder.name, out)
	}
	select {
	case <-ended:
		t.Logf("the session relayed by %s ended %s after the revocation was sent to %s", other.name, time.Since(sent).Round(time.Millisecond), holder.name)
	case <-time.After(waitLimit):
		t.Fatal("moat ssh did not end after the revocation")
	}
	if !strings.Contains(liveErr.String(), "the session ended without an exit status") {
		t.Fatalf("live session: %s", liveErr.String())
	}

	t.Log("the recordings, kept by the server the agent sends them to, replay through either")
	var sessions []api.AccessSession
	waitFor(t, "both recordings at the control plane", func() bool {
		sessions = sessionsOf(t, alice, id)
		return len(sessions) == 2 && sessions[0].Stored && sessions[1].Stored
	})
	if sessions[0].StoredOn != holder.name {
		t.Fatalf("the recording is kept by %q, want %s (the agent's server)", sessions[0].StoredOn, holder.name)
	}
	for _, s := range c.servers {
		if got := mustMoat(t, c.via(s), "access", "replay", "--instant", sessions[0].ID); got != "hello-42\n"+user {
			t.Fatalf("replay through %s: %q", s.name, got)
		}
	}

	t.Log("an operator who neither held the session nor approved its grant is refused by the server reached, before it asks the one keeping the recording")
	carolDir := filepath.Join(c.dir, "carol")
	mustMoat(t, c.env(), "admin", "create", "--name", "carol", "--role", "operator", "--out", carolDir)
	enrolMFA(t, c.addrs(), carolDir)
	carolCast := filepath.Join(c.dir, "carol.cast")
	code, out, errOut = moatIn(t, []string{"MOAT_SERVER=" + other.listen, "MOAT_ADMIN_DIR=" + carolDir}, "", "access", "export", "-o", carolCast, sessions[0].ID)
	if code == 0 || out != "" || !strings.Contains(errOut, "may not read the recording of session "+sessions[0].ID) {
		t.Fatalf("carol's export through %s: exit %d, stdout %q, stderr %q", other.name, code, out, errOut)
	}
	if _, err := os.Stat(carolCast); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("carol's export left %s: %v", carolCast, err)
	}
	refused := false
	for _, line := range strings.Split(mustMoat(t, c.env(), "audit", "log", "--output", "json"), "\n") {
		var x audit.Indexed
		if err := json.Unmarshal([]byte(line), &x); err != nil {
			t.Fatalf("audit log line %q: %v", line, err)
		}
		if en := x.Entry; en.Action == "access.recording" && strings.HasSuffix(en.Actor, "/admin/carol") && en.Result != "pending" {
			if !strings.HasPrefix(en.Result, "denied: ") || en.Target != sessions[0].ID || en.Detail["stored_on"] != "" || en.Detail["grant"] != "" {
				t.Fatalf("carol's refusal audited as %q on %q, detail %v: want a denial that names no grant and asked no other server", en.Result, en.Target, en.Detail)
			}
			refused = true
		}
	}
	if !refused {
		t.Fatal("carol's refusal is not in the audit log")
	}

	t.Log("the tunnel's server dies: the agent opens its tunnel to the other, and access goes on there")
	holder.p.kill()
	next := c.tunnelServer("web-1", holder)
	if next != other {
		t.Fatalf("the tunnel moved to %s", next.name)
	}
	both := []string{"MOAT_SERVER=" + holder.listen + "," + other.listen, "MOAT_ADMIN_DIR=" + c.admin}
	id2 := mustMoat(t, both, "access", "request", "--node", "web-1", "--shell", "--reason", "INC-8", "--for", "1h")
	mustMoat(t, []string{"MOAT_SERVER=" + holder.listen + "," + other.listen, "MOAT_ADMIN_DIR=" + bobDir}, "access", "approve", id2)
	code, out, errOut = moatIn(t, both, "echo again\n", "ssh", "web-1")
	if code != 0 || out != "again\n" {
		t.Fatalf("ssh after the kill: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
