package agent

import (
	"fmt"
	"os"

	"moat/internal/api"
)

// breakGlassDropIn is where deploy/ keeps what the shipped unit needs for
// sessions as another user.
const breakGlassDropIn = "deploy/systemd/moat-agent.service.d/break-glass.conf"

// shellReady says whether the agent can start sessions as lu: the shell is
// an executable file, a terminal opens, and for another account than the
// agent's own the agent holds what switching to it takes. The error names
// what is missing and what provides it; the agent logs it at start and
// sends it to an administrator whose session it refuses.
func (x *access) shellReady(lu *localUser) error {
	st, err := os.Stat(lu.shell)
	switch {
	case err != nil:
		return fmt.Errorf("node %q: the shell of sessions as %q: %v", x.a.cfg.Node, lu.name, err)
	case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("node %q: the shell of sessions as %q, %s, is not an executable file", x.a.cfg.Node, lu.name, lu.shell)
	}
	if lu.uid != uint32(os.Getuid()) || lu.gid != uint32(os.Getgid()) {
		if err := canSwitchUser(); err != nil {
			return fmt.Errorf("the agent on node %q runs as uid %d and cannot start sessions as %q (uid %d): %v",
				x.a.cfg.Node, os.Getuid(), lu.name, lu.uid, err)
		}
	}
	if err := sessionExecReady(); err != nil {
		return fmt.Errorf("the agent on node %q cannot start sessions: %v", x.a.cfg.Node, err)
	}
	if err := canOpenPTY(); err != nil {
		return fmt.Errorf("the agent on node %q cannot open a terminal for sessions: %v", x.a.cfg.Node, err)
	}
	return nil
}

// checkShells logs at start whether shell grants can be served here, so
// that an operator learns it from the agent's log rather than from an
// administrator during an incident.
func (x *access) checkShells() {
	if x.cfg.User == "" {
		x.a.log.Info("access: shell grants are refused on this node (access.user is unset); forward grants are served")
		return
	}
	lu, err := x.resolveUser()
	if err != nil {
		x.a.log.Warn("access: shell grants will be refused", "err", err)
		return
	}
	x.a.log.Info("access: shell sessions run as", "user", lu.name, "uid", lu.uid, "shell", lu.shell)
	x.execs.check()
	for _, note := range sessionLimits() {
		x.a.log.Warn("access: sessions are limited", "limit", note)
	}
}

// shellGranted warns, when a shell grant of this node arrives, that its
// sessions will be refused and why, while there is time to fix the node.
func (x *access) shellGranted(g api.Grant) {
	if x.cfg.Off {
		return
	}
	if _, err := x.resolveUser(); err != nil {
		x.a.log.Warn("access: a shell grant arrived whose sessions will be refused", "grant", g.ID, "requester", g.Requester, "err", err)
	}
}
