package agent

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

// TestControlPlaneEveryServer: the host firewall admits every server the
// agent may fail over to (server: "a:7400,b:7400"), and the servers that
// firewall.control_plane adds, not just one.
func TestControlPlaneEveryServer(t *testing.T) {
	a := &Agent{cfg: Config{
		Server:   "10.0.0.1:7400, 10.0.0.2:7400,[fd00::3]:7401",
		Firewall: FirewallConfig{ControlPlane: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.9:7400")}},
	}}
	got := a.controlPlane(context.Background())
	for _, want := range []string{"10.0.0.1:7400", "10.0.0.2:7400", "[fd00::3]:7401", "10.0.0.9:7400"} {
		if !slices.Contains(got, netip.MustParseAddrPort(want)) {
			t.Errorf("control plane %v lacks %s", got, want)
		}
	}
}
