package cmdline

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version, when set at build time (-ldflags "-X moat/internal/cli/cmdline.Version=v1.2.3"),
// names the release; otherwise the module version the Go toolchain
// recorded is shown.
var Version = ""

// buildInfo is what the version command says about the binary.
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

// VersionCommand prints the version, source revision and platform of the
// executable named prog.
func VersionCommand(prog string) *Command {
	var output string
	return &Command{
		Name:    "version",
		Summary: "print " + prog + "'s version, source revision and platform",
		Flags:   func(fs *flag.FlagSet) { fs.StringVar(&output, "output", "table", "table or json") },
		Run: func(ctx context.Context, e *Env, fs *flag.FlagSet) error {
			if err := NoArgs(fs, "version"); err != nil {
				return err
			}
			b := readBuildInfo()
			switch output {
			case "json":
				return PrintJSON(e.Stdout, b)
			case "table":
			default:
				return Usagef("version: --output %q: want table or json", output)
			}
			if b.Version == "" {
				b.Version = "(unknown)"
			}
			fmt.Fprintf(e.Stdout, "%s %s\n", prog, b.Version)
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
