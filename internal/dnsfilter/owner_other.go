//go:build !linux

package dnsfilter

import "net/netip"

// socketOwner cannot tell a local socket's owner outside Linux: every
// client is told by its address.
func socketOwner(string, netip.AddrPort) (int, bool) { return 0, false }
