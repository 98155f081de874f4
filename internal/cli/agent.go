package cli

import (
	"context"
	"flag"
	"fmt"

	"moat/internal/agent"
)

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
			"loopback listener for each upstream a local service declares.",
		Flags: func(fs *flag.FlagSet) {
			file = fs.String("config", "", "YAML configuration file (keys as the flags, with _ for -)")
			fs.StringVar(&c.DataDir, "data-dir", "", "directory of the node's identity and caches (required)")
			fs.StringVar(&c.Server, "server", "127.0.0.1:7400", "control plane servers: host:port[,host:port...] (a name may resolve to several)")
			fs.StringVar(&c.Join, "join", "", "one-time join token (first start only)")
			fs.StringVar(&c.Node, "node", "", "this node's name (required)")
			fs.StringVar(&c.Listen, "listen", "127.0.0.1:15443", "mesh port (mutual TLS), published to peers")
			fs.StringVar(&c.Socket, "socket", "", "SPIFFE Workload API socket path, reachable by every local uid (default DATA_DIR.public/workload.sock)")
			fs.BoolVar(&c.RequireUID, "require-uid", false, "serve an SVID only to the uid its registration names")
			fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
			fs.StringVar(&c.Access.User, "access-user", "", "local user break-glass shells run as (empty: no shells on this node)")
			validate = fs.Bool("validate", false, "check the configuration and exit")
			kekFlags(fs, &c.KEK)
			logFlags(fs, &c.Log)
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := withConfigFile(fs, *file, &c); err != nil {
				return err
			}
			if err := c.Validate(); err != nil {
				return err
			}
			if *validate {
				fmt.Fprintln(e.Stdout, "configuration OK")
				return nil
			}
			n, err := startNode(ctx, e, &c)
			if err != nil {
				return err
			}
			return n.Run(ctx)
		},
	}
}
