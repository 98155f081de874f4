//go:build unix

package process

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"moat/internal/flow"
)

// meshPair registers web on node b (the app) and client on node a with an
// upstream to web, allows client → web, and starts both agents.
type meshPair struct {
	f            *fleet
	app          *app
	a, b         *proc
	meshA, meshB string
	upstream     string // a's local port to web
}

func newMeshPair(t *testing.T) *meshPair {
	t.Helper()
	f := newFleet(t)
	ports := freePorts(t, 3)
	p := &meshPair{f: f, app: startApp(t), meshA: loopback(ports[0]), meshB: loopback(ports[1]), upstream: loopback(ports[2])}
	web := fmt.Sprint(p.app.port())
	f.moat("svc", "register", "--node", "b", "--name", "web", "--port", web)
	f.moat("svc", "register", "--node", "a", "--name", "client", "--port", "1", "--upstream", fmt.Sprintf("web:%d", ports[2]))
	pol := filepath.Join(f.dir, "intentions.yaml")
	if err := os.WriteFile(pol, []byte("default: deny\nrules:\n  - name: client-to-web\n    from: [client]\n    to: web\n    ports: ["+web+"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.moat("policy", "apply", "-f", pol)
	p.b = f.agent("b", p.meshB)
	p.a = f.agent("a", p.meshA)
	eventually(t, "client → web through both agents", func() bool {
		got, err := ask(p.upstream, "hello")
		return err == nil && got == "ok hello"
	})
	return p
}

// TestAgentKilledLosesNoAcknowledgedRecord kills the destination's agent
// with SIGKILL while connections stream through it, restarts it, and
// checks at the server that every connection whose request reached the app
// has its Open record: the agent writes each record to its spool before it
// goes on (the record of a connection is written before the connection is
// joined to the app), so the documented loss bound of a crashed agent is
// zero acknowledged records.
func TestAgentKilledLosesNoAcknowledgedRecord(t *testing.T) {
	p := newMeshPair(t)
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
	eventually(t, "load through the mesh", func() bool { return answered.Load() >= 300 })
	t.Log("SIGKILL the destination's agent under load")
	signal(t, p.b, syscall.SIGKILL)
	_ = p.b.wait(t, 30*time.Second)
	stop.Store(true)
	wg.Wait()
	accepted, requested := p.app.counts()
	t.Logf("the app accepted %d connections, %d brought a request; the client saw %d answers", accepted, requested, answered.Load())

	t.Log("restart it; it sends what its spool holds")
	p.b = p.f.agent("b", p.meshB)
	// A segment leaves the spool only once the server has stored it.
	eventually(t, "b's spool sent", func() bool { return len(p.f.spoolSegments("b")) == 0 })
	opens := 0
	for _, r := range p.f.storedFlows(flow.Filter{To: "web"}) {
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
// database pool's connection would be), and waits, boundedly, for a clean
// exit.
func TestAgentStopsWhileAppsHoldConnections(t *testing.T) {
	p := newMeshPair(t)
	defer close(p.app.hold)
	hold := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
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
	stop := func(agent *proc) {
		t.Helper()
		signal(t, agent, syscall.SIGTERM)
		if err := agent.wait(t, 30*time.Second); err != nil {
			t.Fatalf("%s exited with %v after SIGTERM", agent.name, err)
		}
	}

	t.Log("the destination's agent holds an inbound connection to its app")
	c := hold()
	stop(p.b)
	c.Close()

	t.Log("the source's agent holds an outbound connection from its app")
	p.b = p.f.agent("b", p.meshB)
	eventually(t, "b back", func() bool { got, err := ask(p.upstream, "again"); return err == nil && got == "ok again" })
	c = hold()
	defer c.Close()
	stop(p.a)
}

// TestAgentMemoryLimit reads the agent's soft memory limit from its own
// metrics: 32 MiB by default, what --memory-limit says otherwise; a limit
// an agent cannot run in is refused before it starts.
func TestAgentMemoryLimit(t *testing.T) {
	f := newFleet(t)
	f.moat("svc", "register", "--node", "n1", "--name", "web", "--port", "8080")
	ports := freePorts(t, 2)
	metrics := loopback(ports[1])
	limit := func() string {
		t.Helper()
		var line string
		eventually(t, "the agent's metrics", func() bool {
			resp, err := http.Get("http://" + metrics + "/metrics")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "go_gc_gomemlimit_bytes ") {
					line = strings.TrimPrefix(l, "go_gc_gomemlimit_bytes ")
					return true
				}
			}
			return false
		})
		return line
	}
	a := f.agent("n1", loopback(ports[0]), "--metrics", metrics)
	if got := limit(); got != "3.3554432e+07" {
		t.Errorf("default memory limit %s, want 32 MiB", got)
	}
	signal(t, a, syscall.SIGTERM)
	if err := a.wait(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	a = f.agent("n1", loopback(ports[0]), "--metrics", metrics, "--memory-limit", "48MiB")
	if got := limit(); got != "5.0331648e+07" {
		t.Errorf("memory limit %s, want 48 MiB", got)
	}
	if _, err := f.try("agent", "--data-dir", filepath.Join(f.dir, "n1"), "--node", "n1", "--memory-limit", "1MiB", "--validate"); err == nil || !strings.Contains(err.Error(), "memory_limit") {
		t.Errorf("a 1 MiB limit: %v", err)
	}
}
