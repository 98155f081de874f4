package cli

import (
	"context"
	"flag"
	"fmt"

	"moat/internal/agent"
	"moat/internal/config"
	"moat/internal/identity"
)

// nodeFlags declares the flags of a node agent's own settings onto c,
// shared by "moat agent" and "moat egress".
func nodeFlags(fs *flag.FlagSet, c *agent.File) {
	fs.StringVar(&c.DataDir, "data-dir", "", "directory of the node's identity and caches (required)")
	fs.StringVar(&c.Server, "server", "127.0.0.1:7400", "control plane servers: host:port[,host:port...] (a name may resolve to several)")
	fs.StringVar(&c.Join, "join", "", "one-time join token (first start only)")
	fs.StringVar(&c.Node, "node", "", "this node's name (required)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:15443", "mesh port (mutual TLS), published to peers")
	fs.StringVar(&c.Socket, "socket", "", "SPIFFE Workload API socket path, reachable by every local uid (default DATA_DIR.public/workload.sock)")
	fs.BoolVar(&c.RequireUID, "require-uid", false, "serve an SVID only to the uid its registration names")
	fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&c.MemoryLimit, "memory-limit", "", "soft memory limit, e.g. 64MiB, or off (default 32MiB, or GOMEMLIMIT when set)")
	fs.IntVar(&c.Procs, "procs", 0, "threads running the agent's Go code at once (default 1, or GOMAXPROCS when set)")
	fs.StringVar(&c.Firewall.Mode, "firewall", "", "host firewall: off (default), audit or enforce")
	fs.StringVar(&c.Egress.Proxy, "egress-proxy", "", "loopback address of the HTTP CONNECT egress proxy (HTTPS_PROXY)")
	fs.StringVar(&c.Egress.SNI, "egress-sni", "", "loopback address of the TLS (SNI) egress listener")
	fs.BoolVar(&c.Egress.Direct, "egress-direct", false, "this node connects out itself rather than through the egress gateway")
	fs.StringVar(&c.Egress.Gateway, "egress-gateway", "", "the egress gateway's service (default egress)")
	fs.StringVar(&c.Access.User, "access-user", "", "local user break-glass shells run as (empty: no shells on this node)")
	kekFlags(fs, &c.KEK)
	logFlags(fs, &c.Log)
}

func agentCommand() *Command {
	var c agent.File
	var file *string
	var validate *bool
	return &Command{
		Name:    "agent",
		Summary: "run the node agent (identities, Workload API, mesh proxies)",
		Usage:   "--data-dir DIR --server ADDR --node NODE [--join TOKEN] [flags]",
		Help: "Joins the control plane once (--join is needed only on first start), keeps an\n" +
			"SVID for each service registered on this node, serves them on the SPIFFE\n" +
			"Workload API socket, and runs the mesh: the inbound mTLS port (--listen) and a\n" +
			"loopback listener for each upstream a local service declares.\n\n" +
			"--firewall audit|enforce keeps the node's host firewall (nftables table\n" +
			"\"inet moat\") in step with the registry and intentions: inbound only the mesh\n" +
			"port, permissive services' plaintext ports, the control plane on servers and\n" +
			"what the config's firewall.inbound lists; outbound only the control plane,\n" +
			"peers' mesh ports, DNS and the egress path. --egress-proxy runs an HTTP CONNECT\n" +
			"proxy that takes services out where the intentions' egress rules allow.",
		Flags: func(fs *flag.FlagSet) {
			file = fs.String("config", "", "YAML configuration file (keys as the flags, with _ for -)")
			nodeFlags(fs, &c)
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			return runNode(ctx, e, &c, *validate)
		},
	}
}

// runNode validates c and runs the node agent it describes (or only says
// the configuration is good, with validateOnly).
func runNode(ctx context.Context, e *Env, c *agent.File, validateOnly bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if validateOnly {
		fmt.Fprintln(e.Stdout, "configuration OK")
		return nil
	}
	if limit, _ := c.MemoryLimitBytes(e.Getenv); limit >= 0 && e.SetMemoryLimit != nil {
		e.SetMemoryLimit(limit)
	}
	if n := c.ProcsToUse(e.Getenv); n > 0 && e.SetMaxProcs != nil {
		e.SetMaxProcs(n)
	}
	n, err := startNode(ctx, e, c)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// egressCommand runs a node agent that is the fleet's egress gateway: the
// one node whose firewall lets the egress path out to the internet.
func egressCommand() *Command {
	var c agent.File
	var file *string
	var validate *bool
	var service, resolver string
	return &Command{
		Name:    "egress",
		Summary: "run the egress gateway (a node agent that takes services out to allowed hosts)",
		Usage:   "--data-dir DIR --server ADDR --node NODE [--join TOKEN] [--service egress] [flags]",
		Help: "egress runs a node agent that serves the egress gateway as --service, which\n" +
			"must be registered on the node (moat svc register --node NODE --name egress\n" +
			"--port 15080). Agents of nodes that may not connect out themselves send their\n" +
			"services' egress here over the mesh; this node decides by the intentions'\n" +
			"egress rules, resolves allowed names itself and connects only to what it\n" +
			"resolved (pinned in its host firewall), and records every flow.",
		Flags: func(fs *flag.FlagSet) {
			file = fs.String("config", "", "YAML configuration file (the agent's keys)")
			nodeFlags(fs, &c)
			fs.StringVar(&service, "service", "egress", "the service the egress gateway is registered as")
			fs.StringVar(&resolver, "resolver", "", "DNS server (host:port) for allowed names (default: the system's)")
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("egress takes no arguments")
			}
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := identity.ValidName(service); err != nil {
				return config.Errorf("service", "%v", err)
			}
			c.Egress.ServeGateway, c.Egress.Direct = service, true
			if resolver != "" {
				c.Egress.Resolver = resolver
			}
			return runNode(ctx, e, &c, *validate)
		},
	}
}
