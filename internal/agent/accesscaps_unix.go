//go:build unix && !linux

package agent

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// asUser runs cmd in a new session as the session's user. Outside Linux
// the session's processes are its process group's: one that leaves it
// outlives the session.
func asUser(cmd *exec.Cmd, lu *localUser) (*supervision, error) {
	attr := &syscall.SysProcAttr{Setsid: true}
	if uint32(os.Getuid()) != lu.uid || uint32(os.Getgid()) != lu.gid {
		attr.Credential = &syscall.Credential{Uid: lu.uid, Gid: lu.gid, Groups: lu.groups}
	}
	cmd.SysProcAttr = attr
	return &supervision{}, nil
}

// supervision is the process group of a session's program.
type supervision struct{}

func (*supervision) started() error { return nil }

func (*supervision) abandon() {}

func (*supervision) release() {}

func (*supervision) caughtUp() {}

// signal delivers sig to the program's process group (pid).
func (*supervision) signal(pid int, sig syscall.Signal) { _ = syscall.Kill(-pid, sig) }

// end hangs up the program's process group (pid), then kills it if the
// program has not ended (done) in a while.
func (*supervision) end(pid int, done <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGHUP)
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// canSwitchUser: outside Linux only root starts processes as another
// account.
func canSwitchUser() error {
	if os.Geteuid() != 0 {
		return errors.New("only root can start processes as another account on this system")
	}
	return nil
}

func wrapSession(*exec.Cmd) {}

func sessionExecReady() error { return nil }

func sessionLimits() []string { return nil }
