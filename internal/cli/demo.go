package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
)

func demoCommand() *Command {
	var prefix, mode string
	var hold bool
	return &Command{
		Name:    "demo",
		Summary: "runnable demonstrations",
		Sub: []*Command{{
			Name:    "isolation",
			Summary: "the seed architecture on network namespaces: what can reach what (root, Linux)",
			Usage:   "[--prefix NAME-] [--hold]",
			Help: "isolation builds network namespaces for an \"internet\" host, an edge node, an app\n" +
				"node and a db node (and the control plane) on 198.18.0.0/24, joined by veth\n" +
				"pairs to one bridge, runs a moat server, the gateway and egress gateway on edge\n" +
				"and agents on app and db with the host firewall enforcing, a db backend bound\n" +
				"to 0.0.0.0, and prints what can reach what. Everything it created is removed\n" +
				"when it ends (also on Ctrl-C and on error).",
			Flags: func(fs *flag.FlagSet) {
				fs.StringVar(&prefix, "prefix", "", "prefix of the namespaces' names (default moat-demo-XXXX-)")
				fs.StringVar(&mode, "firewall", "enforce", "the agents' firewall mode: enforce or audit")
				fs.BoolVar(&hold, "hold", false, "keep everything running after the checks until Ctrl-C")
			},
			Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
				if err := noArgs(fs, "demo isolation"); err != nil {
					return err
				}
				if runtime.GOOS != "linux" || os.Geteuid() != 0 {
					return errors.New("demo isolation: needs Linux network namespaces and nftables, as root")
				}
				if mode != "enforce" && mode != "audit" {
					return usagef("--firewall %q: want enforce or audit", mode)
				}
				if prefix == "" {
					prefix = randomPrefix()
				}
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				return runIsolationDemo(ctx, e, exe, prefix, mode, hold)
			},
		}},
	}
}

func runIsolationDemo(ctx context.Context, e *Env, exe, prefix, mode string, hold bool) (err error) {
	fmt.Fprintf(e.Stdout, "building namespaces %s{control,internet,edge,app,db} on %s\n", prefix, isoSubnet)
	l, err := newIsoLab(exe, prefix, mode, false, e.Stderr)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(e.Stdout, "cleaning up: processes, namespaces, files")
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := l.start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "started a server, the gateway and egress gateway on edge, agents on app and db (firewall %s); waiting for the mesh\n", mode)
	if err := l.ready(ctx); err != nil {
		for _, n := range []string{"server", "gateway", "app", "db"} {
			fmt.Fprintf(e.Stderr, "--- %s:\n%s\n", n, l.output(n))
		}
		return fmt.Errorf("demo isolation: %w", err)
	}
	bad := 0
	for _, c := range l.checks() {
		got, perr := c.probe()
		verdict := "reachable"
		if perr != nil {
			verdict = "blocked"
		}
		mark := "as expected"
		if (perr == nil) != c.want {
			mark, bad = "UNEXPECTED", bad+1
		}
		detail := got
		if perr != nil {
			detail = perr.Error()
		}
		if len(detail) > 60 {
			detail = detail[:60] + "…"
		}
		fmt.Fprintf(e.Stdout, "  %-76s %-9s %-11s %s\n", c.what, verdict, mark, detail)
	}
	fmt.Fprintf(e.Stdout, "the firewall of db as \"moat node firewall show --netns %s\" prints it:\n", l.db.NS)
	if out, err := l.moat(ctx, nil, "node", "firewall", "show", "--netns", l.db.NS); err == nil {
		fmt.Fprintln(e.Stdout, out)
	}
	if hold {
		fmt.Fprintln(e.Stdout, "holding; Ctrl-C ends the demo")
		<-ctx.Done()
	}
	if bad > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("demo isolation: %d paths did not behave as the intentions say", bad)}
	}
	fmt.Fprintln(e.Stdout, "every path behaved as the intentions say")
	return nil
}
