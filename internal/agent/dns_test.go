package agent

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"moat/internal/api"
	"moat/internal/dnsfilter"
	"moat/internal/firewall"
	"moat/internal/flow"
	"moat/internal/policy"
	"moat/internal/testkit"
)

const dnsIntentions = `
default: deny
egress:
  - name: payments
    from: [api]
    to: api.stripe.com
    ports: [443]
  - name: uploads
    from: ["*"]
    to: "*.s3.amazonaws.com"
    ports: [443]
  - name: elsewhere
    from: [batch]
    to: batch.example.net
    ports: [443]
  - name: partner
    from: [api]
    to: 203.0.113.0/24
    ports: [8443]
`

// TestDNSAllowed: the filter lets local users resolve the names of the
// egress rules of this node's services (exactly, or below a "*." domain,
// as the egress path matches them), the names the agent itself asks for
// (control plane, peers' mesh addresses, the egress resolver) and
// firewall.dns.allow; not another node's services' rules' names, nor the
// domain of a wildcard itself. The egress gateway's point resolves for
// every service: there, every rule's names.
func TestDNSAllowed(t *testing.T) {
	pol, err := policy.Parse([]byte(dnsIntentions))
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{cfg: Config{Node: "n1", Server: "cp.example.org:7400,10.0.0.1:7400",
		Firewall: FirewallConfig{Mode: firewall.ModeEnforce, DNSAllow: []string{"*.debian.org", "ntp.ubuntu.com"}},
		Egress:   EgressConfig{Resolver: "dns.internal.example:53"}},
		state: state{
			services: map[string]api.Registration{"api": {Name: "api", Node: "n1"}, "batch": {Name: "batch", Node: "n2"}},
			nodes:    map[string]api.Node{"n2": {Name: "n2", MeshAddr: "n2.mesh.example:15443"}, "n3": {Name: "n3", MeshAddr: "10.0.0.3:15443"}},
		}}
	a.pol.Store(pol)
	for _, c := range []struct {
		name string
		want string // "" for refused
	}{
		{"api.stripe.com", "egress rule payments"},
		{"bucket.s3.amazonaws.com", "egress rule uploads"},
		{"a.b.s3.amazonaws.com", "egress rule uploads"},
		{"s3.amazonaws.com", ""},
		{"deb.debian.org", "firewall.dns.allow *.debian.org"},
		{"ntp.ubuntu.com", "firewall.dns.allow ntp.ubuntu.com"},
		{"x.ntp.ubuntu.com", ""},
		{"cp.example.org", "moat's own name"},
		{"n2.mesh.example", "moat's own name"},
		{"dns.internal.example", "moat's own name"},
		{"batch.example.net", ""},
		{"agvsbg8.evil.example", ""},
		{"stripe.com", ""},
	} {
		got, ok := a.dnsAllowed(c.name)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
	a.cfg.Egress.ServeGateway = "egress"
	if got, ok := a.dnsAllowed("batch.example.net"); !ok || got != "egress rule elsewhere" {
		t.Errorf("on the egress gateway, another node's rule's name: %q, %v", got, ok)
	}
}

// TestFirewallFileDNS: firewall.dns is read into the agent's config, mode
// "" meaning filter; bad modes, names, ports, rates and bursts are
// refused with the key path named.
func TestFirewallFileDNS(t *testing.T) {
	f := FirewallFile{Mode: "enforce", DNS: DNSFile{Allow: []string{"*.Debian.org.", "ntp.ubuntu.com"}, Port: 5300, Rate: 500, Burst: 1000}}
	c, err := f.Config("firewall")
	if err != nil || c.DNS != firewall.DNSFilter || strings.Join(c.DNSAllow, ",") != "*.debian.org,ntp.ubuntu.com" || c.DNSPort != 5300 ||
		c.DNSRate != 500 || c.DNSBurst != 1000 {
		t.Errorf("%+v, %v", c, err)
	}
	for _, tc := range []struct {
		dns  DNSFile
		want string
	}{
		{DNSFile{Mode: "closed"}, `firewall.dns.mode: want filter or open, got "closed"`},
		{DNSFile{Allow: []string{"*"}}, `firewall.dns.allow[0]: "*": a wildcard is allowed only as the whole first label`},
		{DNSFile{Allow: []string{"ok.example", "intranet"}}, `firewall.dns.allow[1]: "intranet": write the fully qualified name`},
		{DNSFile{Allow: []string{"10.0.0.1"}}, `firewall.dns.allow[0]: "10.0.0.1": a name ending in a number`},
		{DNSFile{Allow: []string{"a..example"}}, `firewall.dns.allow[0]: "a..example": empty or over-long label`},
		{DNSFile{Port: 70000}, `firewall.dns.port: 70000 is out of range 1-65535`},
		{DNSFile{Port: 53}, `firewall.dns.port: 53 is the port the filter redirects`},
		{DNSFile{Rate: -1}, `firewall.dns.rate: -1 is out of range 1-1000000`},
		{DNSFile{Rate: 2000000}, `firewall.dns.rate: 2000000 is out of range 1-1000000`},
		{DNSFile{Burst: -5}, `firewall.dns.burst: -5 is out of range 1-1000000`},
	} {
		f := FirewallFile{Mode: "enforce", DNS: tc.dns}
		if _, err := f.Config("firewall"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.dns, err, tc.want)
		}
	}
}

// The filter's sockets are bound on every address before the host
// firewall's table (with its guard on the filter's port) is in: until the
// table is in, nothing sent to them is answered, so no one on the network
// meets an open resolver while the node boots; once in, the same query
// is answered.
func TestDNSFilterWaitsForTheTable(t *testing.T) {
	f, err := dnsfilter.New(dnsfilter.Config{Node: "n1", Allowed: func(string) (string, bool) { return "", false },
		Resolvers: func() []netip.AddrPort { return nil }, Flows: &flow.Memory{}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsListeners{filter: f, pcs: []net.PacketConn{pc}, guarded: make(chan struct{})}
	a := &Agent{dns: d, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.runDNSFilter(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runDNSFilter: %v", err)
		}
	})
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion("refused.example.", dns.TypeA)
	q, _ := m.Pack()
	answer := func(wait time.Duration) bool {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, 512)
		_, err := c.Read(b)
		return err == nil
	}
	if answer(time.Second) {
		t.Fatal("the filter answered before the firewall's table was in")
	}
	d.tableIn()
	if !answer(testkit.WaitLimit) {
		t.Fatal("the filter did not answer once the table was in")
	}
}
