package waf

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/corazawaf/coraza/v3/debuglog"
)

// TestLazyLoggerWrites: at every level, what lazyLogger writes is what
// Coraza's default logger writes for the same calls, fields of every
// With included and in order, and two children of one logger keep their
// own fields.
func TestLazyLoggerWrites(t *testing.T) {
	printer := func(w io.Writer) debuglog.Printer {
		return func(lvl debuglog.Level, message, fields string) {
			fmt.Fprintf(w, "[%s] %s %s\n", lvl, message, fields)
		}
	}
	calls := func(l debuglog.Logger, w io.Writer, lvl debuglog.Level) {
		l = l.WithOutput(w).WithLevel(lvl)
		tx := l.With(debuglog.Str("tx_id", "abc"))
		a := tx.With(debuglog.Str("rule_ref", "x.conf#L1"))
		b := tx.With(debuglog.Int("chain_rule_id", 7), debuglog.Str("variable", `ARGS "q"`))
		// Five fields: a slice with room for a sixth, which each child
		// must not share.
		five := l.With(debuglog.Int("a", 1), debuglog.Int("b", 2), debuglog.Int("c", 3), debuglog.Int("d", 4), debuglog.Int("e", 5))
		c1 := five.With(debuglog.Str("child", "one"))
		c2 := five.With(debuglog.Str("child", "two"))
		for _, c := range []debuglog.Logger{l, tx, a, b, five, c1, c2} {
			c.Trace().Msg("trace")
			c.Debug().Str("arg", "v").Int("n", 1).Msg("debug")
			c.Info().Bool("ok", true).Msg("info")
			c.Warn().Err(fmt.Errorf("bad")).Msg("warn")
			c.Error().Uint("u", 2).Msg("error")
		}
	}
	for _, lvl := range []debuglog.Level{debuglog.LevelNoLog, debuglog.LevelError, debuglog.LevelInfo, debuglog.LevelDebug, debuglog.LevelTrace} {
		var want, got bytes.Buffer
		calls(debuglog.DefaultWithPrinterFactory(printer), &want, lvl)
		calls(newLazyLogger(debuglog.DefaultWithPrinterFactory(printer)), &got, lvl)
		if got.String() != want.String() {
			t.Errorf("level %s: lazy logger wrote\n%s\nwant\n%s", lvl, got.String(), want.String())
		}
		if lvl >= debuglog.LevelDebug && !bytes.Contains(got.Bytes(), []byte(`chain_rule_id=7 variable="ARGS \"q\""`)) {
			t.Errorf("level %s: fields missing:\n%s", lvl, got.String())
		}
	}
}
