//go:build !linux

package cmdline

// shedExecutable is Linux's alone (see shed_linux.go).
var shedExecutable func() error
