package cli

import (
	"flag"
	"io"
	"log/slog"

	"moat/internal/config"
)

// logConfig is how a long-running command logs. The keys sit at the top of
// a command's configuration file, beside the flags of the same names.
type logConfig struct {
	// Format is "text" (key=value pairs, the default) or "json" (one object
	// per line, for log shippers).
	Format string `yaml:"log_format"`
	// Level is debug, info (the default), warn or error.
	Level string `yaml:"log_level"`
}

func (l *logConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&l.Format, "log-format", "text", "log lines as text (key=value) or json (one object per line)")
	fs.StringVar(&l.Level, "log-level", "info", "least severe level logged: debug, info, warn or error")
}

func (l *logConfig) validate() error {
	switch l.Format {
	case "", "text", "json":
	default:
		return config.Errorf("log_format", "%q: want text or json", l.Format)
	}
	var level slog.Level
	if l.Level != "" {
		if err := level.UnmarshalText([]byte(l.Level)); err != nil {
			return config.Errorf("log_level", "%q: want debug, info, warn or error", l.Level)
		}
	}
	return nil
}

// logger returns a logger writing to w as l says; l must have validated.
func (l *logConfig) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	if l.Level != "" {
		_ = level.UnmarshalText([]byte(l.Level))
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
