//go:build !unix

package agent

import (
	"errors"
	"os"
	"os/exec"
)

// errNoShells: break-glass shells need a Unix node (sessions, PTYs,
// process groups); forwards work everywhere.
var errNoShells = errors.New("break-glass shells are offered on Unix nodes only")

func asUser(*exec.Cmd, *localUser) (*supervision, error) { return nil, errNoShells }

// supervision is a session's supervisor: none here.
type supervision struct{}

func (*supervision) started() error { return errNoShells }

func (*supervision) abandon() {}

func (*supervision) release() {}

func (*supervision) caughtUp() {}

func canSwitchUser() error { return errNoShells }

func canOpenPTY() error { return errNoShells }

func sessionExecReady() error { return errNoShells }

func sessionLimits() []string { return nil }

func startPTY(*exec.Cmd, *localUser, int, int) (*os.File, error) { return nil, errNoShells }

func (p *process) resize(int, int) {}

func (p *process) signal(string) {}

func (p *process) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}
