package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"moat/internal/api"
	"moat/internal/firewall"
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

// TestFirewallFileForwarding: firewall.forwarding is read into the
// agent's config, "" meaning egress, anything but egress or open refused
// with the key named.
func TestFirewallFileForwarding(t *testing.T) {
	for in, want := range map[string]firewall.Forwarding{"": firewall.ForwardEgress, "egress": firewall.ForwardEgress, "open": firewall.ForwardOpen} {
		f := FirewallFile{Mode: "enforce", Forwarding: in}
		c, err := f.Config("firewall")
		if err != nil || c.Forwarding != want {
			t.Errorf("forwarding %q: %q, %v; want %q", in, c.Forwarding, err, want)
		}
	}
	f := FirewallFile{Mode: "enforce", Forwarding: "router"}
	if _, err := f.Config("firewall"); err == nil || !strings.Contains(err.Error(), "firewall.forwarding") {
		t.Errorf("forwarding router: %v", err)
	}
}

// TestFirewallInputsForwarding: the forwarding configured reaches the
// firewall; a local service's app port is a Backend when the service is
// registered with a uid, another node's services are not.
func TestFirewallInputsForwarding(t *testing.T) {
	uid := 1234
	a := &Agent{cfg: Config{Node: "n1", Firewall: FirewallConfig{Mode: firewall.ModeEnforce, Forwarding: firewall.ForwardOpen}},
		state: state{services: map[string]api.Registration{
			"web":    {Name: "web", Node: "n1", Port: 8080},
			"ledger": {Name: "ledger", Node: "n1", Port: 8081, UID: &uid},
			"other":  {Name: "other", Node: "n2", Port: 9000, UID: &uid},
		}}}
	s := firewall.Build(a.firewallInputs(nil))
	var got []string
	for _, be := range s.Backends {
		got = append(got, fmt.Sprintf("%s/%d", be.Service, be.Port))
	}
	if want := "ledger/8081"; strings.Join(got, "|") != want {
		t.Errorf("backends %q, want %q", strings.Join(got, "|"), want)
	}
	if s.Forward != firewall.ForwardOpen {
		t.Errorf("forwarding %q, want open", s.Forward)
	}
}
