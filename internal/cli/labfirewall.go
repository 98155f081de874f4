package cli

import (
	"fmt"

	"moat/internal/firewall"
)

// firewallIn reports whether the moat table of the network namespace at
// netns is in force in mode, and what it found (never off Linux, where
// Show fails).
func firewallIn(netns string, mode firewall.Mode) (bool, string) {
	st, err := firewall.Show(netns)
	if err != nil {
		return false, err.Error()
	}
	return st.Installed && st.Mode == mode, fmt.Sprintf("installed %v, mode %q", st.Installed, st.Mode)
}
