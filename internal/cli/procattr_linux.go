package cli

import "syscall"

// dieWithParent makes a child process die with the process that started
// it, whatever ends that one (the demo's processes die with the demo).
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
