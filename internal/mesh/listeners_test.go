package mesh

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"moat/internal/flow"
	"moat/internal/testkit"
)

// ports are below the kernel's ephemeral range and split between the
// packages that hand them out (testkit.Ports): this package takes
// 18000-18999.
var ports = testkit.NewPorts(18000, 19000)

// reserve returns a loopback address nobody listens on now and that no
// other caller in this process was given. (An address from 127.0.0.1:0,
// closed and bound later, can meanwhile be taken by any other listener or
// connection.)
func reserve(t *testing.T) string {
	t.Helper()
	port, err := ports.Run(1)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// TestPortChangeRebinds is the wedge: the destination's port changes, so
// the upstream listener on the same local address must be rebound. Before,
// the new listener was bound before the old one closed, the whole set was
// refused, and the node kept its old service map until a restart.
func TestPortChangeRebinds(t *testing.T) {
	p := newPair(t)
	local := reserve(t)
	fe := Service{Name: "frontend", Port: 3000, AppAddr: "127.0.0.1:1", Upstreams: []Upstream{{Service: "api", Port: 8080, LocalAddr: local}}}
	if err := p.a.m.SetServices([]Service{fe}); err != nil {
		t.Fatal(err)
	}
	if got, err := call(local, "before"); err != nil || got != "before" {
		t.Fatalf("before: %q %v", got, err)
	}
	t.Log("api moves to port 8081 on node-b; the local address stays")
	app := startApp(t, echo)
	if err := p.b.m.SetServices([]Service{{Name: "api", Port: 8081, AppAddr: app}}); err != nil {
		t.Fatal(err)
	}
	p.b.m.SetPolicy(mustPolicy(t, strings.Replace(testPolicy, "ports: [8080]", "ports: [8081]", 1)))
	fe.Upstreams[0].Port = 8081
	if err := p.a.m.SetServices([]Service{fe}); err != nil {
		t.Fatalf("port change: %v", err)
	}
	if got, err := call(local, "after"); err != nil || got != "after" {
		t.Fatalf("after the port change: %q %v", got, err)
	}
	p.b.flows.waitFor(t, "the call on the new port", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "frontend", "api")(r) && r.DstEndpoint.Port == 8081 && r.Verdict() == flow.VerdictAllow
	})
}

// TestFailedListenerRetries: one listener whose address is taken does not
// hold back the rest; it is retried with backoff, reported by Health and
// the stats, and binds once the address frees up.
func TestFailedListenerRetries(t *testing.T) {
	p := newPair(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fe := Service{Name: "frontend", Port: 3000, AppAddr: "127.0.0.1:1", Upstreams: []Upstream{
		{Service: "api", Port: 8080},
		{Service: "db", Port: 5432, LocalAddr: busy.Addr().String()},
	}}
	gw := Service{Name: "gateway", Port: 3001, AppAddr: "127.0.0.1:1", Upstreams: []Upstream{{Service: "api", Port: 8080}}}
	err = p.a.m.SetServices([]Service{fe, gw, {Name: "Bad_Name", Port: 1}})
	if err == nil || !strings.Contains(err.Error(), `upstream "db": listener`) || !strings.Contains(err.Error(), "bad name") {
		t.Fatalf("SetServices: %v", err)
	}
	t.Log("the rest of the set applies")
	for _, pair := range [][2]string{{"frontend", "api"}, {"gateway", "api"}} {
		if got, err := call(p.a.local(t, pair[0], pair[1]), "x"); err != nil || got != "x" {
			t.Fatalf("%s → %s: %q %v", pair[0], pair[1], got, err)
		}
	}
	var failing ListenerHealth
	for _, h := range p.a.m.Health() {
		if h.Upstream == "db" {
			failing = h
		}
	}
	if failing.OK || !strings.Contains(failing.Error, "address already in use") || failing.Failures < 1 {
		t.Fatalf("health of the failing listener: %+v", failing)
	}
	if st := p.a.m.Stats(); st.ListenersFailing != 1 || st.ListenFailures < 1 {
		t.Fatalf("stats %+v", st)
	}
	t.Log("the address frees up: the retry binds it")
	busy.Close()
	testkit.WaitFor(t, "the db listener to bind", func() bool { _, ok := p.a.m.LocalAddr("frontend", "db"); return ok })
	if st := p.a.m.Stats(); st.ListenersFailing != 0 {
		t.Fatalf("stats after recovery %+v", st)
	}
	if got, err := call(p.a.local(t, "frontend", "db"), "select 1"); err != nil || got != "select 1" {
		t.Fatalf("frontend → db after recovery: %q %v", got, err)
	}
}

// TestDeregistrationStopsTraffic: a service removed from a node stops
// carrying traffic at once, live connections included, at both ends.
func TestDeregistrationStopsTraffic(t *testing.T) {
	for _, end := range []string{"source", "destination"} {
		t.Run(end, func(t *testing.T) {
			p := newPair(t)
			s := openSession(t, p.a.local(t, "frontend", "api"))
			if end == "source" {
				if err := p.a.m.SetServices(nil); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := p.b.m.SetServices([]Service{{Name: "db", Port: 5432, AppAddr: "127.0.0.1:1"}}); err != nil {
					t.Fatal(err)
				}
			}
			_ = s.c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
			_, _ = io.WriteString(s.c, "still there?\n")
			if line, err := s.br.ReadString('\n'); err == nil {
				t.Fatalf("the live connection of a deregistered service still answers %q", line)
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the live connection of a deregistered service was not closed")
			}
			if end == "source" {
				if _, ok := p.a.m.LocalAddr("frontend", "api"); ok {
					t.Fatal("the upstream listener survived")
				}
			} else {
				r := p.b.flows.waitFor(t, "cut record", func(r flow.Record) bool {
					return isFlow(flow.DirectionInbound, "frontend", "api")(r) && r.ActivityID == activityCut
				})
				if r.Unmapped.ReasonCode != flow.ReasonServiceRemoved {
					t.Fatalf("cut code %q", r.Unmapped.ReasonCode)
				}
			}
		})
	}
}

const permissivePolicy = `default: deny
services:
  legacy: {mode: permissive}
rules:
  - name: web-to-api
    from: [frontend]
    to: api
    ports: [8080]
  - name: loopback-to-legacy
    from_plaintext: [127.0.0.0/8]
    to: legacy
    ports: [9000]
`

// lineClient is an ordinary client: it connects and speaks its protocol.
func lineClient(addr, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, testkit.WaitLimit)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

// TestPermissivePlaintextListener: a permissive service takes ordinary
// clients on its own plaintext port, and the intentions decide them.
func TestPermissivePlaintextListener(t *testing.T) {
	f := newFixture(t)
	app := startApp(t, echo)
	plainAddr, strictAddr := reserve(t), reserve(t)
	b := f.newAgent(t, "node-b", []Service{
		{Name: "legacy", Port: 9000, AppAddr: app, PlaintextAddr: plainAddr},
		{Name: "api", Port: 8080, AppAddr: app, PlaintextAddr: strictAddr},
	})
	b.m.SetPolicy(mustPolicy(t, permissivePolicy))
	if _, ok := b.m.PlaintextAddr("api"); ok {
		t.Fatal("a strict service got a plaintext listener")
	}
	t.Log("an ordinary client (no tunnel header) reaches legacy: rule loopback-to-legacy admits 127.0.0.0/8")
	if got, err := lineClient(plainAddr, "old client"); err != nil || got != "old client" {
		t.Fatalf("plaintext client: %q %v", got, err)
	}
	r := b.flows.waitFor(t, "plaintext record", isFlow(flow.DirectionInbound, "", "legacy"))
	if r.TLS == nil || r.TLS.Version != "none" || r.Unmapped.Mode != "permissive" || r.SrcEndpoint.UID != "" ||
		r.Verdict() != flow.VerdictAllow || r.FirewallRule.Name != "loopback-to-legacy" || r.SrcEndpoint.IP != "127.0.0.1" {
		t.Fatalf("plaintext record tls=%+v rule=%+v unmapped=%+v src=%+v", r.TLS, r.FirewallRule, r.Unmapped, r.SrcEndpoint)
	}
	if st := b.m.Stats(); st.Plaintext != 1 {
		t.Fatalf("plaintext count %d", st.Plaintext)
	}

	t.Log("the policy stops admitting loopback: the live plaintext connection is cut, new ones refused")
	s := openSession(t, plainAddr)
	b.m.SetPolicy(mustPolicy(t, strings.Replace(permissivePolicy, "127.0.0.0/8", "10.0.0.0/8", 1)))
	_ = s.c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := s.br.ReadString('\n'); err == nil {
		t.Fatal("plaintext connection survived")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the live plaintext connection was not cut")
	}
	if got, err := lineClient(plainAddr, "again"); err == nil {
		t.Fatalf("a plaintext caller from outside from_plaintext got %q", got)
	}
	b.flows.waitFor(t, "the refusal", func(r flow.Record) bool {
		return isFlow(flow.DirectionInbound, "", "legacy")(r) && r.Unmapped.ReasonCode == flow.ReasonPolicyDenied
	})

	t.Log("legacy turns strict: its plaintext listener closes")
	b.m.SetPolicy(mustPolicy(t, strings.Replace(permissivePolicy, "legacy: {mode: permissive}", "legacy: {mode: strict}", 1)))
	if _, ok := b.m.PlaintextAddr("legacy"); ok {
		t.Fatal("a strict service kept its plaintext listener")
	}
	if _, err := lineClient(plainAddr, "strict now"); err == nil {
		t.Fatal("plaintext reached a strict service")
	}
}

// TestPermissiveHonoursIntentions is the attack: on a permissive service
// with no rule admitting plaintext, a plaintext caller got in (rule
// "permissive") whoever it was, on the mesh port, with the tunnel header.
func TestPermissiveHonoursIntentions(t *testing.T) {
	p := newPair(t) // legacy is permissive in testPolicy; no rule admits plaintext
	connID := flow.NewID()
	req, _ := AppendRequest(nil, Request{Service: "legacy", Port: 9000, ConnID: connID}, headerV2)
	c, err := net.DialTimeout("tcp", p.b.m.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := c.Write(append(req, "sneaky\n"...)); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(c); strings.Contains(string(got), "sneaky") {
		t.Fatalf("plaintext on the mesh port reached the app: %q", got)
	}
	r := p.b.flows.waitFor(t, "refusal", func(r flow.Record) bool { return r.Unmapped.Kind == kindHandshake })
	if r.Unmapped.ReasonCode != flow.ReasonPlaintext {
		t.Fatalf("code %q", r.Unmapped.ReasonCode)
	}
	if p.b.m.Stats().Plaintext != 0 {
		t.Fatal("plaintext counted as accepted")
	}
}

// TestCloseEndsHeldAppConnections: an app holding an outbound connection
// open must not keep the mesh (and the agent) from stopping.
func TestCloseEndsHeldAppConnections(t *testing.T) {
	p := newPair(t)
	s := openSession(t, p.a.local(t, "frontend", "api"))
	done := make(chan struct{})
	go func() {
		_ = p.a.m.Close()
		p.a.m.wg.Wait() // every connection handler has returned
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(testkit.WaitLimit):
		t.Fatal("the mesh did not stop while an app held a connection")
	}
	_ = s.c.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
	if _, err := s.br.ReadString('\n'); err == nil {
		t.Fatal("the held connection is still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the held connection was not closed")
	}
}
