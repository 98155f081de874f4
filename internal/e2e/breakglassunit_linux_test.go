package e2e

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitCaps reads the AmbientCapabilities of a file under deploy/systemd
// as setpriv's capability list ("-all,+net_admin,...").
func unitCaps(t *testing.T, files ...string) (string, []string) {
	t.Helper()
	set, names := "-all", []string(nil)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^AmbientCapabilities=(.*)$`).FindAllSubmatch(b, -1) {
			for _, c := range strings.Fields(string(m[1])) {
				names = append(names, c)
				set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
			}
		}
	}
	return set, names
}

// TestBreakGlassUnitAgent runs the agent binary the way the shipped unit
// does: as an unprivileged account holding only the unit's capabilities.
// Such an agent says at start, and again when a shell grant arrives, that
// shell grants will be refused, naming the missing capabilities and the
// break-glass drop-in, and an administrator's shell is refused with that
// message. Restarted with the
// drop-in's capabilities too, it gives the administrator a shell as the
// configured account on a terminal, with no capability left in it.
func TestBreakGlassUnitAgent(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("running the agent as another uid with capabilities needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (Debian package util-linux) is needed: %v", err)
	}
	const shellUser = "daemon" // not the agent's uid (nobody); on every Debian system
	if _, err := user.Lookup(shellUser); err != nil {
		t.Fatal(err)
	}
	b := startBreakGlass(t)
	// The agent's uid must reach its binary and own its data directory
	// and what sits beside it (the KEK, the public socket directory).
	if err := os.Chmod(filepath.Dir(moatBinary(t)), 0o755); err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp("", "moat-e2e-node-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(home, "node")
	if err := os.Mkdir(nodeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(nodeDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	env := b.alice.env
	tok := must(t, env, "token", "create", "--node", "web-2")
	mesh := "127.0.0.1:" + strconv.Itoa(freeRun(t, 1))
	agent := func(caps string, join ...string) *proc {
		wrap := []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=" + caps, "--ambient-caps=" + caps, "--bounding-set=" + caps}
		if strings.Contains(caps, "setuid") {
			wrap = wrap[:len(wrap)-1] // the drop-in gives the full bounding set back, for sudo in sessions
		}
		args := append([]string{"agent", "--data-dir", filepath.Join(nodeDir, "web-2"), "--server", b.serverAddr,
			"--node", "web-2", "--listen", mesh, "--access-user", shellUser}, join...)
		p := moatStartUnder(t, cmdEnv{}, nil, wrap, args...)
		waitUntil(t, time.Minute, "the agent's access tunnel", func() bool {
			return strings.Contains(p.errb.String(), "access tunnel open") || p.exited()
		})
		if p.exited() {
			t.Fatalf("the agent exited %d:\n%s", p.code, p.errb.String())
		}
		return p
	}
	const lacks = `cannot start sessions as \"daemon\" (uid 1): it lacks CAP_SETUID, CAP_SETGID, CAP_CHOWN (install deploy/systemd/moat-agent.service.d/break-glass.conf`

	caps, names := unitCaps(t, "moat-agent.service")
	t.Logf("the agent as uid nobody with the unit's capabilities (%s)", strings.Join(names, " "))
	p := agent(caps, "--join", tok)
	if log := p.errb.String(); !strings.Contains(log, "shell grants will be refused") || !strings.Contains(log, lacks) {
		t.Fatalf("the agent's start does not say shells will be refused and why:\n%s", log)
	}
	b.request(t, "--node", "web-2", "--shell", "--reason", "INC-7", "--for", "1h")
	waitUntil(t, time.Minute, "the agent to warn of the grant it cannot serve", func() bool {
		return strings.Contains(p.errb.String(), "a shell grant arrived whose sessions will be refused")
	})
	r := moatRun(t, env, "", "ssh", "web-2", "true")
	if r.code == 0 || !strings.Contains(r.errOut, strings.ReplaceAll(lacks, `\"`, `"`)) {
		t.Fatalf("ssh to an agent that cannot switch users: exit %d, stdout %q, stderr %q", r.code, r.out, r.errOut)
	}
	t.Logf("refused, the administrator told why: %s", strings.TrimSpace(r.errOut))
	p.stop()

	caps, names = unitCaps(t, "moat-agent.service", "moat-agent.service.d/break-glass.conf")
	t.Logf("restarted with the drop-in's capabilities too (%s)", strings.Join(names, " "))
	p = agent(caps)
	if log := p.errb.String(); !strings.Contains(log, "shell sessions run as") || strings.Contains(log, "will be refused") {
		t.Fatalf("the agent's start does not say shells run:\n%s", log)
	}
	r = moatRun(t, env, "", "ssh", "-t", "web-2", `id -un; stat -c %U "$(tty)"; grep -E '^Cap(Prm|Eff|Amb)' /proc/$$/status`)
	want := "daemon\r\ndaemon\r\nCapPrm:\t0000000000000000\r\nCapEff:\t0000000000000000\r\nCapAmb:\t0000000000000000\r\n"
	if r.code != 0 || r.out != want {
		t.Fatalf("ssh -t: exit %d, stdout %q, want %q; stderr %q", r.code, r.out, want, r.errOut)
	}
}
