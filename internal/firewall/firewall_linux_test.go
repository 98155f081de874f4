//go:build linux

package firewall

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"moat/internal/flow"
	"moat/internal/flow/flowtest"
	"moat/internal/netlab"
	"moat/internal/testkit"
)

// lab makes two hosts, "fw" (whose firewall is tested) and "peer", on a
// network of their own.
func lab(t *testing.T) (fw, peer *netlab.Host) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nftables need root (CI runs as root)")
	}
	l, err := netlab.New(fmt.Sprintf("fwt%d-%d-", os.Getpid()%100000, time.Now().UnixNano()%1000), netip.MustParsePrefix("198.18.7.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	if fw, err = l.AddHost("fw"); err != nil {
		t.Fatal(err)
	}
	if peer, err = l.AddHost("peer"); err != nil {
		t.Fatal(err)
	}
	return fw, peer
}

// listen serves TCP on addr inside h, answering "hi" to every connection.
func listen(t *testing.T, h *netlab.Host, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	return ln
}

// reach dials addr from h (marked with the egress mark when marked) and
// reads the greeting; the dial is bounded by one second, so a dropped SYN
// fails in bounded time (the kernel answers a SYN it lets through at once).
// The greeting is written by a goroutine of this process, which a loaded
// host may schedule late: it is waited for up to testkit.WaitLimit.
func reach(h *netlab.Host, addr string, marked bool) error {
	return dialRead(h, addr, marked, time.Second)
}

// reachable is reach for a connection that must be made: its dial is
// bounded by testkit.WaitLimit, not by the second a dropped one is given
// (on a loaded machine a dial that is let through may take longer).
func reachable(h *netlab.Host, addr string, marked bool) error {
	return dialRead(h, addr, marked, testkit.WaitLimit)
}

func dialRead(h *netlab.Host, addr string, marked bool, timeout time.Duration) error {
	return h.Do(func() error {
		d := net.Dialer{Timeout: timeout}
		if marked {
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, Mark) }); err != nil {
					return err
				}
				return serr
			}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		b := make([]byte, 2)
		_, err = c.Read(b)
		return err
	})
}

// foreign is every table but "inet moat" of a namespace ("": the test's).
func foreign(t *testing.T, ns string) string {
	t.Helper()
	out, err := netlab.RulesetExcept(ns, "inet "+Table)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wait is flowtest.Wait.
func wait(t *testing.T, recs *flow.Memory, what string, match func(flow.Record) bool) flow.Record {
	t.Helper()
	return flowtest.Wait(t, recs, what, match)
}

func TestEnforceAuditAndPins(t *testing.T) {
	fw, peer := lab(t)
	// Another table on the node, which moat must never touch.
	if out, err := fw.Command(context.Background(), "nft", "add table ip other; add chain ip other c { type filter hook input priority 10; policy accept; }; add rule ip other c tcp dport 1234 accept").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	before, rootBefore := foreign(t, fw.NS), foreign(t, "")

	listen(t, fw, "0.0.0.0:8080") // a backend bound to every address
	listen(t, fw, "0.0.0.0:9443") // the mesh port
	listen(t, peer, "0.0.0.0:7000")
	backend := netip.AddrPortFrom(fw.Addr, 8080).String()
	mesh := netip.AddrPortFrom(fw.Addr, 9443).String()
	out := netip.AddrPortFrom(peer.Addr, 7000).String()

	recs := &flow.Memory{}
	m, err := New(Config{NetNS: fw.Path(), Node: "fw", Flows: recs, Owner: func(uid int) string {
		if uid == 0 {
			return "api"
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reachable(peer, backend, false); err != nil {
		t.Fatalf("before the firewall, the backend must be reachable: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lg, err := m.OpenLog()
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)

	t.Log("enforce: only the mesh port is open inbound, nothing outbound")
	in := Inputs{Mode: ModeEnforce, MeshPort: 9443, Egress: true}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(peer, mesh, false); err != nil {
		t.Errorf("mesh port: %v", err)
	}
	if err := reach(peer, backend, false); err == nil {
		t.Error("a backend bound to 0.0.0.0 is reachable from another host under enforce")
	}
	if err := reach(fw, out, false); err == nil {
		t.Error("outbound to an address no rule admits succeeded under enforce")
	}
	t.Log("what the table logged before the log was read is recorded: the bound group held it")
	go func() { runErr <- lg.Run(ctx) }()
	wait(t, recs, "the dropped inbound connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.DstEndpoint.Port == 8080 && r.ConnectionInfo.DirectionID == flow.DirectionInbound &&
			r.Unmapped.ReasonCode == flow.ReasonFirewall && r.SrcEndpoint.IP == peer.Addr.String()
	})
	rec := wait(t, recs, "the dropped outbound connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.DstEndpoint.Port == 7000 && r.ConnectionInfo.DirectionID == flow.DirectionOutbound
	})
	if rec.SrcEndpoint.SvcName != "api" {
		t.Errorf("outbound drop not attributed to the local uid's service: %+v", rec.SrcEndpoint)
	}

	t.Log("pins: the egress path's marked sockets reach a pinned address, nothing else does")
	if err := reach(fw, out, true); err == nil {
		t.Error("a marked socket reached an address that is not pinned")
	}
	if err := m.Pin([]netip.Addr{peer.Addr}, 7000, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := reachable(fw, out, true); err != nil {
		t.Errorf("marked socket to a pinned address: %v", err)
	}
	if err := reach(fw, out, false); err == nil {
		t.Error("an unmarked socket used a pin")
	}
	t.Log("a new ruleset keeps the pins")
	in.Inbound = []Allow{{Why: "operator: ssh", Proto: TCP, Port: 22}}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(fw, out, true); err != nil {
		t.Errorf("pin lost across an apply: %v", err)
	}
	st, err := Show(fw.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Installed || st.Mode != ModeEnforce || len(st.Pins) != 1 || st.Pins[0].Addr.String() != out {
		t.Errorf("show: %+v", st)
	}
	var b strings.Builder
	st.Format(&b)
	for _, want := range []string{"mode enforce", "in: tcp/9443 any (mesh port)", "in: tcp/22 any (operator: ssh)", "everything else: drop", out} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, b.String())
		}
	}

	t.Log("outbound admitted by an operator rule")
	in.Outbound = []Allow{{Why: "operator", Proto: TCP, Port: 7000, Nets: []netip.Prefix{netip.PrefixFrom(peer.Addr, 32)}}}
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(fw, out, false); err != nil {
		t.Errorf("outbound admitted by a rule: %v", err)
	}

	t.Log("audit: nothing dropped, what would be is recorded")
	in.Mode = ModeAudit
	if err := m.Apply(Build(in)); err != nil {
		t.Fatal(err)
	}
	if err := reachable(peer, backend, false); err != nil {
		t.Errorf("audit mode dropped a connection: %v", err)
	}
	wait(t, recs, "the would-drop connection", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictAudit && r.DstEndpoint.Port == 8080 && r.DispositionID == flow.DispositionLogged
	})

	t.Log("off: the table is gone")
	if err := m.Apply(Spec{Mode: ModeOff}); err != nil {
		t.Fatal(err)
	}
	if st, err := Show(fw.Path()); err != nil || st.Installed {
		t.Errorf("after off: %+v, %v", st, err)
	}
	if err := reachable(peer, backend, false); err != nil {
		t.Errorf("off: %v", err)
	}
	if after := foreign(t, fw.NS); after != before {
		t.Errorf("the rest of the node's ruleset changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if after := foreign(t, ""); after != rootBefore {
		t.Errorf("the test's own namespace ruleset changed:\nbefore:\n%s\nafter:\n%s", rootBefore, after)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRestartKeepsRules(t *testing.T) {
	fw, peer := lab(t)
	listen(t, fw, "0.0.0.0:8080")
	backend := netip.AddrPortFrom(fw.Addr, 8080).String()
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443})); err != nil {
		t.Fatal(err)
	}
	// A new manager (a restarted agent) finds the table and leaves it be
	// until it applies; applying again replaces it in one transaction.
	m2, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m2.Installed(); err != nil || !ok {
		t.Fatalf("installed: %v %v", ok, err)
	}
	if err := reach(peer, backend, false); err == nil {
		t.Error("backend reachable while the previous rules stand")
	}
	if err := m2.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443})); err != nil {
		t.Fatal(err)
	}
	if err := reach(peer, backend, false); err == nil {
		t.Error("backend reachable after re-apply")
	}
}

// Another program that flushes the ruleset (nft flush ruleset, a firewall
// service's reload) or deletes moat's table or rules must not leave the
// node open: the guard applies the last Spec again.
func TestGuardRestoresTable(t *testing.T) {
	fw, peer := lab(t)
	listen(t, fw, "0.0.0.0:8080")
	backend := netip.AddrPortFrom(fw.Addr, 8080).String()
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443})); err != nil {
		t.Fatal(err)
	}
	whole := rules(t, fw)
	ctx, cancel := context.WithCancel(context.Background())
	guardErr := make(chan error, 1)
	go func() { guardErr <- m.Guard(ctx) }()
	for _, tamper := range [][]string{
		{"flush", "ruleset"},
		{"delete", "table", "inet", Table},
		{"flush", "chain", "inet", Table, chainInput},
		{"delete", "rule", "inet", Table, chainInput, "handle", "last"},
	} {
		args := tamper
		if args[1] == "rule" {
			// The final drop's handle, read from the kernel.
			out, err := fw.Command(context.Background(), "nft", "-a", "list", "chain", "inet", Table, chainInput).CombinedOutput()
			if err != nil {
				t.Fatalf("nft list: %v: %s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			var handle string
			for _, l := range lines {
				if strings.Contains(l, "everything else: drop") {
					f := strings.Fields(l)
					handle = f[len(f)-1]
				}
			}
			if handle == "" {
				t.Fatalf("no final rule in\n%s", out)
			}
			args = append(args[:len(args)-1:len(args)-1], handle)
		}
		if out, err := fw.Command(context.Background(), "nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v: %v: %s", args, err, out)
		}
		// The guard answers the kernel's own notice of the change; the
		// test waits for the table to be whole again, then attacks.
		testkit.WaitFor(t, fmt.Sprintf("the table restored after nft %v", args), func() bool {
			return rules(t, fw) == whole
		})
		if err := reach(peer, backend, false); err == nil {
			t.Errorf("after nft %v the backend is reachable from the network", args)
		}
	}
	cancel()
	if err := <-guardErr; err != nil {
		t.Errorf("Guard: %v", err)
	}
}

// rules lists the comments of the moat table's rules in h, chain by chain.
func rules(t *testing.T, h *netlab.Host) string {
	t.Helper()
	st, err := Show(h.Path())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, ch := range st.Chains {
		fmt.Fprintf(&b, "%s:\n", ch.Name)
		for _, r := range ch.Rules {
			fmt.Fprintf(&b, "  %s\n", r.Comment)
		}
	}
	return b.String()
}

// reachAs is reach from a socket that uid owns (its file system uid when
// the socket is made, on a thread of its own).
// udpEcho answers every datagram sent to addr in h with its bytes, until
// the test ends.
func udpEcho(t *testing.T, h *netlab.Host, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := h.Do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			pc.WriteTo(b[:n], from)
		}
	}()
}

// askUDP sends a datagram from h to addr (as uid, unless it is -1) and
// waits a second for an answer: nil if one came.
func askUDP(h *netlab.Host, addr string, uid int) error {
	return h.Do(func() error {
		if uid >= 0 {
			unix.Setfsuid(uid)
		}
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = c.Read(make([]byte, 8))
		return err
	})
}

func reachAs(h *netlab.Host, addr string, uid int) error {
	return h.Do(func() error {
		unix.Setfsuid(uid)
		d := net.Dialer{Timeout: time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		b := make([]byte, 2)
		_, err = c.Read(b)
		return err
	})
}

// A local user of the node connecting to the app port of a service
// registered with a uid, over loopback or the node's own address, went
// round the mesh (and its intentions) straight to the service; only the
// service's uid, the agent's and root may.
func TestBackendOfAUIDService(t *testing.T) {
	fw, _ := lab(t)
	listen(t, fw, "0.0.0.0:8080")
	listen(t, fw, "[::]:8081")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, Backends: []Backend{
		{Service: "payments", Port: 8080, UIDs: []int{1234, 999}},
		{Service: "ledger", Port: 8081, UIDs: []int{1234}},
	}})); err != nil {
		t.Fatal(err)
	}
	own := netip.AddrPortFrom(fw.Addr, 8080).String()
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.2:8080", own, "[::1]:8081", "[::ffff:127.0.0.1]:8081"} {
		if err := reachAs(fw, addr, 4321); err == nil {
			t.Errorf("uid 4321 reached %s, the app port of a service of uid 1234", addr)
		}
		for _, uid := range []int{1234, 0} {
			if err := reachAs(fw, addr, uid); err != nil {
				t.Errorf("uid %d could not reach %s: %v", uid, addr, err)
			}
		}
	}
	if err := reachAs(fw, "127.0.0.1:8080", 999); err != nil {
		t.Errorf("the agent's uid could not reach the app port: %v", err)
	}
	if err := reachAs(fw, "[::1]:8081", 999); err == nil {
		t.Error("uid 999 reached the app port of a service of uid 1234")
	}
}

// An attacker on the node's network tries its backends over IPv6 (a
// unique local and a link-local address; a backend bound to :: while the
// operator thinks in IPv4), an IPv4-mapped address and UDP: the table is
// of family inet, so every one is dropped, while the mesh port answers on
// both families.
func TestNetworkAttackerFamilies(t *testing.T) {
	fw, peer := lab(t)
	for _, h := range []struct {
		h    *netlab.Host
		addr []string
	}{{fw, []string{"fd00:7::1/64", "fe80::7:1/64"}}, {peer, []string{"fd00:7::2/64", "fe80::7:2/64"}}} {
		for _, a := range h.addr {
			if out, err := h.h.Command(context.Background(), "ip", "-6", "addr", "add", a, "dev", "eth0", "nodad").CombinedOutput(); err != nil {
				t.Fatalf("ip addr add %s: %v: %s", a, err, out)
			}
		}
	}
	listen(t, fw, "[::]:8080")
	listen(t, fw, "[::]:9443")
	udpEcho(t, fw, "[::]:5353")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443})); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"[fd00:7::1]", "[fe80::7:1%eth0]", "[::ffff:" + fw.Addr.String() + "]", fw.Addr.String()} {
		if err := reachable(peer, a+":9443", false); err != nil {
			t.Errorf("the mesh port at %s: %v", a, err)
		}
		if err := reach(peer, a+":8080", false); err == nil {
			t.Errorf("the backend at %s was reached from the network", a)
		}
		if err := askUDP(peer, a+":5353", -1); err == nil {
			t.Errorf("a UDP service at %s answered the network", a)
		}
	}
}

// A local user of the node tries to leave it by UDP (QUIC on 443, DNS to
// a server of its choosing): dropped. Without a DNS filter (firewall.dns:
// open) DNS to the configured resolvers is let through, for any uid: a
// resolver that recurses carries names (and what is written in them) to
// any domain's servers. The filter is tested in internal/dnsfilter.
func TestWorkloadUDPExfiltration(t *testing.T) {
	fw, peer := lab(t)
	udpEcho(t, peer, ":443")
	udpEcho(t, peer, ":53")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	send := func(addr string) error { return askUDP(fw, addr, 4321) }
	quic, dns := netip.AddrPortFrom(peer.Addr, 443).String(), netip.AddrPortFrom(peer.Addr, 53).String()
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, Resolvers: []netip.Addr{netip.MustParseAddr("198.18.7.250")}})); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{quic, dns} {
		if err := send(a); err == nil {
			t.Errorf("a local user's UDP reached %s", a)
		}
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, Resolvers: []netip.Addr{peer.Addr}})); err != nil {
		t.Fatal(err)
	}
	if err := send(dns); err != nil {
		t.Errorf("DNS to the configured resolver: %v", err)
	}
	if err := send(quic); err == nil {
		t.Error("a local user's UDP reached the resolver's port 443")
	}
}

// echo serves TCP on addr inside h, sending back what each connection
// sends, until the test ends.
func echo(t *testing.T, h *netlab.Host, addr string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 64)
				for {
					n, err := c.Read(b)
					if err != nil {
						return
					}
					c.Write(b[:n])
				}
			}()
		}
	}()
}

// dialAs opens a TCP connection from h to addr from a socket uid owns.
func dialAs(t *testing.T, h *netlab.Host, addr string, uid int) net.Conn {
	t.Helper()
	var c net.Conn
	if err := h.Do(func() (err error) {
		unix.Setfsuid(uid)
		c, err = (&net.Dialer{Timeout: time.Second}).Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoed writes to c and waits a second for its bytes back: nil if they
// came.
func echoed(c net.Conn) error {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	_, err := c.Read(make([]byte, 8))
	return err
}

// A local user who opened a connection to an app port before it was a
// uid service's (the service registered without --uid, or under another
// uid, then registered with one; the firewall in audit mode, then
// enforce) kept using it round the mesh: only its first packet was
// judged. Every packet another uid sends the app port is.
func TestBackendConnectionOpenedBefore(t *testing.T) {
	fw, _ := lab(t)
	echo(t, fw, "0.0.0.0:8080")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443})); err != nil {
		t.Fatal(err)
	}
	before := dialAs(t, fw, "127.0.0.1:8080", 4321)
	own := dialAs(t, fw, "127.0.0.1:8080", 1234)
	if err := echoed(before); err != nil {
		t.Fatalf("no echo before the app port was guarded: %v", err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, Backends: []Backend{
		{Service: "payments", Port: 8080, UIDs: []int{1234}},
	}})); err != nil {
		t.Fatal(err)
	}
	if err := echoed(before); err == nil {
		t.Error("uid 4321 still talks to the app port of a service of uid 1234 over a connection it opened before")
	}
	if err := echoed(own); err != nil {
		t.Errorf("the service's own uid lost its connection: %v", err)
	}
}

// Another program's table that exempts loopback from connection tracking
// (a "notrack" at the raw priority, a common tuning for loopback
// throughput) left every packet untracked, never new: the app port of a
// uid service was open to every local user.
func TestBackendUntracked(t *testing.T) {
	fw, _ := lab(t)
	listen(t, fw, "0.0.0.0:8080")
	m, err := New(Config{NetNS: fw.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, Backends: []Backend{
		{Service: "payments", Port: 8080, UIDs: []int{1234}},
	}})); err != nil {
		t.Fatal(err)
	}
	if out, err := fw.Command(context.Background(), "nft", "add table inet raw; add chain inet raw out { type filter hook output priority raw; policy accept; }; add rule inet raw out oif lo notrack").CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	for _, addr := range []string{"127.0.0.1:8080", "[::1]:8080"} {
		if err := reachAs(fw, addr, 4321); err == nil {
			t.Errorf("uid 4321 reached %s, untracked, the app port of a service of uid 1234", addr)
		}
		if err := reachAs(fw, addr, 1234); err != nil {
			t.Errorf("uid 1234 could not reach %s, untracked: %v", addr, err)
		}
	}
}

// A local user of the node sent datagrams to the app port of a service
// registered with a uid (a DNS, syslog or QUIC service listening on its
// port's UDP too), round the mesh, which carries none: only the
// service's uid, the agent's and root may.
func TestBackendUDP(t *testing.T) {
	fw, _ := lab(t)
	udpEcho(t, fw, "0.0.0.0:8080")
	udpEcho(t, fw, "[::]:8081")
	recs := &flow.Memory{}
	m, err := New(Config{NetNS: fw.Path(), Flows: recs})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := m.OpenLog()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- lg.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if err := m.Apply(Build(Inputs{Mode: ModeEnforce, MeshPort: 9443, Backends: []Backend{
		{Service: "payments", Port: 8080, UIDs: []int{1234, 999}},
		{Service: "ledger", Port: 8081, UIDs: []int{1234, 999}},
	}})); err != nil {
		t.Fatal(err)
	}
	own := netip.AddrPortFrom(fw.Addr, 8080).String()
	for _, addr := range []string{"127.0.0.1:8080", own, "[::1]:8081", "[::ffff:127.0.0.1]:8081"} {
		if err := askUDP(fw, addr, 4321); err == nil {
			t.Errorf("uid 4321 was answered by %s, the UDP app port of a service of uid 1234", addr)
		}
		for _, uid := range []int{1234, 999, 0} {
			if err := askUDP(fw, addr, uid); err != nil {
				t.Errorf("uid %d was not answered by %s: %v", uid, addr, err)
			}
		}
	}
	wait(t, recs, "the dropped datagram", func(r flow.Record) bool {
		return r.Verdict() == flow.VerdictDeny && r.DstEndpoint.Port == 8080 && r.ConnectionInfo.ProtocolName == "udp" &&
			strings.Contains(r.Unmapped.Reason, "local uid 4321")
	})
}
