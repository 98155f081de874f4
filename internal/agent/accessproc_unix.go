//go:build unix

package agent

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/creack/pty"
)

// canOpenPTY opens a terminal and closes it.
func canOpenPTY() error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return err
	}
	tty.Close()
	return ptmx.Close()
}

// startPTY starts cmd on a new terminal owned by the session's user (mode
// 0620, as sshd leaves it), its controlling terminal in a new session.
func startPTY(cmd *exec.Cmd, lu *localUser, cols, rows int) (*os.File, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, err
	}
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		ptmx.Close()
		return nil, err
	}
	if uint32(os.Getuid()) != lu.uid {
		// The mode first: once the terminal is the user's, changing it
		// would take CAP_FOWNER.
		_ = tty.Chmod(0o620)
		if err := tty.Chown(int(lu.uid), -1); err != nil {
			ptmx.Close()
			return nil, fmt.Errorf("give the terminal to %s: %v", lu.name, err)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0
	if err := cmd.Start(); err != nil {
		ptmx.Close()
		return nil, err
	}
	return ptmx, nil
}

func (p *process) resize(cols, rows int) {
	if p.ptmx == nil || cols <= 0 || rows <= 0 || cols > 10000 || rows > 10000 {
		return
	}
	_ = pty.Setsize(p.ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	_ = p.rec.Resize(cols, rows)
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP,
	"ILL": syscall.SIGILL, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE,
	"QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

// signal delivers an SSH signal to the session's program.
func (p *process) signal(name string) {
	if sig, ok := signals[name]; ok && p.cmd.Process != nil {
		p.sup.signal(p.cmd.Process.Pid, sig)
	}
}

// kill ends the session's processes: a hangup, then a kill for what
// ignores it.
func (p *process) kill() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.sup.end(p.cmd.Process.Pid, p.done)
}
