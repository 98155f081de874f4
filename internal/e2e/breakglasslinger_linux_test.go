package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sessionLeftovers lists the live processes (zombies aside) whose command
// line is sleep with the argument arg: what a session left behind.
func sessionLeftovers(t *testing.T, arg string) []int {
	t.Helper()
	want := []byte("sleep\x00" + arg + "\x00")
	return liveProcs(t, func(cmdline []byte) bool { return bytes.HasSuffix(cmdline, want) })
}

// liveProcs lists the live processes (zombies aside) whose command line
// (/proc/PID/cmdline, its arguments each ended by a NUL) match accepts.
func liveProcs(t *testing.T, match func(cmdline []byte) bool) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !match(cmdline) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The state follows the command's closing parenthesis.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// TestBreakGlassSessionLeavesNothingRunning: a grant is time-boxed on the
// node too. A holder who starts processes meant to outlive the session
// (ignoring the hangup with nohup, in a job of their own, or in a session
// of their own with setsid, which leaves the shell's process group and
// session) finds none of them running once the session's end is on record,
// whether the session ended by itself or by the grant's revocation.
func TestBreakGlassSessionLeavesNothingRunning(t *testing.T) {
	b := startBreakGlass(t)
	id := b.request(t, "--node", "web-1", "--shell", "--reason", "INC-55", "--for", "1h")
	base := 300 + time.Now().UnixNano()%1000*1000 // sleep arguments unique to this run
	args := map[string]string{}
	for i, how := range []string{"nohup", "job", "setsid", "setsid-fork"} {
		args[how] = strconv.FormatInt(base+int64(i), 10)
	}
	t.Cleanup(func() {
		for _, arg := range args {
			for _, pid := range sessionLeftovers(t, arg) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	quiet := " </dev/null >/dev/null 2>&1"

	t.Log("a command that leaves processes behind and returns at once")
	cmd := fmt.Sprintf("nohup sleep %s%s & (trap '' HUP; exec sleep %s%s) & setsid sleep %s%s & echo started",
		args["nohup"], quiet, args["job"], quiet, args["setsid"], quiet)
	if r := moatRun(t, b.alice.env, "", "ssh", "web-1", cmd); r.code != 0 || r.out != "started\n" {
		t.Fatalf("ssh: exit %d: %q %q", r.code, r.out, r.errOut)
	}
	storedSessions(t, b.alice.env, id, 1)
	for _, how := range []string{"nohup", "job", "setsid"} {
		if pids := sessionLeftovers(t, args[how]); len(pids) > 0 {
			t.Errorf("the session ended, and a process it started (%s) still runs: %v", how, pids)
		}
	}

	t.Log("a live shell whose grant is revoked leaves nothing either")
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	live := moatStart(t, b.alice.env, stdin, "ssh", "-t", "web-1")
	stdin.Close()
	fmt.Fprintf(feed, "setsid -f sleep %s%s; echo forked-$((40+2))\n", args["setsid-fork"], quiet)
	waitUntil(t, time.Minute, "the live session's output", func() bool { return strings.Contains(live.out.String(), "forked-42") })
	if pids := sessionLeftovers(t, args["setsid-fork"]); len(pids) != 1 {
		t.Fatalf("the session's own process: %v", pids)
	}
	must(t, b.bob.env, "access", "revoke", id)
	waitUntil(t, time.Minute, "moat ssh to exit", live.exited)
	storedSessions(t, b.alice.env, id, 2)
	if pids := sessionLeftovers(t, args["setsid-fork"]); len(pids) > 0 {
		t.Errorf("the grant was revoked, and a process its session started (setsid -f) still runs: %v", pids)
	}
}

// TestBreakGlassSessionEndsWithTheAgent: an agent killed while a session
// runs (crashed, or killed on purpose to stop it enforcing the grant's end)
// leaves none of the session's processes running: the session's
// supervisor sees the agent go and ends them.
func TestBreakGlassSessionEndsWithTheAgent(t *testing.T) {
	b := startBreakGlass(t)
	b.request(t, "--node", "web-1", "--shell", "--reason", "INC-60", "--for", "1h")
	arg := strconv.FormatInt(300+time.Now().UnixNano()%1000*1000+7, 10)
	t.Cleanup(func() {
		for _, pid := range sessionLeftovers(t, arg) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer feed.Close()
	live := moatStart(t, b.alice.env, stdin, "ssh", "-t", "web-1")
	stdin.Close()
	fmt.Fprintf(feed, "setsid -f sleep %s </dev/null >/dev/null 2>&1; echo forked-$((40+3))\n", arg)
	waitUntil(t, time.Minute, "the live session's output", func() bool { return strings.Contains(live.out.String(), "forked-43") })
	if pids := sessionLeftovers(t, arg); len(pids) != 1 {
		t.Fatalf("the session's own process: %v", pids)
	}
	if err := b.agent.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "the session's processes to end with the agent", func() bool { return len(sessionLeftovers(t, arg)) == 0 })
}
