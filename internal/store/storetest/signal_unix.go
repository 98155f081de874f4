//go:build unix

package storetest

import "syscall"

// The signals that pause and continue a member's process.
var sigStop, sigCont = syscall.SIGSTOP, syscall.SIGCONT
