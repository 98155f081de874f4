// Package cli is moat's command line: it turns arguments, flags, environment
// variables and files into typed configs and runs the parts they name. It is
// the only package that wires the services together, and the only place that
// listens for signals. The command tree itself is cmdline's; the agent's
// commands are agentcli's, which cmd/moat-agent links alone.
package cli

import (
	"context"
	"io"
	"sort"

	"moat/internal/cli/agentcli"
	"moat/internal/cli/cmdline"
)

// The command tree's types and shared helpers, under the names the
// commands of this package use.
type (
	Env        = cmdline.Env
	Command    = cmdline.Command
	ExitError  = cmdline.ExitError
	UsageError = cmdline.UsageError
	stringList = cmdline.StringList
)

var (
	usagef         = cmdline.Usagef
	noArgs         = cmdline.NoArgs
	printJSON      = cmdline.PrintJSON
	writeJSONLine  = cmdline.WriteJSONLine
	withConfigFile = cmdline.WithConfigFile
	kekFlags       = cmdline.KEKFlags
	logFlags       = cmdline.LogFlags
	openKeyring    = cmdline.OpenKeyring
	newRegistry    = cmdline.NewRegistry
	serveMetrics   = cmdline.ServeMetrics
	envDefault     = cmdline.EnvDefault
)

// Main runs moat with args (without the program name) and returns the exit
// code. SIGINT and SIGTERM cancel the running command's context.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return cmdline.Main(root(), args, stdin, stdout, stderr)
}

// Run runs the command named by args and returns its exit code.
func Run(ctx context.Context, e *Env, args []string) int {
	return cmdline.Run(ctx, e, root(), args)
}

func root() *Command {
	return &Command{
		Name:    "moat",
		Summary: "isolation and controlled exposure for a fleet of servers",
		Help: "moat gives every service a short-lived SPIFFE identity, connects services only\n" +
			"over mutual TLS where an explicit rule allows it, and exposes them through one\n" +
			"edge gateway. Run \"moat dev\" to see the whole system in one process.",
		Sub: commands(),
	}
}

// commands is the table of top-level commands.
func commands() []*Command {
	cmds := []*Command{
		accessCommand(),
		adminsCommand(),
		agentcli.AgentCommand(),
		alertsCommand(),
		auditCommand(),
		caCommand(),
		checkCommand(),
		demoCommand(),
		devCommand(),
		agentcli.EgressCommand(),
		flowsCommand(),
		gatewayCommand(),
		keysCommand(),
		nodeCommand(),
		backupCommand(),
		policyCommand(),
		revokeCommand(),
		serverCommand(),
		sshCommand(),
		svcCommand(),
		tokenCommand(),
		uiCommand(),
		cmdline.VersionCommand("moat"),
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return cmds
}
