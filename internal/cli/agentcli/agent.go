// Package agentcli is the command line of the node agent: "moat agent",
// "moat egress" and cmd/moat-agent are built from it, and the gateway
// starts its co-located node with it. It links the agent and nothing of
// the control plane, the gateway or the dashboard.
package agentcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"moat/internal/agent"
	"moat/internal/cli/cmdline"
	"moat/internal/config"
	"moat/internal/identity"
	"moat/internal/metrics"
)

// NodeFlags declares the flags of a node agent's own settings onto c,
// shared by "moat agent" and "moat egress".
func NodeFlags(fs *flag.FlagSet, c *agent.File) {
	fs.StringVar(&c.DataDir, "data-dir", "", "directory of the node's identity and caches (required)")
	fs.StringVar(&c.Server, "server", "127.0.0.1:7400", "control plane servers: host:port[,host:port...] (a name may resolve to several)")
	JoinFlags(fs, c)
	fs.StringVar(&c.Node, "node", "", "this node's name (required)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:15443", "mesh port (mutual TLS), published to peers")
	fs.StringVar(&c.Socket, "socket", "", "SPIFFE Workload API socket path, reachable by every local uid (default DATA_DIR.public/workload.sock)")
	fs.BoolVar(&c.RequireUID, "require-uid", false, "serve an SVID only to the uid its registration names")
	fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
	fs.StringVar(&c.MemoryLimit, "memory-limit", "", "soft memory limit, e.g. 64MiB, or off (default 32MiB, or GOMEMLIMIT when set)")
	fs.IntVar(&c.Procs, "procs", 0, "threads running the agent's Go code at once (default 1, or GOMAXPROCS when set)")
	fs.StringVar(&c.StreamBuffer, "stream-buffer", "", "most the inbound mesh streams hold undelivered to their apps before the caller holding the most is cut, e.g. 128MiB (default 64MiB)")
	fs.IntVar(&c.GCPercent, "gc-percent", 0, "heap growth in percent before the next collection, 10 to 1000 (default 50, or GOGC when set)")
	fs.StringVar(&c.Firewall.Mode, "firewall", "", "host firewall: off (default), audit or enforce")
	fs.StringVar(&c.Egress.Proxy, "egress-proxy", "", "loopback address of the HTTP CONNECT egress proxy (HTTPS_PROXY)")
	fs.StringVar(&c.Egress.SNI, "egress-sni", "", "loopback address of the TLS (SNI) egress listener")
	fs.BoolVar(&c.Egress.Direct, "egress-direct", false, "this node connects out itself rather than through the egress gateway")
	fs.StringVar(&c.Egress.Gateway, "egress-gateway", "", "the egress gateway's service (default egress)")
	fs.StringVar(&c.Access.User, "access-user", "", "local user break-glass shells run as (empty: no shells on this node)")
	cmdline.KEKFlags(fs, &c.KEK)
	cmdline.LogFlags(fs, &c.Log)
}

// JoinFlags declares --join and --join-file onto c, shared by the
// agent, egress and gateway commands.
func JoinFlags(fs *flag.FlagSet, c *agent.File) {
	fs.StringVar(&c.Join, "join", "", "one-time join token (first start only); visible to local users in the process list: prefer --join-file or "+agent.JoinEnv)
	fs.StringVar(&c.JoinFile, "join-file", "", "file holding the one-time join token, readable by its owner only (first start only)")
}

// CheckJoin says on stderr what a join token given as --join costs (the
// process's argv is readable by other local users), and checks the
// configuration file named by --config (file; "" for none) when it gives
// the token as join: (agent.CheckJoinInConfig): refused when every local
// user may read it, warned about when others may.
func CheckJoin(e *cmdline.Env, fs *flag.FlagSet, file string) error {
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "join" {
			fmt.Fprintf(e.Stderr, "warning: other local users may read a process's command line, --join's token with it: give it with --join-file or %s\n", agent.JoinEnv)
		}
	})
	if file == "" {
		return nil
	}
	warning, err := agent.CheckJoinInConfig(file)
	if warning != "" {
		fmt.Fprintf(e.Stderr, "warning: %s\n", warning)
	}
	return err
}

// AgentCommand is "moat agent".
func AgentCommand() *cmdline.Command {
	var c agent.File
	var file *string
	var validate *bool
	return &cmdline.Command{
		Name:    "agent",
		Summary: "run the node agent (identities, Workload API, mesh proxies)",
		Usage:   "--data-dir DIR --server ADDR --node NODE [--join-file FILE] [flags]",
		Help: "Joins the control plane once (a join token is needed only on first start:\n" +
			"--join-file FILE, readable by its owner only, or MOAT_JOIN_TOKEN; --join TOKEN\n" +
			"puts it where every local user may read it), keeps an SVID for each service\n" +
			"registered on this node, serves them on the SPIFFE Workload API socket, and\n" +
			"runs the mesh: the inbound mTLS port (--listen) and a loopback listener for\n" +
			"each upstream a local service declares.\n\n" +
			"--firewall audit|enforce keeps the node's host firewall (nftables table\n" +
			"\"inet moat\") in step with the registry and intentions: inbound only the mesh\n" +
			"port, permissive services' plaintext ports, the control plane on servers and\n" +
			"what the config's firewall.inbound lists; outbound only the control plane,\n" +
			"peers' mesh ports, DNS and the egress path. Other local users' DNS goes to the\n" +
			"agent's DNS filter, which resolves only allowed names (firewall.dns).\n" +
			"--egress-proxy runs an HTTP CONNECT proxy that takes services out where the\n" +
			"intentions' egress rules allow.",
		Flags: func(fs *flag.FlagSet) {
			file = fs.String("config", "", "YAML configuration file (keys as the flags, with _ for -)")
			NodeFlags(fs, &c)
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *cmdline.Env, fs *flag.FlagSet) error {
			if err := cmdline.WithConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := CheckJoin(e, fs, *file); err != nil {
				return err
			}
			return runNode(ctx, e, &c, *validate)
		},
		Sub: []*cmdline.Command{WitnessCommand(), FloorCommand()},
	}
}

// WitnessCommand is "moat agent witness": what the node's agent keeps of
// the control plane's audit log.
func WitnessCommand() *cmdline.Command {
	var dataDir string
	reset := &cmdline.Command{
		Name:    "reset",
		Summary: "drop the audit checkpoint this node witnessed, after a deliberate restore of the control plane",
		Usage:   "--data-dir DIR",
		Help: "The agent keeps the newest checkpoint of the control plane's audit log it\n" +
			"checked (DIR/node/audit.checkpoint) and refuses a log that does not extend\n" +
			"it: a log cut back or rewritten, and also one restored from a backup on\n" +
			"purpose. After such a restore, with the agent stopped, reset prints the\n" +
			"checkpoint it drops (its size and root, for the record) and moves it to\n" +
			"DIR/node/audit.checkpoint.dropped-TIME, where moat audit verify --trusted\n" +
			"can still check a log against it. The agent then trusts the next\n" +
			"checkpoint it sees on first use, as after its join, and logs that it did\n" +
			"(\"audit: no checkpoint witnessed before\", with its size and root). Refused\n" +
			"while the agent runs on DIR.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", "", "the agent's data directory (required)")
		},
		Run: func(ctx context.Context, e *cmdline.Env, fs *flag.FlagSet) error {
			if err := cmdline.NoArgs(fs, "witness reset"); err != nil {
				return err
			}
			if dataDir == "" {
				return cmdline.Usagef("witness reset: --data-dir is required")
			}
			r, err := agent.ResetWitness(dataDir, time.Now())
			if errors.Is(err, agent.ErrNoWitnessed) {
				fmt.Fprintf(e.Stdout, "%s holds no witnessed audit checkpoint; nothing to drop\n", dataDir)
				return nil
			}
			if err != nil {
				return err
			}
			if r.Unverified != "" {
				fmt.Fprintf(e.Stdout, "dropped the audit checkpoint this node witnessed, which does not verify: %s\n", r.Unverified)
			} else {
				fmt.Fprintf(e.Stdout, "dropped the audit checkpoint this node witnessed: %d entries, root %s\n", r.Checkpoint.Size, r.Checkpoint.Root)
			}
			fmt.Fprintf(e.Stdout, "kept as %s\nthe agent trusts the next checkpoint it sees on first use\n", r.Kept)
			return nil
		},
	}
	return &cmdline.Command{Name: "witness", Summary: "the audit checkpoint this node witnessed", Sub: []*cmdline.Command{reset}}
}

// FloorCommand is "moat agent floor": the versions of the control plane's
// state below which the node's agent refuses it.
func FloorCommand() *cmdline.Command {
	var dataDir string
	reset := &cmdline.Command{
		Name:    "reset",
		Summary: "drop the state versions this node holds, to take a control plane put back on purpose",
		Usage:   "--data-dir DIR",
		Help: "The agent keeps the highest versions of the control plane's state it took\n" +
			"(DIR/" + agent.FloorFile + ": the store's restore epoch, the store revision of the\n" +
			"last snapshot, the revocation list's and the policy's versions, the\n" +
			"break-glass grants it saw revoked, until they would have ended, and the\n" +
			"revocations it carried across a restore) and refuses state older than\n" +
			"them, so that no server can take back a revocation it sent: not a lagging\n" +
			"or replayed one, nor one of an earlier epoch. A control plane restored with\n" +
			"moat backup restore has a newer epoch and is taken without a reset, the\n" +
			"revocations the node held carried over. A control plane put back on purpose\n" +
			"without a newer epoch (one of an earlier epoch, a store copied back by\n" +
			"hand) is refused, as are a restore whose epoch is not above the node's (made\n" +
			"on a clock behind) and one that would leave more revocations to carry than\n" +
			"the node keeps. With the agent stopped, reset prints what it drops and\n" +
			"removes the file; the agent then takes the next snapshot as it comes.\n" +
			"Refused while the agent runs on DIR.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dataDir, "data-dir", "", "the agent's data directory (required)")
		},
		Run: func(ctx context.Context, e *cmdline.Env, fs *flag.FlagSet) error {
			if err := cmdline.NoArgs(fs, "floor reset"); err != nil {
				return err
			}
			if dataDir == "" {
				return cmdline.Usagef("floor reset: --data-dir is required")
			}
			d, err := agent.ResetFloor(dataDir)
			if errors.Is(err, agent.ErrNoFloor) {
				fmt.Fprintf(e.Stdout, "%s holds no state floor; nothing to drop\n", dataDir)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "dropped the state floor of this node: store epoch %d, store revision %d, revocations version %d, policy version %d, %d break-glass grants held revoked, %d revocations carried across a restore\n",
				d.Epoch, d.Revision, d.Revocations, d.Policy, d.Grants, d.Carried)
			fmt.Fprintln(e.Stdout, "the agent takes the control plane's next snapshot as it comes")
			return nil
		},
	}
	return &cmdline.Command{Name: "floor", Summary: "the state versions below which this node refuses the control plane's", Sub: []*cmdline.Command{reset}}
}

// runNode validates c and runs the node agent it describes (or only says
// the configuration is good, with validateOnly).
func runNode(ctx context.Context, e *cmdline.Env, c *agent.File, validateOnly bool) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if validateOnly {
		fmt.Fprintln(e.Stdout, "configuration OK")
		return nil
	}
	if e.KeepMonitorAwake != nil {
		if err := e.KeepMonitorAwake(); err != nil {
			fmt.Fprintf(e.Stderr, "agent: %v; running with the runtime's default\n", err)
		}
	}
	if limit, _ := c.MemoryLimitBytes(e.Getenv); limit >= 0 && e.SetMemoryLimit != nil {
		e.SetMemoryLimit(limit)
	}
	if n := c.ProcsToUse(e.Getenv); n > 0 && e.SetMaxProcs != nil {
		e.SetMaxProcs(n)
	}
	if n := c.GCPercentToUse(e.Getenv); n > 0 && e.SetGCPercent != nil {
		e.SetGCPercent(n)
	}
	n, err := StartNode(ctx, e, c)
	if err != nil {
		return err
	}
	n.freeOSMemory = e.FreeOSMemory
	return n.Run(ctx)
}

// EgressCommand runs a node agent that is the fleet's egress gateway: the
// one node whose firewall lets the egress path out to the internet.
func EgressCommand() *cmdline.Command {
	var c agent.File
	var file *string
	var validate *bool
	var service, resolver string
	return &cmdline.Command{
		Name:    "egress",
		Summary: "run the egress gateway (a node agent that takes services out to allowed hosts)",
		Usage:   "--data-dir DIR --server ADDR --node NODE [--join-file FILE] [--service egress] [flags]",
		Help: "egress runs a node agent that serves the egress gateway as --service, which\n" +
			"must be registered on the node (moat svc register --node NODE --name egress\n" +
			"--port 15080). Agents of nodes that may not connect out themselves send their\n" +
			"services' egress here over the mesh; this node decides by the intentions'\n" +
			"egress rules, resolves allowed names itself and connects only to what it\n" +
			"resolved (pinned in its host firewall), and records every flow.",
		Flags: func(fs *flag.FlagSet) {
			file = fs.String("config", "", "YAML configuration file (the agent's keys)")
			NodeFlags(fs, &c)
			fs.StringVar(&service, "service", "egress", "the service the egress gateway is registered as")
			fs.StringVar(&resolver, "resolver", "", "DNS server (host:port) for allowed names (default: the system's)")
			validate = fs.Bool("validate", false, "check the configuration and exit")
		},
		Run: func(ctx context.Context, e *cmdline.Env, fs *flag.FlagSet) error {
			if err := cmdline.NoArgs(fs, "egress"); err != nil {
				return err
			}
			if err := cmdline.WithConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := identity.ValidName(service); err != nil {
				return config.Errorf("service", "%v", err)
			}
			c.Egress.ServeGateway, c.Egress.Direct = service, true
			if resolver != "" {
				c.Egress.Resolver = resolver
			}
			if err := CheckJoin(e, fs, *file); err != nil {
				return err
			}
			return runNode(ctx, e, &c, *validate)
		},
	}
}

// Node is a started agent with its metrics.
type Node struct {
	Agent        *agent.Agent
	metrics      *metrics.Registry
	metricsAddr  string
	log          *slog.Logger
	meshAddr     string
	freeOSMemory func() // Env.FreeOSMemory
}

// Run runs the agent and its metrics until ctx ends or one fails. It logs
// "agent ready" once the node serves what the control plane's first
// snapshot holds (agent.WaitReady): its mesh has the registry and the
// policy, and it holds an SVID for every service registered on it.
func (n *Node) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Agent.Run(ctx) })
	g.Go(func() error {
		if n.Agent.WaitReady(ctx) == nil {
			// The heap start-up left behind is garbage: give it back.
			if n.freeOSMemory != nil {
				n.freeOSMemory()
			}
			var local []string
			for _, r := range n.Agent.LocalServices() {
				local = append(local, r.Name)
			}
			n.log.Info("agent ready", "mesh", n.meshAddr, "services", strings.Join(local, ","))
		}
		return nil
	})
	g.Go(func() error { return cmdline.ServeMetrics(ctx, n.metricsAddr, n.metrics) })
	return g.Wait()
}

// StartNode starts the node agent c describes, with its own keyring and
// metrics registry.
func StartNode(ctx context.Context, e *cmdline.Env, c *agent.File) (*Node, error) {
	join, jerr := c.JoinToken(e.Getenv)
	if jerr != nil {
		return nil, jerr
	}
	logger := c.Log.Logger(e.Stderr)
	socket := c.SocketPath()
	reg := cmdline.NewRegistry()
	// The agent's own keyring, under its KEK: a wrong KEK stops it here.
	kr, _, err := cmdline.OpenKeyring(e, &c.KEK, c.DataDir, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.DataDir, err)
	}
	acc, err := c.Access.Config("access")
	if err != nil {
		return nil, err
	}
	fw, err := c.Firewall.Config("firewall")
	if err != nil {
		return nil, err
	}
	eg, err := c.Egress.Config("egress")
	if err != nil {
		return nil, err
	}
	streamBuffer, err := c.StreamBufferBytes()
	if err != nil {
		return nil, err
	}
	a, err := agent.New(ctx, agent.Config{
		DataDir: c.DataDir, Server: c.Server, Join: join, Node: c.Node, MeshAddr: c.Listen,
		Socket: socket, RequireUID: c.RequireUID, Logger: logger, Metrics: reg, Keyring: kr,
		Firewall: fw, Egress: eg, Access: acc, StreamBuffer: streamBuffer,
	})
	if err != nil {
		return nil, err
	}
	return &Node{Agent: a, metrics: reg, metricsAddr: c.Metrics, log: logger, meshAddr: c.Listen}, nil
}

// Root is the command tree of cmd/moat-agent: it runs the node agent as
// "moat agent" does, with the same flags, and has "egress", "witness" and
// "version" as subcommands.
func Root() *cmdline.Command {
	c := AgentCommand()
	c.Name = "moat-agent"
	c.Sub = []*cmdline.Command{EgressCommand(), WitnessCommand(), cmdline.VersionCommand("moat-agent")}
	return c
}
