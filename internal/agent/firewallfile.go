package agent

import (
	"net"
	"net/netip"
	"time"

	"moat/internal/config"
	"moat/internal/firewall"
	"moat/internal/identity"
	"moat/internal/policy"
)

// FirewallFile is the "firewall" key of an agent's configuration file:
//
//	firewall:
//	  mode: enforce                 # off (default), audit or enforce
//	  inbound: ["22", "10.0.0.0/8:9100", "[fd00::/8]:53/udp"]
//	  outbound: ["10.0.0.9:123/udp"]
//	  control_plane: ["10.0.0.2:7400", "10.0.0.3:7400"]   # the other servers
//	  resolvers: ["10.0.0.2"]       # default: the system's name servers
//	  forwarding: egress            # egress (default) or open: see Forwarding
//	  log_group: 3740
//	  dns:
//	    mode: filter                # filter (default) or open: see DNSFile
//	    allow: ["*.debian.org", "ntp.ubuntu.com"]
//	    port: 15353                 # the filter's port
//	    rate: 2000                  # each local uid's datagrams a second to the filter
//	    burst: 4000                 # and at once, past which they are dropped
type FirewallFile struct {
	// Mode is off (the default), audit or enforce.
	Mode string `yaml:"mode"`
	// Inbound and Outbound admit what the operator names beside moat's
	// own traffic ([NETWORK:]PORT[/PROTO], firewall.ParseAllow).
	Inbound  []string `yaml:"inbound"`
	Outbound []string `yaml:"outbound"`
	// ControlPlane lists control-plane servers (ADDRESS:PORT) beside
	// "server": a cluster's other members.
	ControlPlane []string `yaml:"control_plane"`
	// Resolvers are the DNS servers the node may ask; empty means those of
	// the system's resolver configuration.
	Resolvers []string `yaml:"resolvers"`
	// Forwarding is how the connections the node routes for its
	// containers (or a pod network) are treated: "egress" (the default)
	// holds them to the node's own outbound rules, as the node's own
	// connections are; "open" lets them through, for a node that routes
	// a pod network or a LAN on purpose. Either way a port published by
	// destination NAT (docker run -p) is open to the network only where
	// the inbound rules would admit a connection to the node's own port.
	Forwarding string `yaml:"forwarding"`
	// LogGroup is the NFLOG group of the would-drop log; zero means
	// firewall.DefaultLogGroup.
	LogGroup int `yaml:"log_group"`
	// DNS is how local users' DNS is treated in audit and enforce mode.
	DNS DNSFile `yaml:"dns"`
}

// DNSFile is the "firewall.dns" key: the node's DNS filter (package
// dnsfilter), in force whenever the firewall is (audit or enforce).
type DNSFile struct {
	// Mode is "filter" (the default): the resolvers are admitted to the
	// agent's uid alone, and every other uid's DNS (UDP and TCP 53, to
	// any address off the node) goes to the agent's filter, which
	// forwards only allowed names (the egress rules' names for the
	// node's services, the control plane's and peers' names, Allow) and
	// answers REFUSED to the rest (in audit mode: forwards and records
	// them); with forwarding egress, the DNS the node routes for its
	// containers goes there too. "open" admits DNS to the resolvers for
	// every uid, as moat did before the filter.
	Mode string `yaml:"mode"`
	// Allow lists names local users may resolve beside those moat
	// derives: a name, or "*." and a domain for every name below it.
	Allow []string `yaml:"allow"`
	// Port is the filter's port; it listens on every address, and the
	// firewall admits it from off the node only for the DNS it
	// redirected there. Zero means DefaultDNSPort.
	Port int `yaml:"port"`
	// Rate and Burst bound each local uid's DNS to the filter: past Rate
	// datagrams (and new TCP connections) a second, after a burst of
	// Burst, the kernel drops them and counts them, so that one user
	// flooding the filter does not fill its socket's buffer and have the
	// others' queries dropped. Zero means firewall.DefaultDNSRate (2,000)
	// and firewall.DefaultDNSBurst (4,000).
	Rate  int `yaml:"rate"`
	Burst int `yaml:"burst"`
}

// Config validates f, naming path (e.g. "firewall") in its errors, and
// returns the agent's form of it.
func (f *FirewallFile) Config(path string) (FirewallConfig, error) {
	var out FirewallConfig
	mode, err := firewall.ParseMode(f.Mode)
	if err != nil {
		return out, config.Errorf(config.Join(path, "mode"), "%v", err)
	}
	out.Mode = mode
	if out.Forwarding, err = firewall.ParseForwarding(f.Forwarding); err != nil {
		return out, config.Errorf(config.Join(path, "forwarding"), "%v", err)
	}
	for _, l := range []struct {
		key  string
		src  []string
		into *[]firewall.Allow
	}{{"inbound", f.Inbound, &out.Inbound}, {"outbound", f.Outbound, &out.Outbound}} {
		for i, s := range l.src {
			a, err := firewall.ParseAllow(s, "")
			if err != nil {
				return out, config.Errorf(config.Index(config.Join(path, l.key), i), "%v", err)
			}
			*l.into = append(*l.into, a)
		}
	}
	for i, s := range f.ControlPlane {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return out, config.Errorf(config.Index(config.Join(path, "control_plane"), i), "%q: want ADDRESS:PORT", s)
		}
		out.ControlPlane = append(out.ControlPlane, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	for i, s := range f.Resolvers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return out, config.Errorf(config.Index(config.Join(path, "resolvers"), i), "%q: want an address", s)
		}
		out.Resolvers = append(out.Resolvers, a.Unmap())
	}
	if f.LogGroup < 0 || f.LogGroup > 65535 {
		return out, config.Errorf(config.Join(path, "log_group"), "%d is out of range 0-65535", f.LogGroup)
	}
	out.LogGroup = uint16(f.LogGroup)
	dp := config.Join(path, "dns")
	if out.DNS, err = firewall.ParseDNS(f.DNS.Mode); err != nil {
		return out, config.Errorf(config.Join(dp, "mode"), "%v", err)
	}
	if len(f.DNS.Allow) > maxDNSAllow {
		return out, config.Errorf(config.Join(dp, "allow"), "%d names; at most %d", len(f.DNS.Allow), maxDNSAllow)
	}
	for i, s := range f.DNS.Allow {
		n, err := policy.NormalizeHostPattern(s)
		if err != nil {
			return out, config.Errorf(config.Index(config.Join(dp, "allow"), i), "%v (want a name, or \"*.\" and a domain)", err)
		}
		out.DNSAllow = append(out.DNSAllow, n)
	}
	if f.DNS.Port < 0 || f.DNS.Port > 65535 {
		return out, config.Errorf(config.Join(dp, "port"), "%d is out of range 1-65535", f.DNS.Port)
	}
	if f.DNS.Port == 53 {
		return out, config.Errorf(config.Join(dp, "port"), "53 is the port the filter redirects; choose another")
	}
	out.DNSPort = uint16(f.DNS.Port)
	for _, b := range []struct {
		key  string
		v    int
		into *uint32
	}{{"rate", f.DNS.Rate, &out.DNSRate}, {"burst", f.DNS.Burst, &out.DNSBurst}} {
		if b.v < 0 || b.v > firewall.MaxDNSRate {
			return out, config.Errorf(config.Join(dp, b.key), "%d is out of range 1-%d", b.v, firewall.MaxDNSRate)
		}
		*b.into = uint32(b.v)
	}
	return out, nil
}

// maxDNSAllow bounds firewall.dns.allow: every query is matched against
// the whole list.
const maxDNSAllow = 1024

// EgressFile is the "egress" key of an agent's configuration file:
//
//	egress:
//	  proxy: 127.0.0.1:3128         # HTTP CONNECT proxy for HTTPS_PROXY
//	  sni: 127.0.0.1:3129           # TLS listener taking the host from the server name
//	  sni_port: 443
//	  direct: false                 # true: this node connects out itself
//	  gateway: egress               # the egress gateway's service
//	  serve_gateway: ""             # this node is the egress gateway, as this service
//	  resolver: ""                  # DNS server of the egress point (host:port)
//	  idle_timeout: 1h              # the egress point closes a connection idle for that long
type EgressFile struct {
	Proxy        string `yaml:"proxy"`
	SNI          string `yaml:"sni"`
	SNIPort      int    `yaml:"sni_port"`
	Direct       bool   `yaml:"direct"`
	Gateway      string `yaml:"gateway"`
	ServeGateway string `yaml:"serve_gateway"`
	Resolver     string `yaml:"resolver"`
	// IdleTimeout closes a connection the egress point relays once no
	// byte moved either way for that long; zero means an hour
	// (egress.DefaultIdleTimeout).
	IdleTimeout config.Duration `yaml:"idle_timeout"`
}

// Config validates e, naming path (e.g. "egress") in its errors, and
// returns the agent's form of it. The proxy's listeners must be on
// loopback: the caller is told by its local socket's uid, which a remote
// caller does not have.
func (e *EgressFile) Config(path string) (EgressConfig, error) {
	out := EgressConfig{Proxy: e.Proxy, SNI: e.SNI, SNIPort: e.SNIPort, Direct: e.Direct, Gateway: e.Gateway, ServeGateway: e.ServeGateway, Resolver: e.Resolver,
		IdleTimeout: time.Duration(e.IdleTimeout)}
	for _, l := range []struct{ key, v string }{{"proxy", e.Proxy}, {"sni", e.SNI}} {
		if l.v == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(l.v)
		if err != nil || !ap.Addr().IsLoopback() {
			return out, config.Errorf(config.Join(path, l.key), "%q: want a loopback ADDRESS:PORT (callers are told by their local uid)", l.v)
		}
	}
	if e.SNIPort < 0 || e.SNIPort > 65535 {
		return out, config.Errorf(config.Join(path, "sni_port"), "%d is out of range 0-65535", e.SNIPort)
	}
	for _, l := range []struct{ key, v string }{{"gateway", e.Gateway}, {"serve_gateway", e.ServeGateway}} {
		if l.v != "" {
			if err := identity.ValidName(l.v); err != nil {
				return out, config.Errorf(config.Join(path, l.key), "%v", err)
			}
		}
	}
	if e.Resolver != "" {
		if _, _, err := net.SplitHostPort(e.Resolver); err != nil {
			return out, config.Errorf(config.Join(path, "resolver"), "%q: want host:port", e.Resolver)
		}
	}
	if d := time.Duration(e.IdleTimeout); d < 0 || d > 0 && d < time.Second {
		return out, config.Errorf(config.Join(path, "idle_timeout"), "%v: want a second or more (or leave it out for an hour)", d)
	}
	return out, nil
}
