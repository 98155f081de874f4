package waf

import (
	"fmt"
	"io"

	"github.com/corazawaf/coraza/v3/debuglog"
)

// Coraza hands every transaction, and every chain link it evaluates
// after a matching first link, a debug logger with fields of its own
// (the transaction's ID, the link's file and line), and its loggers
// write those fields out (quoted, in a new slice) as soon as they are
// given, whether or not a message is ever logged: some twenty
// allocations a form POST, for a logger that by default (debuglog.Noop,
// until SecDebugLogLevel and SecDebugLog say otherwise) logs nothing.
// lazyLogger keeps the fields and hands them to Coraza's logger only for
// an event at a level it logs, so what is written is the same, field for
// field.
type lazyLogger struct {
	base debuglog.Logger
	// fields are applied to base, in order, for an event it logs.
	fields []debuglog.ContextField
	// logs[l] is whether base logs at level l (Coraza asks for a debug
	// event a dozen times a rule, so this is answered once).
	logs [debuglog.LevelTrace + 1]bool
}

func newLazyLogger(base debuglog.Logger) debuglog.Logger { return lazyOf(base, nil) }

func lazyOf(base debuglog.Logger, fields []debuglog.ContextField) *lazyLogger {
	l := &lazyLogger{base: base, fields: fields}
	l.logs[debuglog.LevelError] = base.Error().IsEnabled()
	l.logs[debuglog.LevelWarn] = base.Warn().IsEnabled()
	l.logs[debuglog.LevelInfo] = base.Info().IsEnabled()
	l.logs[debuglog.LevelDebug] = base.Debug().IsEnabled()
	l.logs[debuglog.LevelTrace] = base.Trace().IsEnabled()
	return l
}

func (l *lazyLogger) WithOutput(w io.Writer) debuglog.Logger {
	return lazyOf(l.base.WithOutput(w), l.fields)
}

func (l *lazyLogger) WithLevel(lvl debuglog.Level) debuglog.Logger {
	return lazyOf(l.base.WithLevel(lvl), l.fields)
}

func (l *lazyLogger) With(fs ...debuglog.ContextField) debuglog.Logger {
	// A full slice: a child's fields never write into its parent's.
	return &lazyLogger{base: l.base, fields: append(l.fields[:len(l.fields):len(l.fields)], fs...), logs: l.logs}
}

// The level methods answer an event at a level not logged themselves:
// Coraza asks for hundreds of debug events a request, and on that path
// the answer is one lookup.

// logger is base with the fields, for an event it logs.
func (l *lazyLogger) logger() debuglog.Logger {
	if len(l.fields) == 0 {
		return l.base
	}
	return l.base.With(l.fields...)
}

func (l *lazyLogger) Trace() debuglog.Event {
	if !l.logs[debuglog.LevelTrace] {
		return noEvent{}
	}
	return l.logger().Trace()
}

func (l *lazyLogger) Debug() debuglog.Event {
	if !l.logs[debuglog.LevelDebug] {
		return noEvent{}
	}
	return l.logger().Debug()
}

func (l *lazyLogger) Info() debuglog.Event {
	if !l.logs[debuglog.LevelInfo] {
		return noEvent{}
	}
	return l.logger().Info()
}

func (l *lazyLogger) Warn() debuglog.Event {
	if !l.logs[debuglog.LevelWarn] {
		return noEvent{}
	}
	return l.logger().Warn()
}

func (l *lazyLogger) Error() debuglog.Event {
	if !l.logs[debuglog.LevelError] {
		return noEvent{}
	}
	return l.logger().Error()
}

// noEvent is an event at a level not logged: it writes nothing.
type noEvent struct{}

func (noEvent) Msg(string)                                     {}
func (e noEvent) Str(string, string) debuglog.Event            { return e }
func (e noEvent) Err(error) debuglog.Event                     { return e }
func (e noEvent) Bool(string, bool) debuglog.Event             { return e }
func (e noEvent) Int(string, int) debuglog.Event               { return e }
func (e noEvent) Uint(string, uint) debuglog.Event             { return e }
func (e noEvent) Stringer(string, fmt.Stringer) debuglog.Event { return e }
func (noEvent) IsEnabled() bool                                { return false }
