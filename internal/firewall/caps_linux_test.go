//go:build linux

package firewall

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"moat/internal/netlab"
)

// capCheckEnv makes the test binary, started again by
// TestAgentUnitCapabilities, do the firewall's work and report.
const capCheckEnv = "MOAT_FIREWALL_CAPCHECK"

// TestAgentUnitCapabilities: deploy/systemd/moat-agent.service runs the
// agent as an unprivileged user with CAP_NET_ADMIN alone. As such a
// process (setpriv, uid nobody, no new privileges), in a network namespace
// of its own, the firewall replaces its table, binds its NFLOG group and
// marks an egress socket; without the capability it can do none of it.
func TestAgentUnitCapabilities(t *testing.T) {
	if os.Getenv(capCheckEnv) != "" {
		capCheck()
		return
	}
	fw, _ := lab(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (Debian package util-linux) is needed: %v", err)
	}
	// A copy of this test binary that uid nobody may run.
	bin, err := netlab.SelfCopy("")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(bin)
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(caps string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := fw.Command(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
			"--inh-caps="+caps, "--ambient-caps="+caps, "--bounding-set="+caps,
			bin, "-test.run=^TestAgentUnitCapabilities$")
		cmd.Env = append(os.Environ(), capCheckEnv+"=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	t.Log("without CAP_NET_ADMIN the firewall can do nothing")
	if out, err := run("-all"); err == nil || !strings.Contains(out, "capcheck:") {
		t.Fatalf("without capabilities: %v\n%s", err, out)
	} else {
		t.Logf("refused as expected: %s", firstLineOf(out))
	}
	if out, err := fw.Command(context.Background(), "nft", "list", "table", "inet", Table).CombinedOutput(); err == nil {
		t.Fatalf("a table was installed without the capability:\n%s", out)
	}

	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", "moat-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^AmbientCapabilities=(.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("moat-agent.service grants no AmbientCapabilities")
	}
	caps := "-all"
	for _, c := range strings.Fields(string(m[1])) {
		caps += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	t.Logf("with what the unit grants (%s)", m[1])
	if out, err := run(caps); err != nil {
		t.Fatalf("with %s: %v\n%s", m[1], err, out)
	}
	if out, err := fw.Command(context.Background(), "nft", "list", "table", "inet", Table).CombinedOutput(); err != nil {
		t.Fatalf("the table is not installed: %v\n%s", err, out)
	}
}

func firstLineOf(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// capCheck is the re-started binary's part: apply a table, bind the NFLOG
// group, mark a socket; exit 1 naming the first step that failed.
func capCheck() {
	fail := func(step string, err error) {
		fmt.Printf("capcheck: %s: %v\n", step, err)
		os.Exit(1)
	}
	m, err := New(Config{})
	if err != nil {
		fail("nftables", err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, Egress: true})); err != nil {
		fail("apply", err)
	}
	// What Run does first: bind the log group.
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{})
	if err != nil {
		fail("nflog", err)
	}
	defer c.Close()
	if err := bindLog(c, DefaultLogGroup); err != nil {
		fail("nflog", err)
	}
	ln, err := (&net.ListenConfig{Control: Control}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		fail("mark", err)
	}
	ln.Close()
	fmt.Println("capcheck ok")
	os.Exit(0)
}
