package config

import (
	"io"
	"log/slog"
)

// Log is how a long-running moat command logs. Its keys sit at the top of a
// service's configuration file (inline), beside flags of the same names.
type Log struct {
	// Format is "text" (key=value pairs; the default) or "json" (one object
	// per line, for log shippers).
	Format string `yaml:"log_format"`
	// Level is debug, info (the default), warn or error.
	Level string `yaml:"log_level"`
}

// Validate checks the format and level.
func (l *Log) Validate() error {
	switch l.Format {
	case "", "text", "json":
	default:
		return Errorf("log_format", "%q: want text or json", l.Format)
	}
	if l.Level != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(l.Level)); err != nil {
			return Errorf("log_level", "%q: want debug, info, warn or error", l.Level)
		}
	}
	return nil
}

// Logger returns a logger writing to w as l says; l must have validated.
func (l *Log) Logger(w io.Writer) *slog.Logger {
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
