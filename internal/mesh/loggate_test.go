package mesh

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// countingHandler counts the log lines with one message.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestRefusedHandshakeLogIsGated: anyone who reaches the mesh port may
// fail handshake after handshake. Their records pass the refusal gate; so
// must the agent's log line of each, or the flood writes a line per try
// into the node's journal, whose rate limit then drops the agent's own
// lines (a revoked peer's tunnel closed, say) with the attacker's.
func TestRefusedHandshakeLogIsGated(t *testing.T) {
	f := newFixture(t)
	app := startApp(t, echo)
	var logged atomic.Int64
	b := f.newAgent(t, "node-b", []Service{{Name: "api", Port: 8080, AppAddr: app}}, func(c *Config) {
		c.Logger = slog.New(countingHandler{msg: "mesh: inbound handshake refused", n: &logged})
	})
	const flood = 250
	for i := range flood {
		c, err := tls.Dial("tcp", b.m.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "api", MinVersion: tls.VersionTLS13})
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil {
			t.Fatalf("handshake %d without a certificate taken", i+1)
		}
	}
	count := func() (full, suppressed int) {
		b.flows.mu.Lock()
		defer b.flows.mu.Unlock()
		for _, r := range b.flows.all {
			switch {
			case r.Unmapped == nil || r.Unmapped.Kind != kindHandshake:
			case r.Unmapped.Suppressed > 0:
				suppressed += r.Unmapped.Suppressed
			default:
				full++
			}
		}
		return full, suppressed
	}
	testkit.WaitFor(t, "every refused handshake recorded or summarised", func() bool {
		b.m.flushRefusals()
		full, suppressed := count()
		return full+suppressed == flood
	})
	full, _ := count()
	if full >= flood {
		t.Fatalf("all %d refused handshakes recorded in full: the gate did not hold", flood)
	}
	testkit.WaitFor(t, "one log line for each refused handshake recorded in full", func() bool {
		return logged.Load() == int64(full)
	})
	if n := logged.Load(); n < flow.GateClientBurst {
		t.Errorf("%d log lines, want at least the first %d refusals", n, flow.GateClientBurst)
	}
}

// TestAppUnreachableLogIsGated: while a service's app is down, every
// stream an intention allows to it fails to reach it. An allowed caller
// (or a busy one) opening stream after stream must not write a log line
// each into the node's journal: the first is logged, then at most one a
// minute for the service, each failure counted.
func TestAppUnreachableLogIsGated(t *testing.T) {
	f := newFixture(t)
	app := startApp(t, echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	var logged atomic.Int64
	b := f.newAgent(t, "node-b", []Service{{Name: "api", Port: 8080, AppAddr: down}}, func(c *Config) {
		c.Logger = slog.New(countingHandler{msg: "mesh: app unreachable", n: &logged})
	})
	a := f.newAgent(t, "node-a", []Service{{Name: "frontend", Port: 3000, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}}})
	const tries = 50
	for i := range tries {
		if _, err := call(a.local(t, "frontend", "api"), "hi"); err == nil {
			t.Fatalf("call %d reached an app that is down", i+1)
		}
	}
	testkit.WaitFor(t, "every failure counted", func() bool { return b.m.Stats().AppUnreachable == tries })
	if n := logged.Load(); n != 1 {
		t.Fatalf("%d log lines for %d streams to an app that is down, want 1", n, tries)
	}
	// A minute on, the next failure is logged again: an outage that
	// lasts, or a later one, is not hidden by the first.
	b.clock.Advance(logEvery)
	if _, err := call(a.local(t, "frontend", "api"), "hi"); err == nil {
		t.Fatal("a call reached an app that is down")
	}
	testkit.WaitFor(t, "the failure a minute on logged", func() bool { return logged.Load() == 2 })
}
