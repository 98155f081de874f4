package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"moat/internal/netlab"
)

// shellCheckEnv makes the test binary, started again by
// TestBreakGlassUnitCapabilities as an unprivileged uid, start a session
// as shellCheckUser and report: "checked" goes through resolveUser (the
// readiness check), "raw" skips it to show what the start itself needs.
const shellCheckEnv = "MOAT_AGENT_SHELLCHECK"

// shellCheckUser is the account sessions run as: another than nobody, the
// agent's uid in the test, present on every Debian system.
const shellCheckUser = "daemon"

// TestBreakGlassUnitCapabilities: deploy/systemd/moat-agent.service runs
// the agent as an unprivileged user; with the break-glass drop-in's
// capabilities (and the unit's own), such a process (setpriv, uid nobody)
// starts a shell as another account on a terminal it owns, through
// asUser and startPTY as a session does, and the shell holds no
// capability. With any one of them missing, the readiness check names it
// and the drop-in, and the start itself fails; under a system call filter
// refusing setresuid it names the filter; with a binary the account may
// not run (sessions start through it) it names the binary.
func TestBreakGlassUnitCapabilities(t *testing.T) {
	if mode := os.Getenv(shellCheckEnv); mode != "" {
		shellCheck(mode)
		return
	}
	if os.Getuid() != 0 {
		t.Fatal("setpriv to uid nobody with capabilities needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (Debian package util-linux) is needed: %v", err)
	}
	target, err := user.Lookup(shellCheckUser)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := netlab.SelfCopy("")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(bin)
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(bin, mode string, caps []string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		set := "-all"
		for _, c := range caps {
			set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
		}
		cmd := exec.CommandContext(ctx, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps="+set, "--ambient-caps="+set,
			bin, "-test.run=^TestBreakGlassUnitCapabilities$")
		cmd.Env = append(os.Environ(), shellCheckEnv+"="+mode)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	unitCaps := unitAmbientCaps(t, filepath.Join("..", "..", "deploy", "systemd", "moat-agent.service"))
	dropCaps := unitAmbientCaps(t, filepath.Join("..", "..", breakGlassDropIn))
	if len(dropCaps) == 0 {
		t.Fatalf("%s grants no AmbientCapabilities", breakGlassDropIn)
	}
	all := append(append([]string{}, unitCaps...), dropCaps...)

	t.Logf("with what the unit and the drop-in grant (%s)", strings.Join(all, " "))
	out, err := run(bin, "checked", all)
	if err != nil {
		t.Fatalf("with %v: %v\n%s", all, err, out)
	}
	t.Logf("the session reported:\n%s", out)
	for _, want := range []string{
		"uid=" + target.Uid + " ",
		"tty-owner=" + target.Uid + " tty-mode=620 ",
		"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000", "CapAmb:\t0000000000000000",
		"status=0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the session's report lacks %q:\n%s", want, out)
		}
	}

	t.Log("a binary the session's account may not run is named, not a failure mid-start")
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o755); err != nil {
		t.Fatal(err)
	}
	pbin, err := netlab.SelfCopy(private)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pbin, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pbin, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err = run(pbin, "checked", all)
	if err == nil || !strings.Contains(out, "is not executable by other users (mode -rwx------): make it 0755") {
		t.Fatalf("with a binary only the agent's uid may run: %v\n%s", err, out)
	}

	t.Log("with the capabilities but the unit's system call filter, the agent names the filter")
	out, err = run(bin, "filtered", all)
	if err == nil || !strings.Contains(out, "setresuid is refused (operation not permitted): a system call filter (SystemCallFilter=~@privileged) stands in the way; install "+breakGlassDropIn) {
		t.Fatalf("under a filter refusing setresuid: %v\n%s", err, out)
	}

	t.Log("without capabilities the agent names all three and the drop-in")
	out, err = run(bin, "checked", unitCaps)
	if err == nil || !strings.Contains(out, "lacks CAP_SETUID, CAP_SETGID, CAP_CHOWN (install "+breakGlassDropIn) {
		t.Fatalf("without the drop-in's capabilities: %v\n%s", err, out)
	}
	t.Logf("refused as expected: %s", firstLine(out))

	// Each capability is needed: without it the check names it alone, and
	// the start fails.
	for _, missing := range dropCaps {
		var some []string
		for _, c := range all {
			if c != missing {
				some = append(some, c)
			}
		}
		out, err := run(bin, "checked", some)
		if err == nil || !strings.Contains(out, "lacks "+missing+" (install "+breakGlassDropIn) {
			t.Errorf("without %s: %v\n%s", missing, err, out)
		}
		out, err = run(bin, "raw", some)
		if err == nil || !strings.Contains(out, "shellcheck: start:") {
			t.Errorf("without %s, with the check skipped, the session started: %v\n%s", missing, err, out)
		} else {
			t.Logf("without %s the start fails: %s", missing, firstLine(out))
		}
	}
}

// unitAmbientCaps reads a unit file's AmbientCapabilities.
func unitAmbientCaps(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var caps []string
	for _, m := range regexp.MustCompile(`(?m)^AmbientCapabilities=(.*)$`).FindAllSubmatch(b, -1) {
		caps = append(caps, strings.Fields(string(m[1]))...)
	}
	return caps
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// shellCheck is the re-started binary's part: start a shell as
// shellCheckUser on a terminal the way a session does and print what it
// reports; exit 1 naming the step that failed.
func shellCheck(mode string) {
	fail := func(step string, err error) {
		fmt.Printf("shellcheck: %s: %v\n", step, err)
		os.Exit(1)
	}
	x := newAccess(&Agent{cfg: Config{Node: "web-1"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		AccessConfig{User: shellCheckUser, Shell: "/bin/sh"})
	if mode == "filtered" {
		if err := refuseSetresuid(); err != nil {
			fail("seccomp", err)
		}
	}
	var lu *localUser
	if mode == "raw" {
		u, err := user.Lookup(shellCheckUser)
		if err != nil {
			fail("lookup", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		lu = &localUser{name: u.Username, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}, home: "/", shell: "/bin/sh"}
	} else {
		var err error
		if lu, err = x.resolveUser(); err != nil {
			fail("resolve", err)
		}
	}
	script := `echo "uid=$(id -u) gid=$(id -g) "; echo "tty-owner=$(stat -c %u "$(tty)") tty-mode=$(stat -c %a "$(tty)") "; grep '^Cap' /proc/$$/status`
	cmd := exec.Command(lu.shell, "-c", script)
	cmd.Dir = lu.home
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + lu.home}
	sup, err := asUser(cmd, lu)
	if err != nil {
		fail("start", err)
	}
	ptmx, err := startPTY(cmd, lu, 80, 24)
	if err != nil {
		fail("start", err)
	}
	if err := sup.started(); err != nil {
		fail("start", err)
	}
	out, rerr := io.ReadAll(ptmx) // EIO once the shell and its children are gone
	werr := cmd.Wait()
	var pe *os.PathError
	if rerr != nil && !(errors.As(rerr, &pe)) {
		fail("read", rerr)
	}
	fmt.Printf("%s\nstatus=%d\n", strings.ReplaceAll(string(out), "\r\n", "\n"), cmd.ProcessState.ExitCode())
	if werr != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// refuseSetresuid installs, on every thread, a seccomp filter that answers
// setresuid with EPERM, as systemd's SystemCallFilter=~@privileged with
// SystemCallErrorNumber=EPERM does.
func refuseSetresuid() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_SETRESUID},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		return e
	}
	return nil
}
