//go:build !linux

package agent

import "errors"

// openProcEvents: the kernel's process events are Linux's.
func openProcEvents() (procSource, error) {
	return nil, errors.New("the kernel's process events are read on Linux only")
}
