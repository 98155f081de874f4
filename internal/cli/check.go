package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"

	"moat/internal/check"
)

func checkCommand() *Command {
	var (
		format, failOn, explain, reach, root string
		varFiles                             stringList
		rules                                bool
	)
	return &Command{
		Name:    "check",
		Summary: "prove what is reachable from where in Terraform and moat configs",
		Usage:   "[flags] PATH...",
		Help: "Check Terraform directories (HCL), Terraform plans (terraform show -json) and moat's\n" +
			"policy, server and gateway configs. Network findings carry the path, hop by hop,\n" +
			"from the internet or a peer to the resource. Suppress a finding in the source with\n" +
			"a comment above the block: # moat:ignore RULE-ID reason (the reason is required).\n" +
			"Exits 3 when a finding is at or above --fail-on.",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&format, "format", "text", "output format: "+strings.Join(check.Formats, ", "))
			fs.StringVar(&failOn, "fail-on", "high", "exit non-zero for an unsuppressed finding at or above this severity (info, low, medium, high, critical; \"none\" never)")
			fs.StringVar(&explain, "explain", "", "print the rule `ID` (or finding RULE@address) with every finding's whole path")
			fs.Var(&varFiles, "var-file", "extra .tfvars `file` (repeatable)")
			fs.StringVar(&root, "root", "", "the directory `tree` Terraform code may read modules and files from (default: the repository holding each directory, else the whole filesystem)")
			fs.BoolVar(&rules, "rules", false, "list the rules and exit")
			fs.StringVar(&reach, "reach", "", "list every source (the internet, each peered network, each subnet and resource of its VPC) that can reach the resource at `ADDRESS`, by port, with paths")
		},
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if rules {
				return check.WriteRules(e.Stdout)
			}
			var threshold check.Severity
			never := failOn == "none"
			if !never {
				s, err := check.ParseSeverity(failOn)
				if err != nil {
					return usagef("check: --fail-on: %v", strings.TrimPrefix(err.Error(), "check: "))
				}
				threshold = s
			}
			if fs.NArg() == 0 {
				return usagef("check: give at least one PATH (a Terraform directory, a plan .json or a moat .yaml)")
			}
			if reach != "" {
				if format != "text" && format != "json" {
					return usagef("check: --reach prints text or json, not %q", format)
				}
				acc, err := check.Reachability(ctx, check.Config{Paths: fs.Args(), VarFiles: varFiles, Root: root}, reach)
				if err != nil {
					return err
				}
				return check.WriteAccess(e.Stdout, reach, acc, format)
			}
			if explain == "" {
				ok := false
				for _, f := range check.Formats {
					ok = ok || f == format
				}
				if !ok {
					return usagef("check: --format %q: want one of %s", format, strings.Join(check.Formats, ", "))
				}
			}
			rep, err := check.Run(ctx, check.Config{Paths: fs.Args(), VarFiles: varFiles, Root: root,
				Logger: slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				return err
			}
			if explain != "" {
				return check.Explain(e.Stdout, rep, explain)
			}
			if err := check.Write(e.Stdout, rep, format); err != nil {
				return err
			}
			if max, any := rep.Max(); any && !never && max >= threshold {
				return &ExitError{Code: 3, Msg: fmt.Sprintf("check: findings at or above %s", threshold)}
			}
			return nil
		},
	}
}
