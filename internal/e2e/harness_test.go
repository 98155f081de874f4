// Package e2e runs whole moat systems in one process over real loopback
// sockets: a control plane on a real store, agents that join it, and
// clients that use what they serve.
package e2e

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow/flowstore"
	"moat/internal/metrics"
	"moat/internal/server"
	"moat/internal/store"
	"moat/internal/testkit"
)

// cluster is a control plane for one test.
type cluster struct {
	t        *testing.T
	clk      *fakeClock
	dir      string
	adminDir string
	st       store.Store
	alog     *audit.Log
	addr     string

	mu     sync.Mutex // guards srv and stop
	srv    *server.Server
	stop   context.CancelFunc
	done   chan error
	admin  *api.Client
	logger *slog.Logger
	flows  *flowstore.Store
	reg    *metrics.Registry
	detect server.Detector  // guarded by mu; set by restartWith
	mfa    server.MFAConfig // guarded by mu; the servers' second factors

	agentCfg map[string]agent.Config // guarded by mu
	secrets  map[string]string       // TOTP secrets by admin directory; guarded by mu
}

func quietLogger() *slog.Logger {
	if os.Getenv("MOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// newCluster starts a control plane on a fresh store; opts adjust its
// init settings.
func newCluster(t *testing.T, opts ...func(*server.InitConfig)) *cluster {
	t.Helper()
	c := &cluster{t: t, clk: newFakeClock(), dir: t.TempDir(), logger: quietLogger(), secrets: map[string]string{}}
	c.adminDir = filepath.Join(c.dir, "admin")
	st, err := store.OpenBolt(store.BoltConfig{Dir: c.dir})
	if err != nil {
		t.Fatal(err)
	}
	c.st = st
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	ic := server.InitConfig{TrustDomain: "example.org", AdminDir: c.adminDir, Now: c.clk.Now}
	for _, o := range opts {
		o(&ic)
	}
	if err := server.Init(ctx, st, ic); err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(audit.Config{Dir: filepath.Join(c.dir, "audit"), Now: c.clk.Now, Logger: c.logger})
	if err != nil {
		t.Fatal(err)
	}
	c.alog = alog
	t.Cleanup(func() { alog.Close() })
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: filepath.Join(c.dir, "flows"), Now: c.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.flows = fs
	t.Cleanup(func() { fs.Close() })
	c.reg = metrics.NewRegistry()
	// Outage tests stop the server and start it again on its address: a
	// port from 127.0.0.1:0 could be taken meanwhile by any other test's
	// listener or connection, one from freePort cannot.
	c.startServer("127.0.0.1:" + itoa(freePort(t)))
	t.Cleanup(c.stopServer)
	return c
}

// serverReg returns the registry for a new server: metrics register once
// per registry, so a restarted server gets a fresh one.
func (c *cluster) serverReg() *metrics.Registry {
	c.reg = metrics.NewRegistry()
	return c.reg
}

// startServer starts a control plane on addr over the cluster's store.
func (c *cluster) startServer(addr string) {
	c.t.Helper()
	srv, err := server.New(context.Background(), server.Config{
		Listen: addr, Store: c.st, Audit: c.alog, Now: c.clk.Now, Logger: c.logger, Heartbeat: 200 * time.Millisecond,
		Flows: c.flows, Metrics: c.serverReg(), AuditLog: c.alog, Detect: c.detect, RefusalWindow: 50 * time.Millisecond,
		MFA: c.mfa,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		cancel()
		c.t.Fatalf("server did not start: %v", err)
	}
	c.mu.Lock()
	c.srv, c.stop, c.done, c.addr = srv, cancel, done, srv.Addr()
	c.mu.Unlock()
	c.admin = c.mfaAdmin(c.adminDir)
}

// restartWith restarts the control plane feeding det, on a port the kernel
// picks: its old one may be taken by then (another test's connection), so
// call it before any agent starts.
func (c *cluster) restartWith(det server.Detector) {
	c.t.Helper()
	c.stopServer()
	c.mu.Lock()
	c.detect = det
	c.mu.Unlock()
	c.startServer("127.0.0.1:0")
}

func (c *cluster) stopServer() {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	c.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	if err := <-done; err != nil {
		c.t.Errorf("server: %v", err)
	}
	c.admin.Close()
}

func (c *cluster) call(method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	return c.admin.Call(ctx, method, path, in, out)
}

func (c *cluster) token(node string) string {
	c.t.Helper()
	var resp api.TokenResponse
	if err := c.call(http.MethodPost, api.PathTokens, api.TokenRequest{Node: node}, &resp); err != nil {
		c.t.Fatal(err)
	}
	return resp.Token
}

func (c *cluster) register(reg api.Registration) {
	c.t.Helper()
	if err := c.call(http.MethodPost, api.PathServices, reg, nil); err != nil {
		c.t.Fatal(err)
	}
}

// agentMaxBackoff is the agents' longest wait before retrying a failed
// call, on the fake clock.
const agentMaxBackoff = 2 * time.Second

// agentOpts adjusts an agent's config before it starts.
type agentOpts func(*agent.Config)

// startAgent joins node and runs its agent until the test ends.
func (c *cluster) startAgent(node string, opts ...agentOpts) *agent.Agent {
	c.t.Helper()
	a, _ := c.runAgent(c.agentConfig(node, opts...))
	return a
}

// agentConfig makes a join token for node and the config of its agent.
func (c *cluster) agentConfig(node string, opts ...agentOpts) agent.Config {
	c.t.Helper()
	meshAddr := "127.0.0.1:" + itoa(freePort(c.t))
	cfg := agent.Config{
		DataDir: filepath.Join(c.dir, "agent-"+node), Server: c.addr, Join: c.token(node), Node: node,
		MeshAddr: meshAddr, Now: c.clk.Now, After: c.clk.After, Jitter: func() float64 { return 0.5 },
		MinBackoff: 200 * time.Millisecond, MaxBackoff: agentMaxBackoff, Logger: c.logger.With("agent", node),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// runAgent starts an agent from cfg; the returned stop ends it (and runs
// at cleanup if not called before).
func (c *cluster) runAgent(cfg agent.Config) (*agent.Agent, func()) {
	c.t.Helper()
	a, err := agent.New(context.Background(), cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				c.t.Errorf("agent %s: %v", cfg.Node, err)
			}
		})
	}
	c.t.Cleanup(stop)
	c.mu.Lock()
	if c.agentCfg == nil {
		c.agentCfg = map[string]agent.Config{}
	}
	c.agentCfg[cfg.Node] = cfg
	c.mu.Unlock()
	return a, stop
}

// refusedSummaries returns the "security.refused" entries of the audit
// log: how many calls they count in all, and their "top" lines.
func (c *cluster) refusedSummaries() (count int, top []string) {
	c.t.Helper()
	entries, err := c.alog.Entries(0, c.alog.Size())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Entry.Action != server.ActionRefused {
			continue
		}
		n, err := strconv.Atoi(e.Entry.Detail["count"])
		if err != nil {
			c.t.Fatalf("security.refused entry without a count: %+v", e.Entry)
		}
		count += n
		top = append(top, strings.Split(e.Entry.Detail["top"], "; ")...)
	}
	return count, top
}

// eventually polls cond until it holds, failing the test after a bounded
// wait. It is for waiting on asynchronous delivery, not for timing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle is eventually for a state the agents reach through calls to the
// control plane. A call that fails (a connection cut by a restart or a
// rotation, a server slow under load) is retried after a backoff on the
// fake clock, which would stall a wait in real time: while cond does not
// hold, a retry armed for at most agentMaxBackoff comes due, as it would
// while a real clock ran on. Longer timers (renewals, reports, the
// witness) still move only when the test advances the clock.
func (c *cluster) settle(what string, cond func() bool) {
	c.t.Helper()
	eventually(c.t, what, func() bool {
		if cond() {
			return true
		}
		c.clk.fireWithin(agentMaxBackoff)
		return false
	})
}

// rounds is eventually for what an agent's periodic loop (every period
// on the fake clock) brings about: whenever cond does not hold and a loop
// is parked until its next round, the clock moves one period. A loop that
// armed its timer only after the test last advanced the clock, or whose
// round found the agent not yet ready, gets another round instead of
// stalling the wait; retries due within agentMaxBackoff come due as in
// settle.
func (c *cluster) rounds(what string, period time.Duration, cond func() bool) {
	c.t.Helper()
	eventually(c.t, what, func() bool {
		if cond() {
			return true
		}
		if c.clk.armed(period) > 0 {
			c.clk.Advance(period)
		} else {
			c.clk.fireWithin(agentMaxBackoff)
		}
		return false
	})
}
