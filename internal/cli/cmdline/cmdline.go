// Package cmdline is the command tree both of moat's executables are built
// on: commands, flags, help, exit codes, the version command, and the flags
// and helpers that more than one command shares. It links no service, so
// an executable that wires one service (cmd/moat-agent) links only that
// service.
package cmdline

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
	"strings"
	"syscall"

	"moat/internal/flow"
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
	// SetGCPercent sets the collector's target heap growth (as
	// runtime/debug.SetGCPercent, GOGC); nil leaves it, as SetMemoryLimit.
	SetGCPercent func(int) int
	// FreeOSMemory collects the heap and returns what is free to the system
	// (as runtime/debug.FreeOSMemory); nil leaves it, as SetMemoryLimit. A
	// long-running command whose resident memory counts (the node agent)
	// calls it once it is serving, so that the garbage start-up made (parsed
	// configuration, the first snapshot's decoding, certificate issuance) is
	// not kept as heap the collector would otherwise hold until it grows
	// into it.
	FreeOSMemory func()
	// KeepMonitorAwake keeps the runtime's monitor thread from parking and
	// being woken around every idle stretch, by re-executing the process
	// with GODEBUG's schedtrace set (KeepMonitorAwake, monitor.go); nil
	// leaves the runtime alone, as SetMemoryLimit. A long-running proxy on
	// one thread (the node agent) calls it before it starts anything.
	KeepMonitorAwake func() error
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

// Usagef returns a UsageError with the formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// NoArgs refuses the arguments of a command that takes none (cmd names it
// in the message): a flag typed without its dashes ("keys rotate kek")
// must not run the command without it.
func NoArgs(fs *flag.FlagSet, cmd string) error {
	if fs.NArg() > 0 {
		return Usagef("%s takes no arguments, got %q", cmd, fs.Arg(0))
	}
	return nil
}

// Main runs the command tree root with args (without the program name)
// and returns the exit code. SIGINT and SIGTERM cancel the running
// command's context.
func Main(root *Command, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, &Env{
		Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv,
		SetMemoryLimit: debug.SetMemoryLimit, SetMaxProcs: runtime.GOMAXPROCS, SetGCPercent: debug.SetGCPercent, FreeOSMemory: debug.FreeOSMemory,
		KeepMonitorAwake: KeepMonitorAwake,
	}, root, args)
}

// Run runs the command of root's tree that args name and returns its exit
// code. Messages start with root's name.
func Run(ctx context.Context, e *Env, root *Command, args []string) int {
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	err := dispatch(ctx, e, root, []string{root.Name}, args)
	if err == nil {
		return 0
	}
	var ue *UsageError
	var xe *ExitError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(e.Stderr, "%s: %s\n", root.Name, printableLines(ue.Msg))
		return 2
	case errors.As(err, &xe):
		if xe.Msg != "" {
			fmt.Fprintf(e.Stderr, "%s: %s\n", root.Name, printableLines(xe.Msg))
		}
		return xe.Code
	default:
		fmt.Fprintf(e.Stderr, "%s: %s\n", root.Name, printableLines(err.Error()))
		return 1
	}
}

// printableLines shows a message line by line through flow.PrintableText:
// an error quotes what others wrote (the paths of a checked repository, a
// server's answer), which must not act on the terminal it is shown on.
func printableLines(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = flow.PrintableText(l)
	}
	return strings.Join(lines, "\n")
}

func dispatch(ctx context.Context, e *Env, c *Command, path, args []string) error {
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
					return Usagef("%smissing subcommand (see \"%s -h\")", prefix(path), strings.Join(path, " "))
				}
				return nil
			}
			return Usagef("%sunknown command %q (see \"%s -h\")", prefix(path), args[0], strings.Join(path, " "))
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
		return Usagef("%s%v", prefix(path), err)
	}
	return c.Run(ctx, e, fs)
}

// prefix is "NAME: " for a subcommand's messages, nothing for the root's
// (Run already writes the root's name).
func prefix(path []string) string {
	if len(path) <= 1 {
		return ""
	}
	return commandName(path) + ": "
}

// commandName is the command path as messages name it after the root's
// name: "flows", "ca rotate retire".
func commandName(path []string) string {
	if len(path) <= 1 {
		return path[0]
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

// StringList is a repeatable string flag.
type StringList []string

func (s *StringList) String() string     { return strings.Join(*s, ",") }
func (s *StringList) Set(v string) error { *s = append(*s, v); return nil }

// EnvDefault returns the environment variable's value, or def when unset.
func EnvDefault(e *Env, name, def string) string {
	if v := e.Getenv(name); v != "" {
		return v
	}
	return def
}
