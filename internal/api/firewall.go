package api

import (
	"fmt"
	"slices"
)

// FirewallHealth is what an agent reports about its node's host firewall
// (NodeHealth.Firewall): the rules of other nftables tables that take
// packets round it (package firewall's Bypass), which moat's own table
// cannot undo. It is the node's word: the server checks its bounds and
// shape, not its truth, and its text is shown escaped.
type FirewallHealth struct {
	// Bypasses are the first MaxFirewallBypasses of those rules, in the
	// order the agent found them; BypassCount counts them all.
	Bypasses    []FirewallBypass `json:"bypasses,omitempty"`
	BypassCount int              `json:"bypass_count,omitempty"`
}

// FirewallBypass is one rule of another table that takes packets round
// the host firewall.
type FirewallBypass struct {
	Family string `json:"family"` // ip, ip6, inet, arp, bridge, netdev
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Handle uint64 `json:"handle"`
	Kind   string `json:"kind"` // BypassMark or BypassNotrack
}

// Kinds of a FirewallBypass.
const (
	// BypassMark: the rule sets moat's mark, which gives any local
	// socket the egress path's pins (withheld while it stands).
	BypassMark = "mark"
	// BypassNotrack: the rule exempts traffic other than loopback's from
	// connection tracking.
	BypassNotrack = "notrack"
)

// Bounds of a FirewallHealth report; the server refuses what is past
// them. A name is at most what nftables holds (NFT_NAME_MAXLEN, its
// terminating zero aside).
const (
	MaxFirewallBypasses    = 32
	MaxFirewallBypassCount = 1 << 20
	MaxNFTName             = 255
)

// firewallFamilies are the families nftables has.
var firewallFamilies = []string{"ip", "ip6", "inet", "arp", "bridge", "netdev"}

// Check reports what in f is past its bounds or not of its shape, naming
// the field. A name is not held to printable characters: nftables takes
// any, and a report refused for one would hide the rule; it is shown
// escaped instead.
func (f *FirewallHealth) Check() error {
	if f == nil {
		return nil
	}
	if len(f.Bypasses) > MaxFirewallBypasses {
		return fmt.Errorf("bypasses: %d rules listed; at most %d", len(f.Bypasses), MaxFirewallBypasses)
	}
	if f.BypassCount < len(f.Bypasses) || f.BypassCount > MaxFirewallBypassCount {
		return fmt.Errorf("bypass_count: %d, with %d rules listed; want from %d to %d", f.BypassCount, len(f.Bypasses), len(f.Bypasses), MaxFirewallBypassCount)
	}
	for i, b := range f.Bypasses {
		switch {
		case !slices.Contains(firewallFamilies, b.Family):
			return fmt.Errorf("bypasses[%d].family: want one of %v", i, firewallFamilies)
		case b.Table == "" || len(b.Table) > MaxNFTName:
			return fmt.Errorf("bypasses[%d].table: want 1 to %d bytes", i, MaxNFTName)
		case b.Chain == "" || len(b.Chain) > MaxNFTName:
			return fmt.Errorf("bypasses[%d].chain: want 1 to %d bytes", i, MaxNFTName)
		case b.Kind != BypassMark && b.Kind != BypassNotrack:
			return fmt.Errorf("bypasses[%d].kind: want %q or %q", i, BypassMark, BypassNotrack)
		}
	}
	return nil
}

// Kinds counts the listed rules of each kind.
func (f *FirewallHealth) Kinds() (mark, notrack int) {
	if f == nil {
		return 0, 0
	}
	for _, b := range f.Bypasses {
		if b.Kind == BypassMark {
			mark++
		} else {
			notrack++
		}
	}
	return mark, notrack
}
