//go:build linux

package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"moat/internal/flow"
	"moat/internal/netlab"
	"moat/internal/testkit"
)

// dockerHost is a node with containers behind a bridge, published as
// Docker publishes them: "fw" on the lab network with "peer" (an attacker
// or an outside service there), and behind fw's bridge "ctr" (a
// registered backend's container, listening on 80, and an unrelated
// service on 90) and "ctr2" (another container). fw's own nat table, of
// the test's, publishes fw:8080 → ctr:80, fw:9090 → ctr:90 (TCP and UDP)
// and fw:8443 (the gateway's public port) → ctr:90 (prerouting; the node's own
// connections to its address at 8080 in output) and masquerades what
// leaves the bridge.
type dockerHost struct {
	fw, peer, ctr, ctr2 *netlab.Host
	// fw:8080, the app port; fw:9090, no port of the node's; fw:8443,
	// a public port.
	published, other, public string
}

var containerNet = netip.MustParsePrefix("198.18.9.0/24")

func newDockerHost(t *testing.T) *dockerHost {
	t.Helper()
	fw, peer := lab(t)
	l := fw.Lab()
	ctr, err := l.AddBehind(fw, "ctr", containerNet)
	if err != nil {
		t.Fatal(err)
	}
	ctr2, err := l.AddBehind(fw, "ctr2", containerNet)
	if err != nil {
		t.Fatal(err)
	}
	listen(t, ctr, "0.0.0.0:80")
	listen(t, ctr, "0.0.0.0:90")
	listen(t, peer, "0.0.0.0:7000")
	nat := fmt.Sprintf(`table ip published {
	chain pre { type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[1]s tcp dport 8080 dnat to %[2]s:80
		ip daddr %[1]s tcp dport 9090 dnat to %[2]s:90
		ip daddr %[1]s tcp dport 8443 dnat to %[2]s:90
		ip daddr %[1]s udp dport 9090 dnat to %[2]s:90
	}
	chain out { type nat hook output priority -100; policy accept;
		ip daddr %[1]s tcp dport 8080 dnat to %[2]s:80
	}
	chain post { type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[3]s oifname != "cbr0" masquerade
	}
}`, fw.Addr, ctr.Addr, containerNet)
	cmd := fw.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nat)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	return &dockerHost{fw: fw, peer: peer, ctr: ctr, ctr2: ctr2,
		published: netip.AddrPortFrom(fw.Addr, 8080).String(), other: netip.AddrPortFrom(fw.Addr, 9090).String(),
		public: netip.AddrPortFrom(fw.Addr, 8443).String()}
}

// inputs is what the agent of d.fw knows: its mesh port, the gateway's
// public port 8443, and the operator's rule that lets the node reach its
// containers' app. The app port 8080 is in no inbound rule, as an app
// port never is unless the operator lists it.
func (d *dockerHost) inputs(mode Mode) Inputs {
	return Inputs{Mode: mode, MeshPort: 9443, PublicPorts: []uint16{8443},
		Outbound: []Allow{{Why: "operator: the containers' app", Proto: TCP, Port: 80, Nets: []netip.Prefix{containerNet}}}}
}

// A registered backend runs in a container and its port is published
// (docker run -p 8080:80): the network reached it through the node's
// destination NAT, which takes the connection down the forward path,
// round the input chain. Now it is refused and recorded as the input
// chain records a direct try at the port; the node's own connection to the
// port (the mesh delivering), a published port the inbound rules admit and
// containers on one bridge keep working.
func TestPublishedAppPort(t *testing.T) {
	d := newDockerHost(t)
	recs := &flow.Memory{}
	m, err := New(Config{NetNS: d.fw.Path(), Node: "fw", Flows: recs})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("before the firewall the network reaches the container through the published port")
	if err := reachable(d.peer, d.published, false); err != nil {
		t.Fatalf("published port before the firewall: %v", err)
	}
	readLog(t, m)

	t.Log("enforce: the published app port is refused to the network")
	if err := m.Apply(Build(d.inputs(ModeEnforce))); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.peer, d.published, false); err == nil {
		t.Error("the network reached a registered backend's container through its published port under enforce")
	}
	wait(t, recs, "the refused published connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.ConnectionInfo.DirectionID == flow.DirectionInbound &&
			r.SrcEndpoint.IP == d.peer.Addr.String() && r.DstEndpoint.IP == d.ctr.Addr.String() && r.DstEndpoint.Port == 80 &&
			r.Unmapped.ReasonCode == flow.ReasonFirewall
	})
	if err := reachable(d.fw, d.published, false); err != nil {
		t.Errorf("the node's own connection to the published app port (the mesh's path): %v", err)
	}
	if err := reachable(d.peer, d.public, false); err != nil {
		t.Errorf("a published public port: %v", err)
	}
	if err := reachable(d.ctr2, netip.AddrPortFrom(d.ctr.Addr, 90).String(), false); err != nil {
		t.Errorf("a container to another on its bridge: %v", err)
	}
	if err := reach(d.ctr2, d.published, false); err == nil {
		t.Error("a container reached the app port through the node's published port, round the mesh")
	}

	t.Log("audit: let through, recorded as would-drop")
	if err := m.Apply(Build(d.inputs(ModeAudit))); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.peer, d.published, false); err != nil {
		t.Errorf("audit mode refused the published port: %v", err)
	}
	wait(t, recs, "the would-drop published connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictAudit && r.ConnectionInfo.DirectionID == flow.DirectionInbound &&
			r.SrcEndpoint.IP == d.peer.Addr.String() && r.DstEndpoint.Port == 80
	})

	t.Log("a node that routes on purpose (forwarding open) still keeps its app ports off the network")
	in := d.inputs(ModeEnforce)
	in.Forward = ForwardOpen
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.peer, d.published, false); err == nil {
		t.Error("forwarding open: the published app port was reached from the network")
	}
	if err := reachable(d.peer, d.public, false); err != nil {
		t.Errorf("forwarding open: a published public port: %v", err)
	}
}

// A container's port that is no port of the node's is published (docker
// run -p 9090:90, the classic hole in a host firewall): the network
// reaches it only where the inbound rules would admit a connection to the
// node's own port 9090, as the input chain does. Not listed, it is
// refused and recorded as an inbound denial, with either forwarding;
// listed (for any source, or for the peer's network only), it is
// reachable from there; an app port listed by the operator is too.
func TestPublishedPortInboundRules(t *testing.T) {
	d := newDockerHost(t)
	recs := &flow.Memory{}
	m, err := New(Config{NetNS: d.fw.Path(), Node: "fw", Flows: recs})
	if err != nil {
		t.Fatal(err)
	}
	udpEcho(t, d.ctr, ":90")
	if err := reachable(d.peer, d.other, false); err != nil {
		t.Fatalf("published port before the firewall: %v", err)
	}
	if err := askUDP(d.peer, d.other, -1); err != nil {
		t.Fatalf("published UDP port before the firewall: %v", err)
	}
	readLog(t, m)

	t.Log("enforce: a published port no inbound rule admits is refused to the network and to containers")
	in := d.inputs(ModeEnforce)
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.peer, d.other, false); err == nil {
		t.Error("the network reached a published port no inbound rule admits")
	}
	wait(t, recs, "the refused published connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.ConnectionInfo.DirectionID == flow.DirectionInbound &&
			r.SrcEndpoint.IP == d.peer.Addr.String() && r.DstEndpoint.IP == d.ctr.Addr.String() && r.DstEndpoint.Port == 90 &&
			r.Unmapped.ReasonCode == flow.ReasonFirewall
	})
	if err := askUDP(d.peer, d.other, -1); err == nil {
		t.Error("the network reached a published UDP port no inbound rule admits")
	}
	if err := reach(d.ctr2, d.other, false); err == nil {
		t.Error("a container reached a published port no inbound rule admits through the node's address")
	}
	if err := reachable(d.peer, d.public, false); err != nil {
		t.Errorf("a public port published to a container: %v", err)
	}

	t.Log("the port in the inbound rules: reachable, from the networks they name only")
	in.Inbound = []Allow{{Why: "operator: 9090", Proto: TCP, Port: 9090}, {Why: "operator: 9090/udp", Proto: UDP, Port: 9090}}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.peer, d.other, false); err != nil {
		t.Errorf("a published port the inbound rules admit: %v", err)
	}
	if err := askUDP(d.peer, d.other, -1); err != nil {
		t.Errorf("a published UDP port the inbound rules admit: %v", err)
	}
	in.Inbound = []Allow{{Why: "operator: 9090 from elsewhere", Proto: TCP, Port: 9090, Nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.peer, d.other, false); err == nil {
		t.Error("the network reached a published port the inbound rules admit from another network only")
	}
	in.Inbound = []Allow{{Why: "operator: the app port", Proto: TCP, Port: 8080, Nets: []netip.Prefix{netip.PrefixFrom(d.peer.Addr, 32)}}}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.peer, d.published, false); err != nil {
		t.Errorf("a published app port the operator lists inbound: %v", err)
	}
	if err := reach(d.peer, d.other, false); err == nil {
		t.Error("the network reached a published port no inbound rule admits")
	}
	in.Inbound = nil

	t.Log("forwarding open: published ports are still held to the inbound rules")
	in.Forward = ForwardOpen
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.peer, d.other, false); err == nil {
		t.Error("forwarding open: the network reached a published port no inbound rule admits")
	}
	if err := reachable(d.peer, d.public, false); err != nil {
		t.Errorf("forwarding open: a published public port: %v", err)
	}

	t.Log("audit: let through, recorded as would-drop")
	in.Mode, in.Forward = ModeAudit, ForwardEgress
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.peer, d.other, false); err != nil {
		t.Errorf("audit mode refused a published port: %v", err)
	}
	wait(t, recs, "the would-drop published connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictAudit && r.ConnectionInfo.DirectionID == flow.DirectionInbound &&
			r.SrcEndpoint.IP == d.peer.Addr.String() && r.DstEndpoint.IP == d.ctr.Addr.String() && r.DstEndpoint.Port == 90
	})
}

// A process in a container leaves the node by the node's routing (and its
// masquerade) while the node's own egress is enforced: now what the node
// routes out of its containers is held to the node's outbound rules,
// unless the node is configured to route freely.
func TestForwardedEgress(t *testing.T) {
	d := newDockerHost(t)
	out := netip.AddrPortFrom(d.peer.Addr, 7000).String()
	recs := &flow.Memory{}
	m, err := New(Config{NetNS: d.fw.Path(), Node: "fw", Flows: recs})
	if err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.ctr, out, false); err != nil {
		t.Fatalf("before the firewall the container must reach the outside: %v", err)
	}
	readLog(t, m)

	t.Log("enforce: the container reaches nothing outside that the node may not")
	in := d.inputs(ModeEnforce)
	in.Resolvers = []netip.Addr{d.peer.Addr}
	udpEcho(t, d.peer, ":53")
	udpEcho(t, d.peer, ":443")
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.ctr, out, false); err == nil {
		t.Error("a container reached an outside address no outbound rule admits")
	}
	if err := reach(d.fw, out, false); err == nil {
		t.Error("the node reached an outside address no outbound rule admits")
	}
	if err := askUDP(d.ctr, netip.AddrPortFrom(d.peer.Addr, 443).String(), -1); err == nil {
		t.Error("a container's UDP left the node")
	}
	if err := askUDP(d.ctr, netip.AddrPortFrom(d.peer.Addr, 53).String(), -1); err != nil {
		t.Errorf("a container's DNS to the node's resolver: %v", err)
	}
	wait(t, recs, "the refused routed connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.ConnectionInfo.DirectionID == flow.DirectionOutbound &&
			r.SrcEndpoint.IP == d.ctr.Addr.String() && r.DstEndpoint.IP == d.peer.Addr.String() && r.DstEndpoint.Port == 7000
	})

	t.Log("an outbound rule admits the container as it admits the node")
	in.Outbound = append(in.Outbound, Allow{Why: "operator: peer", Proto: TCP, Port: 7000, Nets: []netip.Prefix{netip.PrefixFrom(d.peer.Addr, 32)}})
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.ctr, out, false); err != nil {
		t.Errorf("a container to an address an outbound rule admits: %v", err)
	}
	in.Outbound = in.Outbound[:len(in.Outbound)-1]

	t.Log("audit: let through, recorded")
	in.Mode = ModeAudit
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.ctr, out, false); err != nil {
		t.Errorf("audit mode refused a container's connection: %v", err)
	}
	wait(t, recs, "the would-drop routed connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictAudit && r.ConnectionInfo.DirectionID == flow.DirectionOutbound &&
			r.SrcEndpoint.IP == d.ctr.Addr.String() && r.DstEndpoint.Port == 7000
	})

	t.Log("forwarding open: the node routes its containers freely, its own egress stays enforced")
	in.Mode, in.Forward = ModeEnforce, ForwardOpen
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.ctr, out, false); err != nil {
		t.Errorf("forwarding open: a container's connection out: %v", err)
	}
	if err := reach(d.fw, out, false); err == nil {
		t.Error("forwarding open: the node's own egress is no longer enforced")
	}
}

// Another program that flushes or edits the forward chain (or the
// prerouting chain that notes what it refuses) must not leave
// published ports open: Guard applies the table again.
func TestGuardRestoresForward(t *testing.T) {
	d := newDockerHost(t)
	m, err := New(Config{NetNS: d.fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(d.inputs(ModeEnforce))); err != nil {
		t.Fatal(err)
	}
	whole := rules(t, d.fw)
	if !strings.Contains(whole, "forward:\n") {
		t.Fatalf("no forward chain in\n%s", whole)
	}
	ctx, cancel := context.WithCancel(context.Background())
	guardErr := make(chan error, 1)
	go func() { guardErr <- m.Guard(ctx) }()
	for _, tamper := range []string{
		"flush chain inet moat forward",
		"delete chain inet moat forward",
		"add rule inet moat forward accept",
		"insert rule inet moat forward accept",
		"flush chain inet moat prerouting",
	} {
		script := tamper
		if strings.HasPrefix(tamper, "delete chain") {
			script = "flush chain inet moat forward; " + tamper
		}
		if out, err := d.fw.Command(context.Background(), "nft", script).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", script, err, out)
		}
		testkit.WaitFor(t, "the table restored after nft "+script, func() bool { return rules(t, d.fw) == whole })
		if err := reach(d.peer, d.published, false); err == nil {
			t.Errorf("after nft %s the published app port is reachable from the network", script)
		}
		if err := reach(d.peer, d.other, false); err == nil {
			t.Errorf("after nft %s a published port no inbound rule admits is reachable from the network", script)
		}
	}
	t.Log("the prerouting chain made again after the NAT, its rules the same: the notes would see translated addresses")
	listing, err := d.fw.Command(context.Background(), "nft", "list", "chain", "inet", Table, chainPre).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list: %v: %s", err, listing)
	}
	late := strings.Replace(string(listing), "priority mangle", "priority filter", 1)
	if late == string(listing) {
		t.Fatalf("no mangle priority in\n%s", listing)
	}
	cmd := d.fw.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader("flush chain inet moat prerouting\ndelete chain inet moat prerouting\n" + late)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	testkit.WaitFor(t, "the prerouting chain back before the NAT", func() bool {
		out, err := d.fw.Command(context.Background(), "nft", "list", "chain", "inet", Table, chainPre).CombinedOutput()
		return err == nil && strings.Contains(string(out), "priority mangle")
	})
	if err := reach(d.peer, d.published, false); err == nil {
		t.Error("after the prerouting chain was moved the published app port is reachable from the network")
	}
	cancel()
	if err := <-guardErr; err != nil {
		t.Errorf("Guard: %v", err)
	}
}

// The same over IPv6: the table is of family inet, and a port published
// by ip6 destination NAT is held to the inbound rules as an IPv4 one is.
func TestPublishedAppPortIPv6(t *testing.T) {
	d := newDockerHost(t)
	for _, step := range []struct {
		h    *netlab.Host
		args []string
	}{
		{d.fw, []string{"ip", "-6", "addr", "add", "fd00:7::1/64", "dev", "eth0", "nodad"}},
		{d.peer, []string{"ip", "-6", "addr", "add", "fd00:7::2/64", "dev", "eth0", "nodad"}},
		{d.fw, []string{"ip", "-6", "addr", "add", "fd00:9::1/64", "dev", "cbr0", "nodad"}},
		{d.ctr, []string{"ip", "-6", "addr", "add", "fd00:9::2/64", "dev", "eth0", "nodad"}},
		{d.ctr, []string{"ip", "-6", "route", "add", "default", "via", "fd00:9::1"}},
		{d.fw, []string{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"}},
		{d.fw, []string{"nft", "add table ip6 published6; add chain ip6 published6 pre { type nat hook prerouting priority dstnat; policy accept; }; add rule ip6 published6 pre ip6 daddr fd00:7::1 tcp dport { 8080, 9090 } dnat to [fd00:9::2]:81"}},
	} {
		if out, err := step.h.Command(context.Background(), step.args[0], step.args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", step.args, err, out)
		}
	}
	listen(t, d.ctr, "[::]:81") // the container's app over IPv6
	published := "[fd00:7::1]:8080"
	// Neighbour discovery speaks from link-local addresses, which are
	// tentative until duplicate address detection is done.
	testkit.WaitFor(t, "the link-local addresses usable", func() bool {
		for _, h := range []*netlab.Host{d.fw, d.peer, d.ctr} {
			out, err := h.Command(context.Background(), "ip", "-6", "addr", "show", "tentative").CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				return false
			}
		}
		return true
	})
	if err := reachable(d.peer, published, false); err != nil {
		t.Fatalf("published port over IPv6 before the firewall: %v", err)
	}
	m, err := New(Config{NetNS: d.fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	in := d.inputs(ModeEnforce)
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reach(d.peer, published, false); err == nil {
		t.Error("the network reached a registered backend's container through its port published over IPv6")
	}
	if err := reach(d.peer, "[fd00:7::1]:9090", false); err == nil {
		t.Error("the network reached a port published over IPv6 that no inbound rule admits")
	}
	in.Inbound = []Allow{{Why: "operator: 9090 from the peer", Proto: TCP, Port: 9090, Nets: []netip.Prefix{netip.MustParsePrefix("fd00:7::2/128")}}}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(d.peer, "[fd00:7::1]:9090", false); err != nil {
		t.Errorf("a port published over IPv6 that an inbound rule admits: %v", err)
	}
	if err := reach(d.peer, published, false); err == nil {
		t.Error("the network reached a port published over IPv6 that no inbound rule admits")
	}
}

// readLog reads m's would-drop log into its flow records until the test
// ends.
func readLog(t *testing.T, m *Manager) {
	t.Helper()
	lg, err := m.OpenLog()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- lg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// A peer's mesh address is its node's to set: a node whose root is an
// attacker's named an address of its choosing (a host of the private
// network, a server of its own on the internet), and every node's
// firewall admitted every local uid and every container to that address
// and port, round the egress rules. Only the agent dials peers' mesh
// ports.
func TestPeerMeshPortIsTheAgents(t *testing.T) {
	d := newDockerHost(t)
	m, err := New(Config{NetNS: d.fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, AgentUID: 999,
		Peers: []Peer{{Node: "evil", Addr: netip.AddrPortFrom(d.peer.Addr, 7000)}}})); err != nil {
		t.Fatal(err)
	}
	target := netip.AddrPortFrom(d.peer.Addr, 7000).String()
	if err := reachAs(d.fw, target, 4321); err == nil {
		t.Errorf("uid 4321 reached %s, a peer's mesh address", target)
	}
	if err := reach(d.ctr, target, false); err == nil {
		t.Errorf("a container reached %s, a peer's mesh address", target)
	}
	if err := reachAs(d.fw, target, 999); err != nil {
		t.Errorf("the agent's uid could not reach a peer's mesh port: %v", err)
	}
}
