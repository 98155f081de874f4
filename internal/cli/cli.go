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
	"runtime"
	"runtime/debug"
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
	// SetMemoryLimit sets the process's soft memory limit (as
	// runtime/debug.SetMemoryLimit); nil leaves it alone, as when commands
	// run inside a test binary that they do not own.
	SetMemoryLimit func(int64) int64
	// SetMaxProcs sets how many threads run Go code at once (as
	// runtime.GOMAXPROCS); nil leaves it alone, as SetMemoryLimit.
	SetMaxProcs func(int) int
}

// Command is one subcommand. It has Run, Sub, or both: a command that runs
// itself unless its first argument names one of its subcommands.
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
	return Run(ctx, &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv, SetMemoryLimit: debug.SetMemoryLimit, SetMaxProcs: runtime.GOMAXPROCS}, args)
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
		demoCommand(),
		devCommand(),
		egressCommand(),
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
		versionCommand(),
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	return cmds
}

func dispatch(ctx context.Context, e *Env, c *Command, path, args []string) error {
	name := commandName(path)
	if c.Sub != nil {
		if len(args) > 0 {
			for _, s := range c.Sub {
				if s.Name == args[0] {
					return dispatch(ctx, e, s, append(path, s.Name), args[1:])
				}
			}
		}
		if c.Run == nil {
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
				printHelp(e.Stdout, c, path)
				if len(args) == 0 {
					return usagef("%smissing subcommand (see \"%s -h\")", prefix(name), strings.Join(path, " "))
				}
				return nil
			}
			return usagef("%sunknown command %q (see \"%s -h\")", prefix(name), args[0], strings.Join(path, " "))
		}
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
		return usagef("%s%v", prefix(name), err)
	}
	return c.Run(ctx, e, fs)
}

// prefix is "NAME: " for a subcommand's messages, nothing for the root's
// (Run already writes "moat: ").
func prefix(name string) string {
	if name == "moat" {
		return ""
	}
	return name + ": "
}

// commandName is the command path as messages name it after "moat: ":
// "flows", "ca rotate retire", or "moat" for the root.
func commandName(path []string) string {
	if len(path) <= 1 {
		return "moat"
	}
	return strings.Join(path[1:], " ")
}

func printHelp(w io.Writer, c *Command, path []string) {
	name := strings.Join(path, " ")
	switch {
	case c.Run == nil:
		fmt.Fprintf(w, "Usage: %s <command> [flags]\n\n", name)
	case c.Sub != nil:
		fmt.Fprintf(w, "Usage: %s %s\n       %s <command> [flags]\n\n", name, c.Usage, name)
	default:
		fmt.Fprintf(w, "Usage: %s %s\n\n", name, c.Usage)
	}
	if c.Help != "" {
		fmt.Fprintf(w, "%s\n\n", c.Help)
	} else if c.Summary != "" {
		fmt.Fprintf(w, "%s\n\n", c.Summary)
	}
	if c.Run != nil {
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
	if c.Sub != nil {
		if c.Run != nil {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "Commands:")
		for _, s := range c.Sub {
			fmt.Fprintf(w, "  %-12s %s\n", s.Name, s.Summary)
		}
		fmt.Fprintf(w, "\nRun \"%s <command> -h\" for a command's flags.\n", name)
	}
}

// Version, when set at build time (-ldflags "-X moat/internal/cli.Version=v1.2.3"),
// names the release; otherwise the module version the Go toolchain
// recorded is shown.
var Version = ""

// buildInfo is what "moat version" says about the binary.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

func versionCommand() *Command {
	var output string
	return &Command{
		Name:    "version",
		Summary: "print moat's version, source revision and platform",
		Flags:   func(fs *flag.FlagSet) { fs.StringVar(&output, "output", "table", "table or json") },
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if fs.NArg() > 0 {
				return usagef("version takes no arguments")
			}
			b := readBuildInfo()
			switch output {
			case "json":
				return printJSON(e.Stdout, b)
			case "table":
			default:
				return usagef("version: --output %q: want table or json", output)
			}
			if b.Version == "" {
				b.Version = "(unknown)"
			}
			fmt.Fprintf(e.Stdout, "moat %s\n", b.Version)
			switch {
			case b.Revision == "":
				fmt.Fprintln(e.Stdout, "revision: unknown (built without version control information)")
			case b.Modified:
				fmt.Fprintf(e.Stdout, "revision: %s (%s, with uncommitted changes)\n", b.Revision, b.Time)
			default:
				fmt.Fprintf(e.Stdout, "revision: %s (%s)\n", b.Revision, b.Time)
			}
			fmt.Fprintf(e.Stdout, "go: %s %s\n", b.GoVersion, b.Platform)
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
