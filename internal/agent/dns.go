package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"moat/internal/api"
	"moat/internal/dnsfilter"
	"moat/internal/firewall"
	"moat/internal/policy"
)

// DefaultDNSPort is the DNS filter's port when the configuration names
// none.
const DefaultDNSPort = 15353

// dnsListeners are the DNS filter's sockets, opened with the agent so that
// a port taken by another program fails the start, not a query.
type dnsListeners struct {
	filter *dnsfilter.Filter
	pcs    []net.PacketConn
	lns    []net.Listener

	mu       sync.Mutex // guards resolved and at
	resolved []netip.AddrPort
	at       time.Time

	// guarded is closed once the node has a table with the filter's port
	// guard (tableIn): before it the filter's sockets, bound on every
	// address, are not read, so no one on the network is answered.
	guarded   chan struct{}
	guardOnce sync.Once
}

// tableIn says the host firewall's table is in place: the filter may
// answer.
func (d *dnsListeners) tableIn() {
	if d != nil {
		d.guardOnce.Do(func() { close(d.guarded) })
	}
}

// dnsPort is the filter's port.
func (a *Agent) dnsPort() uint16 {
	if a.cfg.Firewall.DNSPort != 0 {
		return a.cfg.Firewall.DNSPort
	}
	return DefaultDNSPort
}

// newDNSFilter opens the DNS filter when the firewall is on and filters
// DNS: UDP and TCP on every IPv4 address and, where the node has IPv6,
// every IPv6 address. Local users' DNS is redirected to 127.0.0.1 or ::1,
// the DNS the node routes to the address of the interface it came in by
// (a bridge's); the firewall admits the port from off the node only for
// what it redirected there. Without IPv6, IPv6 DNS meets a closed port:
// refused, not let through.
func (a *Agent) newDNSFilter() error {
	if a.fw == nil || a.cfg.Firewall.DNS == firewall.DNSOpen {
		return nil
	}
	d := &dnsListeners{guarded: make(chan struct{})}
	f, err := dnsfilter.New(dnsfilter.Config{
		Node: a.cfg.Node, Resolvers: d.resolvers(a), Allowed: a.dnsAllowed,
		Audit: a.cfg.Firewall.Mode == firewall.ModeAudit, Flows: a.flows(), Now: a.cfg.Now,
		Logger: a.log.With("part", "dns"),
	})
	if err != nil {
		return err
	}
	d.filter = f
	port := strconv.Itoa(int(a.dnsPort()))
	for _, fam := range []struct{ v, host string }{{"4", "0.0.0.0"}, {"6", "::"}} {
		addr := net.JoinHostPort(fam.host, port)
		pc, err := net.ListenPacket("udp"+fam.v, addr)
		if err == nil {
			var ln net.Listener
			if ln, err = net.Listen("tcp"+fam.v, addr); err == nil {
				d.pcs, d.lns = append(d.pcs, pc), append(d.lns, ln)
				continue
			}
			pc.Close()
		}
		if fam.v == "6" && isNoIPv6(err) {
			a.log.Warn("DNS filter: no IPv6 on this node; IPv6 DNS is refused", "err", err)
			continue
		}
		d.close()
		return fmt.Errorf("agent: DNS filter (firewall.dns.port): %w", err)
	}
	a.dns = d
	return nil
}

// isNoIPv6 reports an error of binding ::1 on a node without IPv6.
func isNoIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}

// closeDNS closes the filter's sockets when the agent does not start.
func (a *Agent) closeDNS() {
	if a.dns != nil {
		a.dns.close()
	}
}

func (d *dnsListeners) close() {
	for _, pc := range d.pcs {
		pc.Close()
	}
	for _, ln := range d.lns {
		ln.Close()
	}
}

// runDNSFilter serves the DNS filter until ctx ends.
func (a *Agent) runDNSFilter(ctx context.Context) error {
	if a.dns == nil {
		return nil
	}
	select {
	case <-a.dns.guarded:
	case <-ctx.Done():
		a.dns.close()
		return nil
	}
	a.log.Info("DNS filter listening", "port", a.dnsPort(), "audit", a.cfg.Firewall.Mode == firewall.ModeAudit)
	return a.dns.filter.Serve(ctx, a.dns.pcs, a.dns.lns)
}

// resolverEvery is how long the filter keeps the node's resolver list
// before it reads it again (a DHCP lease may change it).
const resolverEvery = 30 * time.Second

// resolvers returns the filter's Resolvers: the node's resolvers off
// loopback, on port 53, read again every resolverEvery. A stub on loopback
// (systemd-resolved's 127.0.0.53) is never asked: its own queries off the
// node come back to the filter.
func (d *dnsListeners) resolvers(a *Agent) func() []netip.AddrPort {
	return func() []netip.AddrPort {
		d.mu.Lock()
		defer d.mu.Unlock()
		now := a.cfg.Now()
		if d.resolved != nil && now.Sub(d.at) < resolverEvery {
			return d.resolved
		}
		out := []netip.AddrPort{}
		for _, r := range a.resolvers() {
			if r = r.Unmap(); !r.IsLoopback() && !r.IsUnspecified() {
				out = append(out, netip.AddrPortFrom(r, 53))
			}
		}
		d.resolved, d.at = out, now
		return out
	}
}

// dnsAllowed says whether local users may resolve name through the
// filter, and why: a name of firewall.dns.allow; the control plane's, the
// egress point's resolver's and peers' mesh names (the agent asks for
// them, through a local stub resolver when the node has one); the
// destination of an egress rule of a service of this node (of any
// service on the egress gateway, whose point resolves for all), matched
// as the egress path matches it.
func (a *Agent) dnsAllowed(name string) (string, bool) {
	for _, p := range a.cfg.Firewall.DNSAllow {
		if policy.HostMatches(p, name) {
			return "firewall.dns.allow " + p, true
		}
	}
	hosts := []string{a.cfg.Egress.Resolver}
	if servers, err := api.ParseServers(a.cfg.Server); err == nil {
		hosts = append(hosts, servers...)
	}
	a.mu.RLock()
	for _, n := range a.state.nodes {
		hosts = append(hosts, n.MeshAddr)
	}
	a.mu.RUnlock()
	for _, hp := range hosts {
		if h, _, err := net.SplitHostPort(hp); err == nil {
			if h, err := policy.NormalizeHost(h); err == nil && h == name {
				return "moat's own name", true
			}
		}
	}
	var from func(string) bool
	if a.cfg.Egress.ServeGateway == "" {
		local := map[string]bool{}
		for _, r := range a.LocalServices() {
			local[r.Name] = true
		}
		from = func(s string) bool { return local[s] }
	}
	if rule, ok := a.policyTable().EgressNamed(name, from); ok {
		return "egress rule " + rule, true
	}
	return "", false
}
