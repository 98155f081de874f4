package main

import "syscall"

// childAttr puts a started server in its own process group, killed with
// the harness.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
