//go:build !linux

package main

import "syscall"

// childAttr: the harness measures RSS from /proc and runs on Linux; off it
// a started server keeps the harness's process group.
func childAttr() *syscall.SysProcAttr { return nil }
