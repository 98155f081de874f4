package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/netlab"
)

// procCheckEnv makes the test binary, started again by
// TestProcEventsUnderTheUnit as uid nobody, subscribe to the kernel's
// process events, start a program and report what it read of it.
const procCheckEnv = "MOAT_AGENT_PROCCHECK"

// TestProcEventsUnderTheUnit: the capability the shipped unit gives the
// agent (CAP_NET_ADMIN) is what the kernel's process events take: an
// unprivileged process holding it alone reads the fork and exec of a
// program it starts, and that program's arguments; without it the
// subscription fails, naming the capability.
func TestProcEventsUnderTheUnit(t *testing.T) {
	if os.Getenv(procCheckEnv) != "" {
		procCheck()
		return
	}
	if os.Getuid() != 0 {
		t.Fatal("setpriv to uid nobody with capabilities needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (Debian package util-linux) is needed: %v", err)
	}
	bin, err := netlab.SelfCopy("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	run := func(caps []string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		set := "-all"
		for _, c := range caps {
			set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		cmd := exec.CommandContext(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps="+set, "--ambient-caps="+set, bin, "-test.run=^TestProcEventsUnderTheUnit$")
		cmd.Env = append(os.Environ(), procCheckEnv+"=1")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	unitCaps := unitAmbientCaps(t, filepath.Join("..", "..", "deploy", "systemd", "moat-agent.service"))
	out := run(unitCaps)
	if want := "procs: argv=/bin/sh -c read x; : marker-proc-42\n"; !strings.Contains(out, want) {
		t.Errorf("with the unit's %v: %q, want %q", unitCaps, out, want)
	}
	out = run(nil)
	if want := "procs: the kernel's process events take CAP_NET_ADMIN, which the agent lacks\n"; !strings.Contains(out, want) {
		t.Errorf("without capabilities: %q, want %q", out, want)
	}
}

// procCheck subscribes, starts a program that waits on its input and
// prints the arguments read at its exec.
func procCheck() {
	src, err := openProcEvents()
	if err != nil {
		fmt.Printf("procs: %v\n", err)
		os.Exit(0)
	}
	cmd := exec.Command("/bin/sh", "-c", "read x; :", "marker-proc-42")
	in, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		fmt.Printf("procs: start: %v\n", err)
		os.Exit(1)
	}
	defer func() { in.Close(); cmd.Wait() }()
	pid := uint32(cmd.Process.Pid)
	forked := false
	for {
		evs, err := src.next()
		if err != nil {
			fmt.Printf("procs: %v\n", err)
			return
		}
		for _, ev := range evs {
			switch {
			case ev.Kind == procEventFork && ev.Tgid == pid && ev.PTgid == uint32(os.Getpid()):
				forked = true
			case ev.Kind == procEventExec && ev.Tgid == pid && forked:
				fmt.Printf("procs: argv=%s\n", strings.Join(readProg(pid).argv, " "))
				return
			}
		}
	}
}
