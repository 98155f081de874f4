package agent

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/firewall"
	"moat/internal/policy"
)

// FirewallConfig is the node's host firewall (see package firewall).
type FirewallConfig struct {
	// Mode is off (the zero value: no table), audit or enforce.
	Mode firewall.Mode
	// ControlPlane lists control-plane servers beside Config.Server (a
	// cluster's other members), admitted outbound always.
	ControlPlane []netip.AddrPort
	// ServerPorts are control-plane ports this node serves, for a server
	// whose listen address is not one of ControlPlane's.
	ServerPorts []uint16
	// PublicPorts are the edge gateway's public ports on this node.
	PublicPorts []uint16
	// Inbound and Outbound are what the operator admits beside moat's own.
	Inbound, Outbound []firewall.Allow
	// Resolvers are the DNS servers the node may ask; nil means those of
	// the system's resolver configuration.
	Resolvers []netip.Addr
	// Forwarding is how connections the node routes (its containers',
	// a pod network's) are treated when they were not published by
	// destination NAT: firewall.ForwardEgress (the zero value) holds them
	// to the node's outbound rules, firewall.ForwardOpen lets them
	// through, for a node that routes a pod network on purpose. Ports
	// published by destination NAT are held to the inbound rules either
	// way.
	Forwarding firewall.Forwarding
	// LogGroup is the NFLOG group of the would-drop log; zero means
	// firewall.DefaultLogGroup.
	LogGroup uint16
	// DNS is how local users' DNS is treated: firewall.DNSFilter (the
	// zero value) sends every uid's but the agent's to the agent's DNS
	// filter, which forwards only allowed names, and with
	// firewall.ForwardEgress the DNS the node routes (its containers')
	// too; firewall.DNSOpen admits it to the resolvers for every uid.
	DNS firewall.DNS
	// DNSAllow lists names (or "*." and a domain) the filter forwards
	// beside those the agent derives, in policy.NormalizeHostPattern's
	// form.
	DNSAllow []string
	// DNSPort is the filter's port (it listens on every address; the
	// firewall admits it from off the node only for the DNS it
	// redirected there); zero means DefaultDNSPort.
	DNSPort uint16
	// DNSRate and DNSBurst bound each local uid's DNS to the filter
	// (firewall.Spec.DNSRate); zero means the defaults.
	DNSRate, DNSBurst uint32
	// NetNS, when set, manages that network namespace's firewall rather
	// than the process's own (tests). The DNS filter still listens in the
	// process's own: set DNS to firewall.DNSOpen with it.
	NetNS string
}

// newFirewall opens the host firewall when a mode other than off is set.
func (a *Agent) newFirewall() (*firewall.Manager, error) {
	if a.cfg.Firewall.Mode == "" || a.cfg.Firewall.Mode == firewall.ModeOff {
		return nil, nil
	}
	return firewall.New(firewall.Config{
		NetNS: a.cfg.Firewall.NetNS, Node: a.cfg.Node, Flows: a.flows(), Owner: a.uidOwner,
		LogGroup: a.cfg.Firewall.LogGroup, Now: a.cfg.Now, Logger: a.log.With("part", "firewall"),
		// The control plane hears of a bypass with the next listener
		// health report, sent at once.
		BypassesChanged: a.wakeHealth,
	})
}

// uidOwner names the local services a uid runs, for records of outbound
// drops.
func (a *Agent) uidOwner(uid int) string {
	var names []string
	for _, r := range a.LocalServices() {
		if r.UID != nil && *r.UID == uid {
			names = append(names, r.Name)
		}
	}
	return strings.Join(names, ",")
}

// SetPublicPorts opens the edge gateway's ports on this node, beside
// FirewallConfig.PublicPorts; the firewall follows at once.
func (a *Agent) SetPublicPorts(ports []uint16) {
	a.mu.Lock()
	a.publicPorts = append([]uint16(nil), ports...)
	a.mu.Unlock()
	a.polChanged.Notify()
}

// Firewall returns the node's host firewall, nil when off.
func (a *Agent) Firewall() *firewall.Manager { return a.fw }

// runFirewall keeps the host firewall in step with the registry and the
// intentions: every applied watch frame rebuilds the ruleset and applies
// it when it changed (one transaction, so within a frame of the change).
// A node that has a table from an earlier run keeps it untouched until the
// agent holds a snapshot to derive the next one from; a node that has none
// gets one at once, from what the agent knows before any snapshot (the
// control plane, DNS, its mesh port).
func (a *Agent) runFirewall(ctx context.Context) error {
	if a.fw == nil {
		return nil
	}
	// The log is bound before anything is applied: a packet the table
	// logs before a reader binds the group is not recorded at all.
	lg, err := a.fw.OpenLog()
	if err != nil {
		return err
	}
	logDone := make(chan error, 1)
	go func() { logDone <- lg.Run(ctx) }()
	// Another program that removes or changes the table (a flushed
	// ruleset) finds it put back at once, not at the next change.
	guardDone := make(chan error, 1)
	go func() { guardDone <- a.fw.Guard(ctx) }()
	cps := a.controlPlane(ctx)
	if ok, err := a.fw.Installed(); err == nil && !ok && !a.Synced() {
		if err := a.fw.Apply(firewall.Build(a.firewallInputs(cps))); err != nil {
			return err
		}
		a.log.Info("host firewall installed", "mode", a.cfg.Firewall.Mode)
		a.dns.tableIn()
	} else if ok {
		// The table a previous run left stands until the first apply.
		a.dns.tableIn()
	}
	applied := ""
	fails := 0
	for {
		updated, polChanged := a.Updates(), a.polChanged.C()
		retry := time.Duration(0)
		if a.Synced() {
			spec := firewall.Build(a.firewallInputs(cps))
			if key := spec.Key(); key != applied {
				if err := a.fw.Apply(spec); err != nil {
					// The previous table stays in force: nothing opens.
					fails++
					retry = a.backoff(fails)
					a.log.Error("host firewall not updated; the previous rules stay in force", "err", err)
				} else {
					fails = 0
					applied = key
					a.dns.tableIn()
					a.log.Info("host firewall applied", "mode", spec.Mode, "inbound", len(spec.Inbound), "outbound", len(spec.Outbound))
				}
			}
		}
		var after <-chan time.Time
		if retry > 0 {
			after = a.cfg.After(retry)
		}
		select {
		case <-ctx.Done():
			return <-logDone
		case err := <-logDone:
			if err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		case err := <-guardDone:
			if err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		case <-updated:
		case <-polChanged:
		case <-after:
		}
	}
}

// controlPlane resolves the control plane's addresses once: every server
// of Config.Server (the agent fails over between them), and
// FirewallConfig.ControlPlane.
func (a *Agent) controlPlane(ctx context.Context) []netip.AddrPort {
	out := append([]netip.AddrPort(nil), a.cfg.Firewall.ControlPlane...)
	servers, err := api.ParseServers(a.cfg.Server)
	if err != nil {
		servers = []string{a.cfg.Server} // validated before; resolved as given
	}
	for _, s := range servers {
		out = append(out, resolveAddrPort(ctx, s)...)
	}
	return out
}

// resolveAddrPort reads host:port, resolving a name (bounded).
func resolveAddrPort(ctx context.Context, hostport string) []netip.AddrPort {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	}
	host, ps, err := net.SplitHostPort(hostport)
	port, perr := strconv.Atoi(ps)
	if err != nil || perr != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, ad := range addrs {
		out = append(out, netip.AddrPortFrom(ad.Unmap(), uint16(port)))
	}
	return out
}

// resolvers are the DNS servers the node may ask: those configured, or
// else the system's, and the egress point's own.
func (a *Agent) resolvers() []netip.Addr {
	out := append([]netip.Addr(nil), a.cfg.Firewall.Resolvers...)
	if a.cfg.Firewall.Resolvers == nil {
		out = firewall.SystemResolvers()
	}
	for _, r := range resolveAddrPort(context.Background(), a.cfg.Egress.Resolver) {
		out = append(out, r.Addr())
	}
	return out
}

// firewallInputs gathers what decides this node's rules now.
func (a *Agent) firewallInputs(cps []netip.AddrPort) firewall.Inputs {
	fc := a.cfg.Firewall
	in := firewall.Inputs{
		Mode: fc.Mode, ControlPlane: cps, ServerPorts: fc.ServerPorts, PublicPorts: append([]uint16(nil), fc.PublicPorts...),
		Inbound: fc.Inbound, Outbound: fc.Outbound, LogGroup: fc.LogGroup,
		Egress:  a.cfg.Egress.Direct || a.cfg.Egress.ServeGateway != "",
		Forward: fc.Forwarding, AgentUID: os.Getuid(),
	}
	in.Resolvers = a.resolvers()
	if a.dns != nil {
		in.DNSPort = a.dnsPort()
		in.DNSRate, in.DNSBurst = fc.DNSRate, fc.DNSBurst
	}
	if _, p, err := net.SplitHostPort(a.cfg.MeshAddr); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			in.MeshPort = uint16(n)
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					in.LocalAddrs = append(in.LocalAddrs, ip.Unmap())
				}
			}
		}
	}
	a.mu.RLock()
	in.PublicPorts = append(in.PublicPorts, a.publicPorts...)
	for name, n := range a.state.nodes {
		if name == a.cfg.Node {
			continue
		}
		if ap, err := netip.ParseAddrPort(n.MeshAddr); err == nil {
			in.Peers = append(in.Peers, firewall.Peer{Node: name, Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())})
		}
	}
	a.mu.RUnlock()
	// The app port of a service registered with a uid: its uid and the
	// agent's (which delivers its mesh callers) alone may connect to it.
	for _, r := range a.LocalServices() {
		if r.UID != nil && r.Port > 0 && r.Port < 65536 {
			in.Backends = append(in.Backends, firewall.Backend{Service: r.Name, Port: uint16(r.Port), UIDs: []int{*r.UID, os.Getuid()}})
		}
	}
	pol := a.policyTable()
	for _, r := range a.LocalServices() {
		if r.PlaintextPort == 0 || pol.PeerMode(r.Name) != policy.Permissive {
			continue
		}
		pp := firewall.PlaintextPort{Service: r.Name, Port: uint16(r.PlaintextPort)}
		for _, rule := range pol.Rules() {
			if rule.To != r.Name {
				continue
			}
			for _, s := range rule.FromPlaintext {
				if s == policy.AnyPlaintext {
					pp.Nets = append(pp.Nets, netip.MustParsePrefix("0.0.0.0/0"))
					continue
				}
				if pfx, err := netip.ParsePrefix(s); err == nil {
					pp.Nets = append(pp.Nets, pfx)
				}
			}
		}
		in.Plaintext = append(in.Plaintext, pp)
	}
	return in
}
