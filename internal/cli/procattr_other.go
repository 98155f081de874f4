//go:build !linux

package cli

import "syscall"

// dieWithParent: only Linux has a parent-death signal (the demo that uses
// it runs on Linux alone).
func dieWithParent() *syscall.SysProcAttr { return nil }
