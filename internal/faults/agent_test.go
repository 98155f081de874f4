package faults

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"moat/internal/flow"

	"moat/internal/testkit"
)

// lineApp is a line-echo app on loopback that counts the connections it
// accepted and those whose request reached it.
type lineApp struct {
	ln                  net.Listener
	hold                chan struct{} // closed to release held connections
	accepted, requested atomic.Int64
}

func startLineApp(t *testing.T) *lineApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &lineApp{ln: ln, hold: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.accepted.Add(1)
			go a.serve(c)
		}
	}()
	return a
}

// serve answers each line with "ok LINE"; after the line "hold" it keeps
// the connection open until the app is released.
func (a *lineApp) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for first := true; ; first = false {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if first {
			a.requested.Add(1)
		}
		if _, err := fmt.Fprintf(c, "ok %s", line); err != nil {
			return
		}
		if line == "hold\n" {
			<-a.hold
			return
		}
	}
}

func (a *lineApp) port() int { return a.ln.Addr().(*net.TCPAddr).Port }

// ask sends one line through addr and reads the answer.
func ask(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

// agentPair is a control plane with web (the app) on node b and client on
// node a, whose upstream reaches web, both agents running.
type agentPair struct {
	c        *moatCluster
	data     string // the server's data directory
	app      *lineApp
	a, b     *moatAgent
	upstream string // a's local port to web
}

func newAgentPair(t *testing.T) *agentPair {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "server")
	ports := freePorts(t, 2)
	mustMoat(t, nil, "server", "init", "--data-dir", data, "--trust-domain", "example.org")
	start(t, "server", nil, moatBin, "server", "run", "--data-dir", data, "--listen", addr(ports[0]))
	p := &agentPair{data: data, app: startLineApp(t), upstream: addr(ports[1]),
		c: &moatCluster{t: t, dir: dir, admin: data + ".admin", servers: []*moatServer{{name: "s1", listen: addr(ports[0])}}}}
	env := p.c.env()
	waitFor(t, "the server", func() bool { _, _, err := moat(t, env, "svc", "list"); return err == nil })
	p.c.mfa = enrolMFA(t, p.c.addrs(), p.c.admin)
	web := fmt.Sprint(p.app.port())
	mustMoat(t, env, "svc", "register", "--node", "b", "--name", "web", "--port", web)
	mustMoat(t, env, "svc", "register", "--node", "a", "--name", "client", "--port", "1", "--upstream", fmt.Sprintf("web:%d", ports[1]))
	pol := filepath.Join(dir, "intentions.yaml")
	if err := os.WriteFile(pol, []byte("default: deny\nrules:\n  - name: client-to-web\n    from: [client]\n    to: web\n    ports: ["+web+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustMoat(t, env, "policy", "apply", "-f", pol)
	p.b = p.c.startAgent("b")
	p.a = p.c.startAgent("a")
	waitFor(t, "client → web through both agents", func() bool {
		got, err := ask(p.upstream, "hello")
		return err == nil && got == "ok hello"
	})
	return p
}

// restart runs a's agent again on its data directory, mesh port and
// metrics address, without a token, with extra flags.
func (p *agentPair) restart(a *moatAgent, extra ...string) {
	p.c.t.Helper()
	args := a.p.cmd.Args[1:]
	var again []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--join" {
			i++
			continue
		}
		again = append(again, args[i])
	}
	a.p = start(p.c.t, "agent "+a.node+" (again)", nil, moatBin, append(again, extra...)...)
}

// TestAgentKilledLosesNoAcknowledgedRecord kills the destination's agent
// with SIGKILL while connections stream through it, restarts it, and
// checks at the server that every connection whose request reached the app
// has its Open record: the agent writes a connection's record to its spool
// before it joins the connection to the app, so the documented loss of a
// crashed agent is no record it wrote.
func TestAgentKilledLosesNoAcknowledgedRecord(t *testing.T) {
	p := newAgentPair(t)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var answered atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if got, err := ask(p.upstream, "x"); err == nil && got == "ok x" {
					answered.Add(1)
				}
			}
		}()
	}
	waitFor(t, "load through the mesh", func() bool { return answered.Load() >= 300 })
	t.Log("SIGKILL the destination's agent under load")
	p.b.p.kill()
	stop.Store(true)
	wg.Wait()
	accepted, requested := p.app.accepted.Load(), p.app.requested.Load()
	t.Logf("the app accepted %d connections, %d brought a request; the client saw %d answers", accepted, requested, answered.Load())

	t.Log("restart it; it sends what its spool holds")
	p.restart(p.b)
	// A segment leaves the spool only once the server has stored it.
	waitFor(t, "b's spool sent", func() bool {
		m, _ := filepath.Glob(filepath.Join(p.b.data, "spool", "spool-*"))
		return len(m) == 0
	})
	out := mustMoat(t, nil, "flows", "--data-dir", p.data, "--to", "web", "--output", "json", "--limit", "100000")
	var opens int64
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r flow.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("moat flows: %v", err)
		}
		if r.ActivityID == flow.ActivityOpen && r.Unmapped != nil && r.Unmapped.Node == "b" {
			opens++
		}
	}
	t.Logf("open records stored: %d (connections with a request at the app: %d, accepted by it: %d)", opens, requested, accepted)
	if opens < requested {
		t.Fatalf("%d connections brought their request to the app, only %d open records reached the server: %d lost", requested, opens, requested-opens)
	}
	if opens > accepted {
		t.Fatalf("%d open records for %d connections the app accepted", opens, accepted)
	}
}

// TestAgentStopsWhileAppsHoldConnections sends SIGTERM to each agent while
// a connection through it is held open by the apps at both ends (a
// database pool's would be), and waits, boundedly, for a clean exit.
func TestAgentStopsWhileAppsHoldConnections(t *testing.T) {
	p := newAgentPair(t)
	defer close(p.app.hold)
	hold := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.upstream, testkit.WaitLimit)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "hold\n")
		if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "ok hold\n" {
			t.Fatalf("held connection: %q, %v", got, err)
		}
		return c
	}
	stop := func(a *moatAgent) {
		t.Helper()
		_ = a.p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.p.done:
		case <-time.After(waitLimit):
			t.Fatalf("agent %s still running %v after SIGTERM", a.node, waitLimit)
		}
		if st := a.p.cmd.ProcessState; st == nil || !st.Success() {
			t.Fatalf("agent %s exited with %v after SIGTERM", a.node, st)
		}
	}

	t.Log("the destination's agent holds an inbound connection to its app")
	c := hold()
	stop(p.b)
	c.Close()

	t.Log("the source's agent holds an outbound connection from its app")
	p.restart(p.b)
	waitFor(t, "b back", func() bool { got, err := ask(p.upstream, "again"); return err == nil && got == "ok again" })
	c = hold()
	defer c.Close()
	stop(p.a)
}

// TestAgentRuntimeLimits reads the agent's soft memory limit, its
// GOMAXPROCS and its GOGC from its own metrics: 32 MiB, one thread and 50
// by default, what --memory-limit, --procs and --gc-percent say otherwise;
// a limit an agent cannot run in, a negative thread count and a GOGC out
// of range are refused before it starts.
func TestAgentRuntimeLimits(t *testing.T) {
	p := newAgentPair(t)
	gauge := func(series string, want float64) {
		t.Helper()
		waitForDetail(t, fmt.Sprintf("%s of %v", series, want), func() (bool, string) {
			v := metric(t, p.a.metrics, series)
			return v == want, fmt.Sprintf("%s = %v", series, v)
		})
	}
	gauge("go_gc_gomemlimit_bytes", 32<<20)
	gauge("go_sched_gomaxprocs_threads", 1)
	gauge("go_gc_gogc_percent", 50)
	p.a.p.stop()
	p.restart(p.a, "--memory-limit", "48MiB", "--procs", "2", "--gc-percent", "100")
	gauge("go_gc_gomemlimit_bytes", 48<<20)
	gauge("go_sched_gomaxprocs_threads", 2)
	gauge("go_gc_gogc_percent", 100)
	if _, errOut, err := moat(t, nil, "agent", "--data-dir", p.a.data, "--node", "a", "--memory-limit", "1MiB", "--validate"); err == nil || !strings.Contains(errOut, "memory_limit") {
		t.Errorf("a 1 MiB limit: %v %s", err, errOut)
	}
	if _, errOut, err := moat(t, nil, "agent", "--data-dir", p.a.data, "--node", "a", "--procs", "-1", "--validate"); err == nil || !strings.Contains(errOut, "procs") {
		t.Errorf("--procs -1: %v %s", err, errOut)
	}
	if _, errOut, err := moat(t, nil, "agent", "--data-dir", p.a.data, "--node", "a", "--gc-percent", "5", "--validate"); err == nil || !strings.Contains(errOut, "gc_percent") {
		t.Errorf("--gc-percent 5: %v %s", err, errOut)
	}
}
