package flow

import "net/netip"

// SourceKey is the unit a source is counted in wherever moat bounds what
// one source may hold or send: an IPv4 address, or an IPv6 /64, the least
// a single site is given (RFC 6177), so that one source cannot multiply
// its share by walking its own prefix.
func SourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
