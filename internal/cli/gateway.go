package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"moat/internal/gateway"
)

func gatewayCommand() *Command {
	var (
		cfgFile   string
		validate  bool
		upstreams stringList
		logLevel  string
	)
	return &Command{
		Name:    "gateway",
		Summary: "run the edge gateway (TLS, WAF, rate limits, routes)",
		Usage:   "--config gateway.yaml [--upstream service=host:port ...] [--validate]",
		Help: "gateway serves HTTPS with the OWASP Core Rule Set in front of the services its\n" +
			"routes name, and answers plain HTTP with a redirect. The config file is\n" +
			"watched: a valid change applies at once, an invalid one is refused and the\n" +
			"running configuration stays (SIGHUP forces a reload).\n\n" +
			"Until the mesh is wired in, each service a route names is reached directly at\n" +
			"the address given with --upstream.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfgFile, "config", "gateway.yaml", "gateway configuration file")
			fs.BoolVar(&validate, "validate", false, "check the configuration and exit")
			fs.Var(&upstreams, "upstream", "service=host:port: where to reach a service (repeatable)")
			fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("gateway takes no arguments")
			}
			addrs := map[string]string{}
			for _, u := range upstreams {
				name, addr, ok := strings.Cut(u, "=")
				if !ok || name == "" {
					return usagef("gateway: --upstream %q: want service=host:port", u)
				}
				if _, _, err := net.SplitHostPort(addr); err != nil {
					return usagef("gateway: --upstream %q: want service=host:port", u)
				}
				addrs[name] = addr
			}
			if validate {
				s, err := gateway.LoadFile(cfgFile, nil)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "%s: ok (%d routes)\n", cfgFile, len(s.Routes))
				return nil
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("gateway: --log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: level}))
			g, err := gateway.New(gateway.Config{
				File:   cfgFile,
				Logger: log,
				Dial: func(ctx context.Context, service string, port int) (net.Conn, error) {
					addr, ok := addrs[service]
					if !ok {
						return nil, fmt.Errorf("gateway: no --upstream for service %q", service)
					}
					var d net.Dialer
					return d.DialContext(ctx, "tcp", addr)
				},
			})
			if err != nil {
				return err
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
			log.Info("gateway: serving", "https", g.Addr().String(), "redirect", fmt.Sprint(g.RedirectAddr()))
			return g.Run(ctx)
		},
	}
}
