package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sync/errgroup"

	"moat/internal/agent"
	"moat/internal/cli/agentcli"
	"moat/internal/config"
	"moat/internal/gateway"
	"moat/internal/identity"
)

// gatewayConfig is how "moat gateway" joins the mesh: it runs a node agent
// of its own and reaches services through that agent's mesh as the service
// it is registered as (by default "gateway"), so intentions govern it like
// any other caller.
type gatewayConfig struct {
	agent.File
	Service string
}

func gatewayCommand() *Command {
	var (
		cfgFile  string
		validate bool
		c        gatewayConfig
	)
	return &Command{
		Name:    "gateway",
		Summary: "run the edge gateway (TLS, WAF, rate limits, routes into the mesh)",
		Usage:   "--config gateway.yaml --data-dir DIR --server ADDR --node NODE [--join-file FILE] [flags]",
		Help: "gateway serves HTTPS with the OWASP Core Rule Set in front of the services its\n" +
			"routes name, and answers plain HTTP with a redirect. It joins the control plane\n" +
			"as a node (--join-file or MOAT_JOIN_TOKEN is needed on first start only) and reaches services through\n" +
			"that node's mesh with the SVID of --service, which must be registered on the\n" +
			"node (moat svc register --node NODE --name gateway --port 8443).\n\n" +
			"The config file is watched: a valid change applies at once, an invalid one is\n" +
			"refused and the running configuration stays (SIGHUP forces a reload).",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfgFile, "config", "gateway.yaml", "gateway configuration file")
			fs.BoolVar(&validate, "validate", false, "check the configuration and exit")
			fs.StringVar(&c.DataDir, "data-dir", "", "directory of the gateway node's identity and caches (required)")
			fs.StringVar(&c.Server, "server", "127.0.0.1:7400", "control plane servers: host:port[,host:port...] (a name may resolve to several)")
			agentcli.JoinFlags(fs, &c.File)
			fs.StringVar(&c.Node, "node", "", "this gateway node's name (required)")
			fs.StringVar(&c.Listen, "mesh-listen", "127.0.0.1:15443", "the node's mesh port")
			fs.StringVar(&c.Service, "service", "gateway", "the service the gateway calls as")
			fs.StringVar(&c.Metrics, "metrics", "", "serve Prometheus /metrics on this address")
			fs.StringVar(&c.Firewall.Mode, "firewall", "", "host firewall of the edge node: off (default), audit or enforce; the gateway's ports stay open")
			fs.StringVar(&c.Egress.ServeGateway, "serve-egress", "", "also be the fleet's egress gateway, as this registered service (e.g. egress)")
			fs.StringVar(&c.Egress.Resolver, "egress-resolver", "", "DNS server (host:port) the egress gateway resolves allowed names with (default: the system's)")
			kekFlags(fs, &c.KEK) // seals the node's keys and spool, as for an agent
			logFlags(fs, &c.Log)
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "gateway"); err != nil {
				return err
			}
			if validate {
				// The node's settings given as flags, then the gateway's
				// file; what only a running node needs (its data
				// directory) is not asked for.
				if err := c.ValidateFile(); err != nil {
					return err
				}
				if err := identity.ValidName(c.Service); err != nil {
					return config.Errorf("service", "%v", err)
				}
				s, err := gateway.LoadFile(cfgFile, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "%s: ok (%d routes)\n", cfgFile, len(s.Routes))
				return nil
			}
			c.Egress.Direct = c.Egress.ServeGateway != ""
			if err := c.Validate(); err != nil {
				return err
			}
			if err := identity.ValidName(c.Service); err != nil {
				return config.Errorf("service", "%v", err)
			}
			if err := agentcli.CheckJoin(e, fs, ""); err != nil { // the node's settings are flags alone
				return err
			}
			log := c.Log.Logger(e.Stderr)
			n, err := agentcli.StartNode(ctx, e, &c.File)
			if err != nil {
				return err
			}
			a := n.Agent
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			grp, gctx := errgroup.WithContext(runCtx)
			// The node carries the gateway's requests into the mesh, so it
			// stops after the gateway has: a signal starts the gateway's
			// shutdown grace, and the requests and WebSockets it lets
			// finish still need their tunnels. A node that fails still
			// stops the gateway (through gctx).
			nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
			defer stopNode()
			grp.Go(func() error { return n.Run(nodeCtx) })
			fail := func(err error) error {
				cancel()
				stopNode()
				return errors.Join(err, grp.Wait())
			}
			// Routes are checked against the registry: wait for it.
			if err := a.WaitSynced(gctx); err != nil {
				return fail(fmt.Errorf("gateway: no registry from the control plane: %w", err))
			}
			g, err := gateway.New(gateway.Config{
				File:   cfgFile,
				Logger: log,
				Dial: func(ctx context.Context, service string, port int) (net.Conn, error) {
					return a.Mesh().Dial(ctx, c.Service, service, port)
				},
				CredentialsChanged: a.SVIDChanged,
				Services:           a.Services,
				Events:             a.Flows(),
			})
			if err != nil {
				return fail(err)
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						_ = g.Reload()
					}
				}
			}()
			// The edge node's firewall keeps the gateway's public ports open.
			var public []uint16
			for _, addr := range []net.Addr{g.Addr(), g.RedirectAddr()} {
				if ta, ok := addr.(*net.TCPAddr); ok && ta != nil {
					public = append(public, uint16(ta.Port))
				}
			}
			a.SetPublicPorts(public)
			log.Info("gateway: serving", "https", g.Addr().String(), "redirect", fmt.Sprint(g.RedirectAddr()), "as", c.Service)
			grp.Go(func() error {
				defer stopNode()
				return g.Run(gctx)
			})
			return grp.Wait()
		},
	}
}
