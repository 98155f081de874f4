package cli

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"moat/internal/detect"
)

func alertsCommand() *Command {
	return &Command{
		Name:    "alerts",
		Summary: "check alert delivery to Slack, PagerDuty, Alertmanager and webhooks",
		Sub:     []*Command{alertsTestCommand()},
	}
}

func alertsTestCommand() *Command {
	var cfgPath string
	var resolve bool
	return &Command{
		Name:    "test",
		Summary: "send a test alert to every configured sink",
		Usage:   "--config alerts.yaml [--resolve=false]",
		Help: "test reads the alerts file, sends one test alert to each sink (with the file's\n" +
			"retries and backoff) and, when that worked, its resolve, so a paging receiver\n" +
			"closes the incident it opened. It prints one line per delivery and exits 1 when\n" +
			"any failed. Sink URLs and keys are secrets and never appear in the output.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&cfgPath, "config", "", "alerts file (YAML)")
			fs.BoolVar(&resolve, "resolve", true, "also send the resolve of each test alert")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := noArgs(fs, "alerts test"); err != nil {
				return err
			}
			if cfgPath == "" {
				return usagef("alerts test: --config is required")
			}
			s, err := detect.LoadFile(cfgPath, e.Getenv)
			if err != nil {
				return err
			}
			d, err := detect.NewDispatcherFromSettings(s, nil, detect.DispatcherConfig{})
			if err != nil {
				return err
			}
			types := map[string]string{}
			for _, sc := range s.Sinks {
				types[sc.Name] = sc.Type
			}
			tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
			failed := map[string]bool{}
			for _, r := range d.Test(ctx, resolve) {
				res := "ok"
				if r.Err != nil {
					res, failed[r.Sink] = "FAIL", true
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s", res, cell(r.Sink), cell(types[r.Sink]), cell(string(r.Step)))
				if r.Err != nil {
					fmt.Fprintf(tw, "\t%s", cell(r.Err.Error()))
				}
				fmt.Fprintln(tw)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(failed) > 0 {
				return &ExitError{Code: 1, Msg: fmt.Sprintf("alerts test: %d of %d sinks failed", len(failed), len(s.Sinks))}
			}
			return nil
		},
	}
}
