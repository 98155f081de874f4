package cli

import (
	"context"
	"flag"
	"path/filepath"

	"moat/internal/firewall"
)

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
					if err := noArgs(fs, "node firewall show"); err != nil {
						return err
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
						return printJSON(e.Stdout, st)
					}
					st.Format(e.Stdout)
					return nil
				},
			}},
		}},
	}
}
