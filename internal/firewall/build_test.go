package firewall

import (
	"net/netip"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	in := Inputs{
		Mode:         ModeEnforce,
		MeshPort:     15443,
		ControlPlane: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:7400"), netip.MustParseAddrPort("10.0.0.1:7400")},
		LocalAddrs:   []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		PublicPorts:  []uint16{443, 80, 443},
		Plaintext: []PlaintextPort{
			{Service: "legacy", Port: 9000, Nets: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}},
			{Service: "open", Port: 9001, Nets: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("10.1.0.0/16")}},
			{Service: "closed", Port: 9002},
		},
		Peers: []Peer{
			{Node: "db", Addr: netip.MustParseAddrPort("10.0.0.5:15443")},
			{Node: "local", Addr: netip.MustParseAddrPort("127.0.0.1:15443")},
			{Node: "db-again", Addr: netip.MustParseAddrPort("10.0.0.5:15443")},
		},
		Resolvers: []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("10.0.0.53")},
		Egress:    true,
		AgentUID:  998,
	}
	s := Build(in)
	var got []string
	for _, a := range s.Inbound {
		got = append(got, "in "+a.String())
	}
	for _, a := range s.Outbound {
		got = append(got, "out "+a.String())
	}
	want := []string{
		"in tcp/15443 any (mesh port)",
		"in tcp/7400 any (control plane (this node is a server))",
		"in tcp/80 any (gateway public port)",
		"in tcp/443 any (gateway public port)",
		"in tcp/9000 10.20.0.0/16 (plaintext port of permissive legacy)",
		"in tcp/9001 any (plaintext port of permissive open)",
		"out tcp/7400 10.0.0.1/32 (control plane 10.0.0.1:7400)",
		"out tcp/7400 10.0.0.2/32 (control plane 10.0.0.2:7400)",
		"out tcp/15443 10.0.0.5/32 uid 998 (mesh of node db)",
		"out udp/53 10.0.0.53/32 (DNS resolvers)",
		"out tcp/53 10.0.0.53/32 (DNS resolvers)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Build:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !s.Egress || s.Validate() != nil {
		t.Errorf("egress %v, validate %v", s.Egress, s.Validate())
	}
	// The same inputs in another order give the same ruleset.
	in.ControlPlane[0], in.ControlPlane[1] = in.ControlPlane[1], in.ControlPlane[0]
	in.Peers[0], in.Peers[2] = in.Peers[2], in.Peers[0]
	if Build(in).Key() != s.Key() {
		t.Error("the key depends on input order")
	}
	if Build(Inputs{}).Mode != ModeOff {
		t.Error("the zero Inputs is not off")
	}
}

func TestParseAllow(t *testing.T) {
	good := map[string]string{
		"22":                "tcp/22 any (operator: 22)",
		"53/udp":            "udp/53 any (operator: 53/udp)",
		"10.0.0.0/8:9100":   "tcp/9100 10.0.0.0/8 (operator: 10.0.0.0/8:9100)",
		"10.0.0.9:123/udp":  "udp/123 10.0.0.9/32 (operator: 10.0.0.9:123/udp)",
		"[fd00::/8]:53/udp": "udp/53 fd00::/8 (operator: [fd00::/8]:53/udp)",
		"0.0.0.0/0:443":     "tcp/443 any (operator: 0.0.0.0/0:443)",
	}
	for in, want := range good {
		a, err := ParseAllow(in, "")
		if err != nil || a.String() != want {
			t.Errorf("ParseAllow(%q) = %q, %v; want %q", in, a.String(), err, want)
		}
	}
	for _, bad := range []string{"", "0", "70000", "22/icmp", "10.0.0.1/8:22", "nonsense:22", "10.0.0.0/8:", "ssh"} {
		if _, err := ParseAllow(bad, ""); err == nil {
			t.Errorf("ParseAllow(%q) accepted", bad)
		}
	}
	if _, err := ParseMode("block"); err == nil {
		t.Error("ParseMode accepted block")
	}
}

// Forwarding defaults to egress, is part of the key and is validated.
func TestBuildForwarding(t *testing.T) {
	s := Build(Inputs{Mode: ModeEnforce})
	if s.Forward != ForwardEgress || s.Validate() != nil {
		t.Errorf("forward %q, validate %v", s.Forward, s.Validate())
	}
	open := s
	open.Forward = ForwardOpen
	if open.Key() == s.Key() {
		t.Error("the key does not tell forwarding open from egress")
	}
	s.Forward = "route"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "forwarding") {
		t.Errorf("validate a bad forwarding: %v", err)
	}
	if _, err := ParseForwarding("route"); err == nil {
		t.Error("ParseForwarding accepted route")
	}
}

// With a DNS filter the resolvers are the agent's uid's alone, and the
// spec carries the filter's port; off (or DNSOpen, port zero) it is as
// before: every uid's.
func TestBuildDNS(t *testing.T) {
	in := Inputs{Mode: ModeEnforce, Resolvers: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, DNSPort: 15353, AgentUID: 998}
	s := Build(in)
	var got []string
	for _, a := range s.Outbound {
		got = append(got, a.String())
	}
	want := []string{
		"udp/53 10.0.0.53/32 uid 998 (DNS resolvers (the agent's, for its DNS filter))",
		"tcp/53 10.0.0.53/32 uid 998 (DNS resolvers (the agent's, for its DNS filter))",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || s.DNSPort != 15353 || s.AgentUID != 998 || s.Validate() != nil {
		t.Errorf("filter: %q, port %d uid %d, validate %v", got, s.DNSPort, s.AgentUID, s.Validate())
	}
	open := in
	open.DNSPort = 0
	o := Build(open)
	if o.DNSPort != 0 || len(o.Outbound[0].UIDs) != 0 || o.Key() == s.Key() {
		t.Errorf("open: %+v", o)
	}
	off := in
	off.Mode = ModeOff
	if Build(off).DNSPort != 0 {
		t.Error("a DNS filter port in mode off")
	}
	bad := s
	bad.AgentUID = -1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "agent uid") {
		t.Errorf("validate a bad agent uid: %v", err)
	}
	rated := in
	rated.DNSRate, rated.DNSBurst = 500, 1000
	if r := Build(rated); r.DNSRate != 500 || r.DNSBurst != 1000 || r.Key() == s.Key() || r.Validate() != nil {
		t.Errorf("rate: %+v, validate %v", r, r.Validate())
	}
	bad = s
	bad.DNSBurst = MaxDNSRate + 1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "burst") {
		t.Errorf("validate a burst past the bound: %v", err)
	}
	for _, c := range []struct {
		in   string
		want DNS
		err  bool
	}{{"", DNSFilter, false}, {"filter", DNSFilter, false}, {"open", DNSOpen, false}, {"off", "", true}, {"Filter", "", true}} {
		got, err := ParseDNS(c.in)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("ParseDNS(%q) = %q, %v", c.in, got, err)
		}
	}
}
