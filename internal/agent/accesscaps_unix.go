//go:build unix && !linux

package agent

import (
	"errors"
	"os"
	"os/exec"
)

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
