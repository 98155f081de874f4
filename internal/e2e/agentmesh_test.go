package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/flow"
	"moat/internal/testkit"
)

func (c *cluster) listing(name string) api.ServiceListing {
	c.t.Helper()
	var regs []api.ServiceListing
	if err := c.call(http.MethodGet, api.PathServices, nil, &regs); err != nil {
		c.t.Fatal(err)
	}
	for _, r := range regs {
		if r.Name == name {
			return r
		}
	}
	c.t.Fatalf("service %q not listed", name)
	return api.ServiceListing{}
}

// TestPortChangeThroughAgents is the wedge, end to end: db's port changes
// at the control plane; n1's agent must move the upstream listener that
// keeps its local address. Then a listener whose address is taken shows as
// failing in svc list while the rest serves, and recovers; and a
// deregistered service's live connection is cut.
func TestPortChangeThroughAgents(t *testing.T) {
	c := newCluster(t)
	db1, db2 := echoApp(t, "db1"), echoApp(t, "db2")
	toDB := freePort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	toAPI := busy.Addr().(*net.TCPAddr).Port
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{{Service: "db", LocalPort: toDB}}})
	c.register(api.Registration{Name: "db", Node: "n2", Port: db1})
	c.register(api.Registration{Name: "api", Node: "n2", Port: echoApp(t, "api")})
	doc := "default: deny\nrules:\n  - name: fe-to-db\n    from: [frontend]\n    to: db\n    ports: [" + itoa(db1) + ", " + itoa(db2) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	c.startAgent("n1")
	c.startAgent("n2")
	eventually(t, "frontend → db on its first port", func() bool { return ask(loopAddr(toDB), "x") == "db1: x" })

	t.Log("db moves to another port; the upstream's local address stays")
	c.register(api.Registration{Name: "db", Node: "n2", Port: db2})
	eventually(t, "frontend → db on its new port", func() bool { return ask(loopAddr(toDB), "y") == "db2: y" })

	t.Log("a new upstream whose local port is taken: reported failing, the rest serves")
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t),
		Upstreams: []api.Upstream{{Service: "db", LocalPort: toDB}, {Service: "api", LocalPort: toAPI}}})
	eventually(t, "svc list to show the failing listener", func() bool {
		for _, h := range c.listing("frontend").Health {
			if h.Upstream == "api" && !h.OK && strings.Contains(h.Error, "address already in use") {
				return true
			}
		}
		return false
	})
	if got := ask(loopAddr(toDB), "z"); got != "db2: z" {
		t.Fatalf("the rest of the set stopped serving: %q", got)
	}
	busy.Close()
	eventually(t, "the listener to recover in svc list", func() bool {
		l := c.listing("frontend")
		if len(l.Health) != 2 {
			return false
		}
		for _, h := range l.Health {
			if !h.OK {
				return false
			}
		}
		return true
	})

	t.Log("frontend is deregistered: its live connection is cut")
	conn, err := net.Dial("tcp", loopAddr(toDB))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "a line not yet ended") // db waits for the rest
	if err := c.call(http.MethodDelete, api.PathServices+"?name=frontend", nil, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the deregistered service's connection was not closed: %v", err)
	}
	t.Logf("deregistration cut the live connection after %v", time.Since(start).Round(time.Millisecond))
}

// freezer is a TCP proxy whose connections can be frozen: they stay open
// and forward nothing, as a half-open connection behaves.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex // guards conns and flags
	conns  []net.Conn
	flags  []*atomic.Bool
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			frozen := &atomic.Bool{}
			f.mu.Lock()
			f.conns = append(f.conns, in, out)
			f.flags = append(f.flags, frozen)
			f.mu.Unlock()
			go f.copy(out, in, frozen)
			go f.copy(in, out, frozen)
		}
	}()
	return f
}

// copy forwards until the proxy freezes; from then on this connection
// swallows everything.
func (f *freezer) copy(dst, src net.Conn, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen.Load() {
			dst.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// freeze makes every connection open now silent; new ones forward.
func (f *freezer) freeze() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fl := range f.flags {
		fl.Store(true)
	}
	return len(f.flags)
}

// TestWatchReconnectsFromHalfOpenConnection: the connection under the watch
// stream goes silent without a reset (a proxy stops forwarding). The agent
// must notice within about three heartbeats and reconnect, so that a policy
// change still reaches it.
func TestWatchReconnectsFromHalfOpenConnection(t *testing.T) {
	c := newCluster(t)
	proxy := newFreezer(t, c.addr)
	c.register(api.Registration{Name: "api", Node: "n1", Port: echoApp(t, "api")})
	a := c.startAgent("n1", func(cfg *agent.Config) {
		cfg.Server = proxy.ln.Addr().String()
		cfg.WatchTimeout = time.Second // the cluster's heartbeat is 200ms
	})
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	t.Log("the proxy stops forwarding on the open connection")
	n := proxy.freeze()
	if n == 0 {
		t.Fatal("no connection through the proxy")
	}
	doc := "default: deny\nrules:\n  - name: r1\n    from: [web]\n    to: api\n    ports: [80]\n"
	var applied api.PolicyApplied
	eventually(t, "the policy apply", func() bool {
		return c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, &applied) == nil
	})
	start := time.Now()
	eventually(t, "the agent to receive the policy over a new connection", func() bool { return a.Policy().Version == applied.Policy.Version })
	t.Logf("policy received %v after the apply", time.Since(start).Round(time.Millisecond))
}

// TestLongLivedConnectionVisible: a long-lived connection shows up at the
// control plane while it is open, its bytes advance each interval, and once
// it ends the top talkers count it once with the bytes actually sent.
func TestLongLivedConnectionVisible(t *testing.T) {
	c := newCluster(t)
	dbPort := streamApp(t)
	toDB := freePort(t)
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{{Service: "db", LocalPort: toDB}}})
	c.register(api.Registration{Name: "db", Node: "n2", Port: dbPort})
	doc := "default: deny\nrules:\n  - name: fe-to-db\n    from: [frontend]\n    to: db\n    ports: [" + itoa(dbPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	interval := func(cfg *agent.Config) { cfg.FlowInterval = 300 * time.Millisecond }
	c.startAgent("n1", interval)
	c.startAgent("n2", interval)
	var conn net.Conn
	eventually(t, "a connection frontend → db", func() bool { conn = openEcho(loopAddr(toDB)); return conn != nil })
	opened := time.Now()
	records := func(activity int) []flow.Record {
		recs, err := c.flows.Query(context.Background(), flow.Filter{To: "db"})
		if err != nil {
			t.Fatal(err)
		}
		var out []flow.Record
		for _, r := range recs {
			if r.ActivityID == activity && r.ConnectionInfo.DirectionID == flow.DirectionInbound {
				out = append(out, r)
			}
		}
		return out
	}
	eventually(t, "the open record at the control plane", func() bool { return len(records(flow.ActivityOpen)) == 1 })
	t.Logf("open record stored %v after the connection opened", time.Since(opened).Round(time.Millisecond))
	id := records(flow.ActivityOpen)[0].ConnectionInfo.UID

	sent := int64(5) // openEcho's "ping\n"
	total := func() int64 {
		n := int64(0)
		for _, a := range []int{flow.ActivityOpen, flow.ActivityTraffic} {
			for _, r := range records(a) {
				if r.ConnectionInfo.UID == id {
					n += r.Traffic.BytesIn
				}
			}
		}
		return n
	}
	for i := 0; i < 2; i++ {
		msg := strings.Repeat("x", 1000) + "\n"
		if err := roundTrip(conn, msg, testkit.WaitLimit); err != nil {
			t.Fatalf("the connection stopped echoing: %v", err)
		}
		sent += int64(len(msg))
		eventually(t, "the interim records to carry the bytes sent so far", func() bool { return total() == sent })
		t.Logf("after %d bytes: interim records add up to %d", sent, total())
	}
	conn.Close()
	eventually(t, "the close record", func() bool { return len(records(flow.ActivityClose)) == 1 })
	top, err := c.flows.TopTalkers(context.Background(), flow.Filter{To: "db"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top[0].Flows != 1 || top[0].Bytes != 2*sent {
		t.Fatalf("top talkers %+v; want one flow of %d bytes (%d each way)", top, 2*sent, sent)
	}
}
