//go:build !linux

package cmdline

// shedExecutable leaves the executable's pages alone: the page cache's
// large folios it works around are Linux's (see shed_linux.go).
func shedExecutable() error { return nil }
