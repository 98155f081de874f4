package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/metrics"
	"moat/internal/metrics/metricstest"
	"moat/internal/testkit"
)

// echoApp is a loopback app that echoes one line back.
func echoApp(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, name+": "+line)
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// ports are below the kernel's ephemeral range, where the ports other
// tests' 127.0.0.1:0 listeners and outgoing connections get are never
// handed out, split between the packages that hand them out so that their
// test binaries, run in parallel by go test, never hand out the same one:
// this package takes 14000-17999 (testkit.Ports).
var ports = testkit.NewPorts(14000, 18000)

// freePort returns a loopback port that was free a moment ago and that
// no other caller in this process was given, for a port a configuration
// must name before its listener exists (an upstream's local port, an
// agent's mesh address). A port from 127.0.0.1:0, closed and named later,
// can meanwhile be taken by any other listener or connection.
func freePort(t *testing.T) int {
	t.Helper()
	port, err := ports.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// ask sends one line to addr and returns the answer ("" when the
// connection is refused or closed without one).
func ask(addr, line string) string {
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		return ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	io.WriteString(c, line+"\n")
	got, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(got)
}

// uidRecorder keeps the IDs of every record an agent produced.
type uidRecorder struct {
	mu   sync.Mutex // guards uids
	uids map[string]bool
}

func (u *uidRecorder) Write(r flow.Record) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.uids[r.Metadata.UID] = true
	return nil
}

func (u *uidRecorder) all() map[string]bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[string]bool, len(u.uids))
	for k := range u.uids {
		out[k] = true
	}
	return out
}

func TestMeshThroughAgents(t *testing.T) {
	c := newCluster(t)
	apiPort, dbPort := echoApp(t, "api"), echoApp(t, "db")
	toAPI, toDB := freePort(t), freePort(t)
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t),
		Upstreams: []api.Upstream{{Service: "api", LocalPort: toAPI}, {Service: "db", LocalPort: toDB}}})
	c.register(api.Registration{Name: "api", Node: "n2", Port: apiPort})
	c.register(api.Registration{Name: "db", Node: "n2", Port: dbPort})
	policyDoc := "default: deny\nrules:\n  - name: web-to-api\n    from: [frontend]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: policyDoc}, nil); err != nil {
		t.Fatal(err)
	}
	rec := &uidRecorder{uids: map[string]bool{}}
	reg1 := metrics.NewRegistry()
	c.startAgent("n1", func(cfg *agent.Config) { cfg.Flows = rec; cfg.Metrics = reg1 })
	c.startAgent("n2", func(cfg *agent.Config) { cfg.Flows = rec })

	t.Log("allowed: frontend → api through both agents")
	eventually(t, "frontend → api", func() bool { return ask(loopAddr(toAPI), "hello") == "api: hello" })

	t.Log("denied: frontend → db has no rule")
	if got := ask(loopAddr(toDB), "hello"); got != "" {
		t.Fatalf("frontend → db answered %q", got)
	}
	// Until db's agent holds db's SVID the refusal is a failed handshake;
	// ask again until the destination's policy decision is on record.
	eventually(t, "the deny record at the control plane", func() bool {
		if got := ask(loopAddr(toDB), "again"); got != "" {
			t.Fatalf("frontend → db answered %q", got)
		}
		recs, err := c.flows.Query(context.Background(), flow.Filter{Verdict: flow.VerdictDeny, Rule: "default-deny"})
		return err == nil && len(recs) > 0
	})

	t.Log("server down: agents keep carrying traffic and spool the records")
	addr := c.addr
	c.stopServer()
	for i := 0; i < 20; i++ {
		if got := ask(loopAddr(toAPI), "during outage"); got != "api: during outage" {
			t.Fatalf("connection %d during the outage: %q", i, got)
		}
	}
	c.startServer(addr)
	c.clk.Advance(3 * time.Second) // past the agents' watch backoff
	produced := rec.all()
	eventually(t, "every record at the control plane", func() bool {
		recs, err := c.flows.Query(context.Background(), flow.Filter{})
		if err != nil {
			return false
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.Metadata.UID]++
		}
		for uid := range produced {
			if got[uid] == 0 {
				return false
			}
		}
		for uid, n := range got {
			if n != 1 {
				t.Fatalf("record %s stored %d times", uid, n)
			}
		}
		return true
	})

	t.Log("policy diff replays the flows seen recently")
	var diff api.PolicyDiff
	if err := c.call(http.MethodPost, api.PathPolicyDiff, api.PolicyRequest{YAML: "default: deny\nrules: []\n"}, &diff); err != nil {
		t.Fatal(err)
	}
	if want := "recent flow frontend → api:" + itoa(apiPort) + " would now be DENIED"; !strings.Contains(diff.Text, want) {
		t.Fatalf("diff:\n%s\nwant a line containing %q", diff.Text, want)
	}

	t.Log("metrics over HTTP pass the linter and count the decisions")
	srv := httptest.NewServer(reg1)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	metricstest.Lint(t, string(body))
	names := metricstest.Parse(t, string(body))
	for _, want := range []string{"moat_mesh_handshakes_total", "moat_authz_decisions_total", "moat_svid_expiry_timestamp_seconds", "moat_flow_spool_bytes"} {
		if names[want] == nil {
			t.Errorf("metric %s missing", want)
		}
	}
	stext := metricstest.Text(t, c.reg)
	metricstest.Lint(t, stext)
	if len(metricstest.Parse(t, stext)) == 0 {
		t.Error("the server registered no metrics")
	}
}

func loopAddr(port int) string { return net.JoinHostPort("127.0.0.1", itoa(port)) }

func itoa(n int) string { return strconv.Itoa(n) }

// TestPolicyChangeCutsLiveConnections: a policy applied at the control plane
// reaches the agents, closes the live connection of the pair it now denies,
// and leaves the other pair alone.
func TestPolicyChangeCutsLiveConnections(t *testing.T) {
	c := newCluster(t)
	apiPort, dbPort := streamApp(t), streamApp(t)
	toAPI, toDB := freePort(t), freePort(t)
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t),
		Upstreams: []api.Upstream{{Service: "api", LocalPort: toAPI}, {Service: "db", LocalPort: toDB}}})
	c.register(api.Registration{Name: "api", Node: "n2", Port: apiPort})
	c.register(api.Registration{Name: "db", Node: "n2", Port: dbPort})
	both := "default: deny\nrules:\n  - name: to-api\n    from: [frontend]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n" +
		"  - name: to-db\n    from: [frontend]\n    to: db\n    ports: [" + itoa(dbPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: both}, nil); err != nil {
		t.Fatal(err)
	}
	c.startAgent("n1")
	c.startAgent("n2")
	var apiConn, dbConn net.Conn
	eventually(t, "both connections", func() bool {
		apiConn, dbConn = openEcho(loopAddr(toAPI)), openEcho(loopAddr(toDB))
		if apiConn == nil || dbConn == nil {
			// A half-open attempt must not leak its connection: it would
			// hold an app connection open past the test.
			for _, c := range []net.Conn{apiConn, dbConn} {
				if c != nil {
					c.Close()
				}
			}
			return false
		}
		return true
	})
	defer apiConn.Close()
	defer dbConn.Close()

	t.Log("apply a policy without to-db")
	onlyAPI := "default: deny\nrules:\n  - name: to-api\n    from: [frontend]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: onlyAPI}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the db connection to be cut", func() bool { return cut(dbConn) })
	if !echoes(apiConn) {
		t.Fatal("the still-allowed api connection was cut")
	}
}

// streamApp echoes every line on a connection until it closes.
func streamApp(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// openEcho opens a connection and checks one round trip; nil on failure.
// It is for a wait that tries again: a round trip slower than two seconds
// counts as a failure here.
func openEcho(addr string) net.Conn {
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		return nil
	}
	if roundTrip(c, "ping\n", 2*time.Second) != nil {
		c.Close()
		return nil
	}
	return c
}

// echoes sends a line on c and reports whether it came back, waiting as
// long as testkit.WaitLimit: a connection slow to answer on a loaded host
// is no connection cut.
func echoes(c net.Conn) bool { return roundTrip(c, "ping\n", testkit.WaitLimit) == nil }

// cut reports whether c was closed by its far end: a line sent on it finds
// the connection ended or reset. Silence for a second (a loaded host, an
// echo still on its way) is not taken for a cut; the echo a timed-out
// round trip leaves behind is read by the next, as it holds the same line.
func cut(c net.Conn) bool {
	err := roundTrip(c, "ping\n", time.Second)
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// roundTrip sends msg on c and reads it back within d.
func roundTrip(c net.Conn, msg string, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echoed %.40q, sent %.40q", buf, msg)
	}
	return nil
}

// TestAgentRestartWhileServerAway: an agent restarted while the control
// plane is down serves again from what it cached: node identity, SVIDs,
// registry and intentions.
func TestAgentRestartWhileServerAway(t *testing.T) {
	c := newCluster(t)
	apiPort := echoApp(t, "api")
	toAPI := freePort(t)
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{{Service: "api", LocalPort: toAPI}}})
	c.register(api.Registration{Name: "api", Node: "n2", Port: apiPort})
	doc := "default: deny\nrules:\n  - name: web-to-api\n    from: [frontend]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	cfg1, cfg2 := c.agentConfig("n1"), c.agentConfig("n2")
	_, stop1 := c.runAgent(cfg1)
	_, stop2 := c.runAgent(cfg2)
	eventually(t, "traffic", func() bool { return ask(loopAddr(toAPI), "one") == "api: one" })

	c.stopServer()
	t.Log("both agents restart while the server is down")
	stop1()
	stop2()
	cfg1.Join, cfg2.Join = "", ""
	c.runAgent(cfg1)
	c.runAgent(cfg2)
	eventually(t, "traffic after the restart", func() bool { return ask(loopAddr(toAPI), "two") == "api: two" })
}
