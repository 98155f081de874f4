// Package cli is moat's command line: it turns arguments, flags, environment
// variables and files into typed configs and runs the parts they name. It is
// the only package that wires the services together, and the only place that
// listens for signals.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Env is what a command may touch of the outside world. Tests fill it with
// buffers and a map of variables.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// Command is one subcommand. A command has either Run or Sub.
type Command struct {
	Name    string
	Summary string // one line, shown in the parent's help
	Usage   string // the argument synopsis after the command path
	Help    string // paragraphs shown by -h
	// Flags declares the command's flags on fs; Run receives fs after parsing.
	Flags func(fs *flag.FlagSet)
	Run   func(ctx context.Context, e *Env, fs *flag.FlagSet) error
	Sub   []*Command
}

// ExitError ends a command with a chosen exit code and message (possibly
// empty, when the command already printed what it found).
type ExitError struct {
	Code int
	Msg  string
}

func (e *ExitError) Error() string { return e.Msg }

// UsageError reports bad arguments; the exit code is 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// Main runs moat with args (without the program name) and returns the exit
// code. SIGINT and SIGTERM cancel the running command's context.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}, args)
}

// Run runs the command named by args and returns its exit code.
func Run(ctx context.Context, e *Env, args []string) int {
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	err := dispatch(ctx, e, root(), []string{"moat"}, args)
	if err == nil {
		return 0
	}
	var ue *UsageError
	var xe *ExitError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.Stderr, "moat: %s\n", ue.Msg)
		return 2
	case errors.As(err, &xe):
		if xe.Msg != "" {
			fmt.Fprintf(e.Stderr, "moat: %s\n", xe.Msg)
		}
		return xe.Code
	default:
		fmt.Fprintf(e.Stderr, "moat: %v\n", err)
		return 1
	}
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
		agentCommand(),
		alertsCommand(),
		auditCommand(),
		caCommand(),
		checkCommand(),
		devCommand(),
		flowsCommand(),
		gatewayCommand(),
		keysCommand(),
		backupCommand(),
		policyCommand(),
		revokeCommand(),
		serverCommand(),
		sshCommand(),
		svcCommand(),
		tokenCommand(),
		versionCommand(),
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return cmds
}

func dispatch(ctx context.Context, e *Env, c *Command, path, args []string) error {
	if c.Sub != nil {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			printHelp(e.Stdout, c, path)
			if len(args) == 0 {
				return usagef("missing subcommand")
			}
			return nil
		}
		for _, s := range c.Sub {
			if s.Name == args[0] {
				return dispatch(ctx, e, s, append(path, s.Name), args[1:])
			}
		}
		return usagef("%s: unknown command %q (see \"%s -h\")", strings.Join(path, " "), args[0], strings.Join(path, " "))
	}
	fs := flag.NewFlagSet(strings.Join(path, " "), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.Flags != nil {
		c.Flags(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(e.Stdout, c, path)
			return err
		}
		return usagef("%s: %v", strings.Join(path, " "), err)
	}
	return c.Run(ctx, e, fs)
}

func printHelp(w io.Writer, c *Command, path []string) {
	name := strings.Join(path, " ")
	if c.Sub != nil {
		fmt.Fprintf(w, "Usage: %s <command> [flags]\n\n", name)
	} else {
		fmt.Fprintf(w, "Usage: %s %s\n\n", name, c.Usage)
	}
	if c.Help != "" {
		fmt.Fprintf(w, "%s\n\n", c.Help)
	} else if c.Summary != "" {
		fmt.Fprintf(w, "%s\n\n", c.Summary)
	}
	if c.Sub != nil {
		fmt.Fprintln(w, "Commands:")
		for _, s := range c.Sub {
			fmt.Fprintf(w, "  %-12s %s\n", s.Name, s.Summary)
		}
		fmt.Fprintf(w, "\nRun \"%s <command> -h\" for a command's flags.\n", name)
		return
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if c.Flags != nil {
		c.Flags(fs)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "Flags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// Version is set at build time with -ldflags "-X moat/internal/cli.Version=...".
var Version = "devel"

func versionCommand() *Command {
	return &Command{
		Name:    "version",
		Summary: "print moat's version",
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("version takes no arguments")
			}
			fmt.Fprintf(e.Stdout, "moat %s\n", Version)
			return nil
		},
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// envDefault returns the environment variable's value, or def when unset.
func envDefault(e *Env, name, def string) string {
	if v := e.Getenv(name); v != "" {
		return v
	}
	return def
}
