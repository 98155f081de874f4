package agent

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A session as another account than the agent's starts through the agent's
// own binary, under this name, when the agent holds ambient capabilities
// (a systemd unit's AmbientCapabilities=): a process keeps them across a
// change between two non-zero uids and hands them on at exec, so the
// shell would hold CAP_SETUID. The trampoline drops every capability of
// its thread, then executes the session's program in its place.
const sessionExecArg0 = "moat-session-exec"

func init() {
	if len(os.Args) < 3 || os.Args[0] != sessionExecArg0 {
		return
	}
	runtime.LockOSThread()
	err := dropCapabilities()
	if err == nil {
		err = syscall.Exec(os.Args[1], os.Args[2:], os.Environ())
	}
	fmt.Fprintf(os.Stderr, "moat: start %s: %v\n", os.Args[1], err)
	os.Exit(127)
}

// dropCapabilities clears the calling thread's ambient, inheritable,
// permitted and effective sets; the thread must be locked.
func dropCapabilities() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("drop capabilities: %w", err)
	}
	return nil
}

// hasAmbientCaps says whether the agent holds any ambient capability.
func hasAmbientCaps() bool {
	for c := 0; c < 64; c++ {
		set, err := unix.PrctlRetInt(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_IS_SET, uintptr(c), 0, 0)
		if err != nil {
			return false // past the last capability the kernel knows
		}
		if set == 1 {
			return true
		}
	}
	return false
}

// wrapSession makes cmd start through the trampoline when the agent holds
// ambient capabilities.
func wrapSession(cmd *exec.Cmd) {
	if cmd.Err != nil || !hasAmbientCaps() {
		return
	}
	cmd.Args = append([]string{sessionExecArg0, cmd.Path}, cmd.Args...)
	cmd.Path = "/proc/self/exe"
}

// sessionExecReady checks that access.user may run the trampoline, the
// agent's binary, when sessions start through it.
func sessionExecReady() error {
	if !hasAmbientCaps() {
		return nil
	}
	st, err := os.Stat("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("the agent's binary: %v", err)
	}
	if st.Mode().Perm()&0o001 == 0 {
		path, _ := os.Readlink("/proc/self/exe")
		return fmt.Errorf("sessions start through the agent's binary, which drops the agent's capabilities, but %s is not executable by other users (mode %v): make it 0755", path, st.Mode().Perm())
	}
	return nil
}

// switchCaps are what starting a session as another account takes:
// setresuid, setresgid and setgroups, and the terminal's new owner.
var switchCaps = []struct {
	name string
	bit  int
}{{"CAP_SETUID", unix.CAP_SETUID}, {"CAP_SETGID", unix.CAP_SETGID}, {"CAP_CHOWN", unix.CAP_CHOWN}}

// canSwitchUser checks that the agent holds switchCaps and that no system
// call filter refuses the calls: a no-op setresuid or setresgid answers
// EPERM only from a filter.
func canSwitchUser() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading its capabilities: %v", err)
	}
	var missing []string
	for _, c := range switchCaps {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("it lacks %s (install %s, or run the agent as root)", strings.Join(missing, ", "), breakGlassDropIn)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	none := ^uintptr(0)
	for _, probe := range []struct {
		name string
		nr   uintptr
	}{{"setresuid", unix.SYS_SETRESUID}, {"setresgid", unix.SYS_SETRESGID}} {
		if _, _, e := unix.RawSyscall(probe.nr, none, none, none); e != 0 {
			return fmt.Errorf("%s is refused (%v): a system call filter (SystemCallFilter=~@privileged) stands in the way; install %s", probe.name, e, breakGlassDropIn)
		}
	}
	return nil
}

// sessionLimits names what the agent's own restrictions take from its
// sessions, which inherit them.
func sessionLimits() []string {
	var notes []string
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && nnp == 1 {
		notes = append(notes, "no_new_privs is set: sudo and su in sessions are refused (install "+breakGlassDropIn+")")
	}
	return notes
}
