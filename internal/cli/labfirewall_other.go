//go:build !linux

package cli

import "moat/internal/firewall"

// firewallIn fails: the lab's host firewalls are nftables (Linux).
func firewallIn(string, firewall.Mode) (bool, string) {
	return false, firewall.ErrUnsupported.Error()
}
