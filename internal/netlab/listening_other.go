//go:build !linux

package netlab

import (
	"errors"
	"net/netip"
)

// Listening needs Linux's /proc.
func Listening(pid int) ([]netip.AddrPort, error) {
	return nil, errors.New("netlab: listening sockets of a process are read from Linux's /proc")
}
