//go:build linux

package firewall

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"moat/internal/flow"
	"moat/internal/netlab"
	"moat/internal/testkit"
)

// answering serves UDP on addr in h, answering every datagram with word.
func answering(t *testing.T, h *netlab.Host, addr, word string) {
	t.Helper()
	var pc net.PacketConn
	if err := h.Do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(word), from)
		}
	}()
}

// answeringEvery serves UDP on port of every address of h (IPv4 and
// IPv6), as the DNS filter does, answering every datagram with word from
// the address it was sent to (a local user's DNS redirected to 127.0.0.1
// comes from another of the node's addresses, which routing would answer
// from).
func answeringEvery(t *testing.T, h *netlab.Host, port uint16, word string) {
	t.Helper()
	for _, network := range []string{"udp4", "udp6"} {
		var pc net.PacketConn
		if err := h.Do(func() (err error) { pc, err = net.ListenPacket(network, ":"+strconv.Itoa(int(port))); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		var read func([]byte) (net.Addr, net.IP, error)
		var write func(net.Addr, net.IP)
		if network == "udp4" {
			p := ipv4.NewPacketConn(pc)
			if err := p.SetControlMessage(ipv4.FlagDst, true); err != nil {
				t.Fatal(err)
			}
			read = func(b []byte) (net.Addr, net.IP, error) {
				_, cm, from, err := p.ReadFrom(b)
				if cm == nil {
					return from, nil, err
				}
				return from, cm.Dst, err
			}
			write = func(to net.Addr, src net.IP) { p.WriteTo([]byte(word), &ipv4.ControlMessage{Src: src}, to) }
		} else {
			p := ipv6.NewPacketConn(pc)
			if err := p.SetControlMessage(ipv6.FlagDst, true); err != nil {
				t.Fatal(err)
			}
			read = func(b []byte) (net.Addr, net.IP, error) {
				_, cm, from, err := p.ReadFrom(b)
				if cm == nil {
					return from, nil, err
				}
				return from, cm.Dst, err
			}
			write = func(to net.Addr, src net.IP) { p.WriteTo([]byte(word), &ipv6.ControlMessage{Src: src}, to) }
		}
		go func() {
			b := make([]byte, 512)
			for {
				from, dst, err := read(b)
				if err != nil {
					return
				}
				write(from, dst)
			}
		}()
	}
}

// whoAnswers sends a datagram from a socket of uid (-1: the test's) in h
// to addr and returns the answer, asking again each second as a DNS
// client does, for up to ten seconds ("" when none came).
func whoAnswers(h *netlab.Host, addr string, uid int) string { return ask(h, addr, uid, 10) }

// nobodyAnswers is whoAnswers for a datagram no one should answer: two
// tries, a second each, and the answer if one came.
func nobodyAnswers(h *netlab.Host, addr string, uid int) string { return ask(h, addr, uid, 2) }

func ask(h *netlab.Host, addr string, uid int, tries int) string {
	var got string
	h.Do(func() error {
		if uid >= 0 {
			unix.Setfsuid(uid)
			defer unix.Setfsuid(0)
		}
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, 16)
		for i := 0; i < tries; i++ {
			if _, err := c.Write([]byte("q")); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(b)
			if err == nil {
				got = string(b[:n])
				return nil
			}
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				return err
			}
		}
		return nil
	})
	return got
}

// With a DNS filter, a local user's DNS to the resolver (or any address)
// goes to the filter's loopback port, and the agent's uid reaches the
// resolver itself. Another program that flushes, deletes or edits the nat
// chain that redirects it must not give local users the resolver back:
// Guard applies the table again.
func TestGuardRestoresDNS(t *testing.T) {
	fw, peer := lab(t)
	answering(t, peer, ":53", "resolver")
	answering(t, fw, "127.0.0.1:15353", "filter")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	resolver := netip.AddrPortFrom(peer.Addr, 53).String()
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, Resolvers: []netip.Addr{peer.Addr}, DNSPort: 15353, AgentUID: 0})); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if got := whoAnswers(fw, resolver, 4321); got != "filter" {
			t.Errorf("%s: a local user's DNS to the resolver was answered by %q, want the filter", when, got)
		}
		if got := whoAnswers(fw, "198.18.7.250:53", 4321); got != "filter" {
			t.Errorf("%s: a local user's DNS to another address was answered by %q, want the filter", when, got)
		}
		if got := whoAnswers(fw, resolver, 0); got != "resolver" {
			t.Errorf("%s: the agent's DNS was answered by %q, want the resolver", when, got)
		}
	}
	check("applied")
	whole := rules(t, fw)
	if !strings.Contains(whole, "dns:\n") {
		t.Fatalf("no dns chain in\n%s", whole)
	}
	ctx, cancel := context.WithCancel(context.Background())
	guardErr := make(chan error, 1)
	go func() { guardErr <- m.Guard(ctx) }()
	for _, tamper := range []string{
		"flush chain inet moat dns",
		"flush chain inet moat dns; delete chain inet moat dns",
		"insert rule inet moat dns accept",
		"flush ruleset",
	} {
		if out, err := fw.Command(context.Background(), "nft", tamper).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", tamper, err, out)
		}
		testkit.WaitFor(t, "the table restored after nft "+tamper, func() bool { return rules(t, fw) == whole })
		check("after nft " + tamper)
	}
	cancel()
	if err := <-guardErr; err != nil {
		t.Errorf("Guard: %v", err)
	}
}

// What the node routes for its containers has no local uid: with a DNS
// filter its DNS was refused (the resolvers are the agent's uid's alone),
// or, where an operator's outbound rule admitted the resolvers, let
// through unfiltered. With forwarding egress a container's DNS, UDP and
// TCP, to the resolvers or to any server, is taken to the filter as a
// local user's is, the operator's rule notwithstanding. The filter
// listens on every address, yet a peer on the network reaches it neither
// on its port nor through the node's own address on 53, in enforce mode
// or audit. With forwarding open the node routes its containers' DNS
// unfiltered.
func TestForwardedDNSWithFilter(t *testing.T) {
	d := newDockerHost(t)
	recs := &flow.Memory{}
	m, err := New(Config{NetNS: d.fw.Path(), Node: "fw", Flows: recs})
	if err != nil {
		t.Fatal(err)
	}
	readLog(t, m)
	answering(t, d.peer, ":53", "resolver")
	answeringEvery(t, d.fw, 15353, "filter")
	listen(t, d.fw, "0.0.0.0:15353") // the filter's TCP; the resolver has none
	resolver := netip.AddrPortFrom(d.peer.Addr, 53).String()
	own := netip.AddrPortFrom(d.fw.Addr, 15353).String()
	in := d.inputs(ModeEnforce)
	in.Resolvers, in.DNSPort = []netip.Addr{d.peer.Addr}, 15353
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	routed := func(when string) {
		t.Helper()
		if got := whoAnswers(d.ctr, resolver, -1); got != "filter" {
			t.Errorf("%s: a container's DNS to the resolver was answered by %q, want the filter", when, got)
		}
		if got := whoAnswers(d.ctr, "198.18.7.250:53", -1); got != "filter" {
			t.Errorf("%s: a container's DNS to another server was answered by %q, want the filter", when, got)
		}
		if err := reachable(d.ctr, resolver, false); err != nil {
			t.Errorf("%s: a container's DNS over TCP did not reach the filter: %v", when, err)
		}
	}
	closed := func(when string) {
		t.Helper()
		if got := nobodyAnswers(d.peer, own, -1); got != "" {
			t.Errorf("%s: a peer on the network asked the filter's port directly and %q answered", when, got)
		}
		if err := reach(d.peer, own, false); err == nil {
			t.Errorf("%s: a peer on the network reached the filter's TCP port directly", when)
		}
		if got := nobodyAnswers(d.peer, netip.AddrPortFrom(d.fw.Addr, 53).String(), -1); got != "" {
			t.Errorf("%s: a peer's DNS to the node's own address was answered by %q", when, got)
		}
	}
	routed("enforce")
	closed("enforce")
	wait(t, recs, "the peer's try at the filter's port", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.ConnectionInfo.DirectionID == flow.DirectionInbound &&
			r.SrcEndpoint.IP == d.peer.Addr.String() && r.DstEndpoint.Port == 15353
	})

	t.Log("an operator's outbound rule for the resolvers no longer lets the containers' DNS out unfiltered")
	in.Outbound = append(in.Outbound, Allow{Why: "operator: resolver", Proto: UDP, Port: 53, Nets: []netip.Prefix{netip.PrefixFrom(d.peer.Addr, 32)}})
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	routed("with an outbound rule")
	if got := whoAnswers(d.fw, resolver, 4321); got != "filter" {
		t.Errorf("with an outbound rule, a local user's DNS was answered by %q, want the filter", got)
	}

	t.Log("audit: the filter's port stays closed to the network")
	in.Mode = ModeAudit
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	routed("audit")
	closed("audit")

	t.Log("forwarding open: the node routes its containers' DNS unfiltered")
	in.Mode, in.Forward = ModeEnforce, ForwardOpen
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if got := whoAnswers(d.ctr, resolver, -1); got != "resolver" {
		t.Errorf("forwarding open: a container's DNS was answered by %q, want the resolver", got)
	}
	closed("forwarding open")
}

// Another program that flushes, deletes or edits the nat chain that takes
// routed DNS to the filter must not give the containers the resolvers
// back: Guard applies the table again.
func TestGuardRestoresRoutedDNS(t *testing.T) {
	d := newDockerHost(t)
	answering(t, d.peer, ":53", "resolver")
	answeringEvery(t, d.fw, 15353, "filter")
	m, err := New(Config{NetNS: d.fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	resolver := netip.AddrPortFrom(d.peer.Addr, 53).String()
	in := d.inputs(ModeEnforce)
	in.Resolvers, in.DNSPort = []netip.Addr{d.peer.Addr}, 15353
	in.Outbound = append(in.Outbound, Allow{Why: "operator: resolver", Proto: UDP, Port: 53, Nets: []netip.Prefix{netip.PrefixFrom(d.peer.Addr, 32)}})
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	whole := rules(t, d.fw)
	if !strings.Contains(whole, chainDNSFwd+":\n") {
		t.Fatalf("no %s chain in\n%s", chainDNSFwd, whole)
	}
	if got := whoAnswers(d.ctr, resolver, -1); got != "filter" {
		t.Fatalf("a container's DNS was answered by %q, want the filter", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	guardErr := make(chan error, 1)
	go func() { guardErr <- m.Guard(ctx) }()
	for _, tamper := range []string{
		"flush chain inet moat " + chainDNSFwd,
		"flush chain inet moat " + chainDNSFwd + "; delete chain inet moat " + chainDNSFwd,
		"insert rule inet moat " + chainDNSFwd + " accept",
		"flush ruleset",
	} {
		if out, err := d.fw.Command(context.Background(), "nft", tamper).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", tamper, err, out)
		}
		testkit.WaitFor(t, "the table restored after nft "+tamper, func() bool { return rules(t, d.fw) == whole })
		if got := whoAnswers(d.ctr, resolver, -1); got != "filter" {
			t.Errorf("after nft %s a container's DNS was answered by %q, want the filter", tamper, got)
		}
	}
	cancel()
	if err := <-guardErr; err != nil {
		t.Errorf("Guard: %v", err)
	}
}

// Over IPv6 the nat chain takes a local user's DNS to the filter on ::1,
// and the output chain admits it there; the agent's uid reaches the
// resolver.
func TestDNSRedirectIPv6(t *testing.T) {
	fw, peer := lab(t)
	for _, step := range []struct {
		h    *netlab.Host
		args []string
	}{
		{fw, []string{"ip", "-6", "addr", "add", "fd00:7::1/64", "dev", "eth0", "nodad"}},
		{peer, []string{"ip", "-6", "addr", "add", "fd00:7::2/64", "dev", "eth0", "nodad"}},
	} {
		if out, err := step.h.Command(context.Background(), step.args[0], step.args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", step.args, err, out)
		}
	}
	testkit.WaitFor(t, "the link-local addresses usable", func() bool {
		for _, h := range []*netlab.Host{fw, peer} {
			out, err := h.Command(context.Background(), "ip", "-6", "addr", "show", "tentative").CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				return false
			}
		}
		return true
	})
	answering(t, peer, "[fd00:7::2]:53", "resolver")
	answering(t, fw, "[::1]:15353", "filter")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, Resolvers: []netip.Addr{netip.MustParseAddr("fd00:7::2")}, DNSPort: 15353, AgentUID: 0})); err != nil {
		t.Fatal(err)
	}
	if got := whoAnswers(fw, "[fd00:7::2]:53", 4321); got != "filter" {
		t.Errorf("a local user's IPv6 DNS was answered by %q, want the filter", got)
	}
	if got := whoAnswers(fw, "[fd00:7::2]:53", 0); got != "resolver" {
		t.Errorf("the agent's IPv6 DNS was answered by %q, want the resolver", got)
	}
}

// Over IPv6 a container's DNS, routed by the node, is taken to the filter
// on the bridge's address as over IPv4, and a peer on the network does
// not reach the filter's port on the node's IPv6 address.
func TestForwardedDNSWithFilterIPv6(t *testing.T) {
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
	} {
		if out, err := step.h.Command(context.Background(), step.args[0], step.args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", step.args, err, out)
		}
	}
	testkit.WaitFor(t, "the link-local addresses usable", func() bool {
		for _, h := range []*netlab.Host{d.fw, d.peer, d.ctr} {
			out, err := h.Command(context.Background(), "ip", "-6", "addr", "show", "tentative").CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				return false
			}
		}
		return true
	})
	answering(t, d.peer, "[fd00:7::2]:53", "resolver")
	answeringEvery(t, d.fw, 15353, "filter")
	m, err := New(Config{NetNS: d.fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	in := d.inputs(ModeEnforce)
	in.Resolvers, in.DNSPort = []netip.Addr{netip.MustParseAddr("fd00:7::2")}, 15353
	in.Outbound = append(in.Outbound, Allow{Why: "operator: resolver", Proto: UDP, Port: 53, Nets: []netip.Prefix{netip.MustParsePrefix("fd00:7::2/128")}})
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if got := whoAnswers(d.ctr, "[fd00:7::2]:53", -1); got != "filter" {
		t.Errorf("a container's IPv6 DNS was answered by %q, want the filter", got)
	}
	if got := nobodyAnswers(d.peer, "[fd00:7::1]:15353", -1); got != "" {
		t.Errorf("a peer asked the filter's port on the node's IPv6 address and %q answered", got)
	}
	if got := whoAnswers(d.fw, "[fd00:7::2]:53", 4321); got != "filter" {
		t.Errorf("a local user's IPv6 DNS was answered by %q, want the filter", got)
	}
}

// The nat chain of routed DNS and the filter port's rules are in the
// table only with a DNS filter, and the chain only with forwarding
// egress: with forwarding open the node routes DNS unfiltered.
func TestRoutedDNSChains(t *testing.T) {
	for _, c := range []struct {
		port          uint16
		fwd           Forwarding
		routed, guard bool
	}{
		{15353, ForwardEgress, true, true},
		{15353, "", true, true},
		{15353, ForwardOpen, false, true},
		{0, ForwardEgress, false, false},
	} {
		s := Build(Inputs{Mode: ModeAudit, DNSPort: c.port, Forward: c.fwd})
		routed, guard := false, false
		for _, ch := range chains(s, named()) {
			if ch.name == chainDNSFwd {
				routed = ch.nat && *ch.hook == *nftables.ChainHookPrerouting && len(ch.rules) == 2
			}
			if ch.name == chainInput {
				for _, r := range ch.rules {
					guard = guard || strings.HasPrefix(r.comment, "the DNS filter's port")
				}
			}
		}
		if routed != c.routed || guard != c.guard {
			t.Errorf("DNS port %d, forwarding %q: routed DNS chain %v, filter port guarded %v; want %v, %v", c.port, c.fwd, routed, guard, c.routed, c.guard)
		}
	}
}

// A local user flooding the DNS filter faster than it reads filled its
// socket's receive buffer, and the other users' queries were dropped
// with the flood. Past its bound (here 10 a second after a burst of 20)
// a uid's datagrams to the filter are dropped before they reach it, and
// counted: the filter's socket, which reads nothing while one uid sends
// 20,000 datagrams to the resolver, holds what that uid's bound let
// through and has room for another uid's query.
func TestDNSRatePerUID(t *testing.T) {
	fw, peer := lab(t)
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, Resolvers: []netip.Addr{peer.Addr}, DNSPort: 15353, AgentUID: 0, DNSRate: 10, DNSBurst: 20})); err != nil {
		t.Fatal(err)
	}
	var filter *net.UDPConn
	if err := fw.Do(func() error {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 15353})
		if err != nil {
			return err
		}
		filter = c
		// About a megabyte (the kernel doubles it): room for some
		// thousands of datagrams, not for the flood.
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20) }); err != nil {
			return err
		}
		return serr
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filter.Close() })

	const flood = 20000
	resolver := netip.AddrPortFrom(peer.Addr, 53).String()
	var refused int // sends the kernel refused (EPERM: dropped in the output chain)
	send := func(uid int, n int, what string) {
		t.Helper()
		if err := fw.Do(func() error {
			unix.Setfsuid(uid)
			defer unix.Setfsuid(0)
			c, err := net.Dial("udp", resolver)
			if err != nil {
				return err
			}
			defer c.Close()
			for i := 0; i < n; i++ {
				if _, err := c.Write([]byte(what)); err != nil {
					if !errors.Is(err, syscall.EPERM) {
						return err
					}
					refused++
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	send(4321, flood, "f")
	send(4322, 1, "q")
	if refused == 0 {
		t.Fatalf("all %d datagrams of the flooding uid were sent", flood)
	}

	// The socket holds what passed, the other uid's query last.
	passed := 0
	b := make([]byte, 16)
	for {
		filter.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		n, _, err := filter.ReadFrom(b)
		if err != nil {
			t.Fatalf("the other uid's query never reached the filter (%d of the flood's did, %d refused): %v", passed, refused, err)
		}
		if string(b[:n]) == "q" {
			break
		}
		passed++
	}
	t.Logf("of %d datagrams %d reached the filter, %d were dropped", flood, passed, refused)
	if passed+refused != flood {
		t.Errorf("of %d datagrams %d reached the filter and %d were refused", flood, passed, refused)
	}
	dropped := uint64(0)
	st, err := Show(fw.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range st.Chains {
		for _, r := range ch.Rules {
			if ch.Name == chainOutput && strings.HasPrefix(r.Comment, "DNS to the DNS filter past") && strings.Contains(r.Comment, "udp") {
				dropped += r.Packets
			}
		}
	}
	if dropped != uint64(refused) {
		t.Errorf("the rate rule counted %d drops; %d sends were refused", dropped, refused)
	}
}
