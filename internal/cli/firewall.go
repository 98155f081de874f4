package cli

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/netip"
	"path/filepath"

	"moat/internal/agent"
	"moat/internal/config"
	"moat/internal/firewall"
	"moat/internal/identity"
)

// firewallConfig is the "firewall" key of an agent's configuration:
//
//	firewall:
//	  mode: enforce                 # off (default), audit or enforce
//	  inbound: ["22", "10.0.0.0/8:9100", "[fd00::/8]:53/udp"]
//	  outbound: ["10.0.0.9:123/udp"]
//	  control_plane: ["10.0.0.2:7400", "10.0.0.3:7400"]   # the other servers
//	  resolvers: ["10.0.0.2"]       # default: the system's name servers
//	  log_group: 3740
type firewallConfig struct {
	Mode         string   `yaml:"mode"`
	Inbound      []string `yaml:"inbound"`
	Outbound     []string `yaml:"outbound"`
	ControlPlane []string `yaml:"control_plane"`
	Resolvers    []string `yaml:"resolvers"`
	LogGroup     int      `yaml:"log_group"`
}

// egressConfig is the "egress" key of an agent's configuration:
//
//	egress:
//	  proxy: 127.0.0.1:3128         # HTTP CONNECT proxy for HTTPS_PROXY
//	  sni: 127.0.0.1:3129           # TLS listener taking the host from the server name
//	  sni_port: 443
//	  direct: false                 # true: this node connects out itself
//	  gateway: egress               # the egress gateway's service
//	  resolver: ""                  # DNS server of the egress point (host:port)
type egressConfig struct {
	Proxy        string `yaml:"proxy"`
	SNI          string `yaml:"sni"`
	SNIPort      int    `yaml:"sni_port"`
	Direct       bool   `yaml:"direct"`
	Gateway      string `yaml:"gateway"`
	ServeGateway string `yaml:"serve_gateway"`
	Resolver     string `yaml:"resolver"`
}

// typed validates the firewall section and returns the agent's form.
func (f firewallConfig) typed(p string) (agent.FirewallConfig, error) {
	var out agent.FirewallConfig
	mode, err := firewall.ParseMode(f.Mode)
	if err != nil {
		return out, config.Errorf(config.Join(p, "mode"), "%v", err)
	}
	out.Mode = mode
	for _, l := range []struct {
		key  string
		src  []string
		into *[]firewall.Allow
	}{{"inbound", f.Inbound, &out.Inbound}, {"outbound", f.Outbound, &out.Outbound}} {
		for i, s := range l.src {
			a, err := firewall.ParseAllow(s, "")
			if err != nil {
				return out, config.Errorf(config.Index(config.Join(p, l.key), i), "%v", err)
			}
			*l.into = append(*l.into, a)
		}
	}
	for i, s := range f.ControlPlane {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return out, config.Errorf(config.Index(config.Join(p, "control_plane"), i), "%q: want ADDRESS:PORT", s)
		}
		out.ControlPlane = append(out.ControlPlane, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	for i, s := range f.Resolvers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return out, config.Errorf(config.Index(config.Join(p, "resolvers"), i), "%q: want an address", s)
		}
		out.Resolvers = append(out.Resolvers, a.Unmap())
	}
	if f.LogGroup < 0 || f.LogGroup > 65535 {
		return out, config.Errorf(config.Join(p, "log_group"), "%d is out of range 0-65535", f.LogGroup)
	}
	out.LogGroup = uint16(f.LogGroup)
	return out, nil
}

// typed validates the egress section. The proxy's listeners must be on
// loopback: the caller is told by its local socket's uid, which a remote
// caller does not have.
func (c egressConfig) typed(p string) (agent.EgressConfig, error) {
	out := agent.EgressConfig{Proxy: c.Proxy, SNI: c.SNI, SNIPort: c.SNIPort, Direct: c.Direct, Gateway: c.Gateway, ServeGateway: c.ServeGateway, Resolver: c.Resolver}
	for _, l := range []struct{ key, v string }{{"proxy", c.Proxy}, {"sni", c.SNI}} {
		if l.v == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(l.v)
		if err != nil || !ap.Addr().IsLoopback() {
			return out, config.Errorf(config.Join(p, l.key), "%q: want a loopback ADDRESS:PORT (callers are told by their local uid)", l.v)
		}
	}
	if c.SNIPort < 0 || c.SNIPort > 65535 {
		return out, config.Errorf(config.Join(p, "sni_port"), "%d is out of range", c.SNIPort)
	}
	for _, l := range []struct{ key, v string }{{"gateway", c.Gateway}, {"serve_gateway", c.ServeGateway}} {
		if l.v != "" {
			if err := identity.ValidName(l.v); err != nil {
				return out, config.Errorf(config.Join(p, l.key), "%v", err)
			}
		}
	}
	if c.Resolver != "" {
		if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
			return out, config.Errorf(config.Join(p, "resolver"), "%q: want host:port", c.Resolver)
		}
	}
	return out, nil
}

func nodeCommand() *Command {
	var netns string
	var asJSON bool
	return &Command{
		Name:    "node",
		Summary: "inspect this node (host firewall)",
		Sub: []*Command{{
			Name:    "firewall",
			Summary: "the node's host firewall",
			Sub: []*Command{{
				Name:    "show",
				Summary: "print the host firewall rules in force, their counters and the egress pins",
				Usage:   "[--netns NAME] [--json]",
				Help: "show reads the kernel's \"inet moat\" table (root is needed): what is in force\n" +
					"now, whether or not an agent runs. Counters count since the agent last applied.",
				Flags: func(fs *flag.FlagSet) {
					fs.StringVar(&netns, "netns", "", "inspect this network namespace (ip netns) instead of the host's")
					fs.BoolVar(&asJSON, "json", false, "print JSON")
				},
				Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
					if fs.NArg() > 0 {
						return usagef("node firewall show takes no arguments")
					}
					path := ""
					if netns != "" {
						if filepath.Base(netns) != netns {
							return usagef("--netns %q: a name as \"ip netns list\" shows it", netns)
						}
						path = "/run/netns/" + netns
					}
					st, err := firewall.Show(path)
					if err != nil {
						return err
					}
					if asJSON {
						enc := json.NewEncoder(e.Stdout)
						enc.SetIndent("", "  ")
						return enc.Encode(st)
					}
					st.Format(e.Stdout)
					return nil
				},
			}},
		}},
	}
}
