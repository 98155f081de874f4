package mesh

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/policy"
	"moat/internal/testkit"
)

// testPolicy is the issue's policy plus a permissive service.
const testPolicy = `default: deny
services:
  legacy: {mode: permissive}
rules:
  - name: web-to-api
    from: [gateway, frontend]
    to: api
    ports: [8080]
  - name: api-to-db
    from: [api]
    to: db
    ports: [5432]
    mode: audit
`

// clock is a settable clock; it follows real time plus an offset.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// svids is an Identities backed by a map.
type svids struct {
	mu sync.Mutex
	m  map[string]*tls.Certificate
}

func (s *svids) Certificate(service string) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[service]
	if !ok {
		return nil, fmt.Errorf("no SVID for %q", service)
	}
	return c, nil
}

func (s *svids) set(service string, c *tls.Certificate) {
	s.mu.Lock()
	s.m[service] = c
	s.mu.Unlock()
}

// records collects flow records.
type records struct {
	mu  sync.Mutex
	all []flow.Record
}

func (r *records) Write(rec flow.Record) error {
	r.mu.Lock()
	r.all = append(r.all, rec)
	r.mu.Unlock()
	return nil
}

// waitFor waits (boundedly) for a record matching pred.
func (r *records) waitFor(t testing.TB, what string, pred func(flow.Record) bool) flow.Record {
	t.Helper()
	deadline := time.Now().Add(testkit.WaitLimit)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, rec := range r.all {
			if pred(rec) {
				r.mu.Unlock()
				return rec
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.all {
		t.Logf("record: dir=%d %s → %s verdict=%s rule=%v reason=%q kind=%q", rec.ConnectionInfo.DirectionID,
			rec.SrcEndpoint.SvcName, rec.DstEndpoint.SvcName, rec.Verdict(), rec.FirewallRule, rec.Unmapped.Reason, rec.Unmapped.Kind)
	}
	t.Fatalf("no flow record: %s", what)
	return flow.Record{}
}

type fixture struct {
	td spiffeid.TrustDomain
	ca *ca.CA

	mu    sync.Mutex // guards where
	where map[string]string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("example.org")
	c, err := ca.New(ca.Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{td: td, ca: c, where: map[string]string{}}
}

func (f *fixture) issue(t testing.TB, service string, ttl time.Duration) *tls.Certificate {
	t.Helper()
	id, err := identity.ServiceID(f.td, service)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := f.ca.Issue(id, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func (f *fixture) resolve(service string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.where[service]
	if !ok {
		return "", fmt.Errorf("unknown service %q", service)
	}
	return a, nil
}

type agent struct {
	m     *Mesh
	trust *identity.Trust
	ids   *svids
	clock *clock
	flows *records
}

func mustPolicy(t testing.TB, src string) *policy.Table {
	t.Helper()
	p, err := policy.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newAgent starts a mesh for services, issuing each an SVID of the
// fixture's CA, and registers the services' location.
func (f *fixture) newAgent(t testing.TB, node string, services []Service, opts ...func(*Config)) *agent {
	t.Helper()
	a := &agent{clock: &clock{}, ids: &svids{m: map[string]*tls.Certificate{}}, flows: &records{}}
	a.trust = identity.NewTrust(identity.TrustConfig{TrustDomain: f.td, Now: a.clock.Now})
	a.trust.Update(f.ca.Bundle(), identity.Revocations{})
	for _, s := range services {
		a.ids.set(s.Name, f.issue(t, s.Name, time.Hour))
	}
	cfg := Config{
		Node: node, TrustDomain: f.td, Trust: a.trust, Identities: a.ids,
		Policy: mustPolicy(t, testPolicy), Flows: a.flows, Resolve: f.resolve, Now: a.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.m = m
	if err := m.SetServices(services); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	for _, s := range services {
		f.where[s.Name] = m.Addr().String()
	}
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: Run: %v", node, err)
			}
		case <-time.After(testkit.WaitLimit):
			t.Errorf("%s: Run did not return", node)
		}
	})
	return a
}

func (a *agent) local(t testing.TB, src, dst string) string {
	t.Helper()
	addr, ok := a.m.LocalAddr(src, dst)
	if !ok {
		t.Fatalf("no outbound listener %s → %s", src, dst)
	}
	return addr.String()
}

// startApp runs handle for every connection to a loopback listener. Its
// accept loop rides out failed accepts as the agent's do: it shares the
// test's process, so a test that uses up the descriptors (to flood the
// mesh port) makes its accept fail too, and its goroutine may make its
// first accept only then.
func startApp(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := AcceptRetrying(ln, nil)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echo copies everything back and half-closes at EOF.
func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.Copy(io.Discard, c)
}

// call sends one line and reads one line back.
func call(addr, msg string) (string, error) {
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
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// pair is the standard two-agent setup: node-a runs callers, node-b runs
// api, db and legacy.
type pair struct {
	f    *fixture
	a, b *agent
}

func newPair(t testing.TB) *pair {
	t.Helper()
	f := newFixture(t)
	app := startApp(t, echo)
	b := f.newAgent(t, "node-b", []Service{
		{Name: "api", Port: 8080, AppAddr: app},
		{Name: "db", Port: 5432, AppAddr: app},
		{Name: "legacy", Port: 9000, AppAddr: app},
	})
	a := f.newAgent(t, "node-a", []Service{
		{Name: "frontend", Port: 3000, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}, {Service: "db", Port: 5432}}},
		{Name: "gateway", Port: 3001, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}},
		{Name: "batch", Port: 3002, AppAddr: app, Upstreams: []Upstream{{Service: "api", Port: 8080}}},
	})
	return &pair{f: f, a: a, b: b}
}

var errNoAnswer = errors.New("no answer")

func revokeSerial(cert *tls.Certificate) identity.Revocations {
	return identity.Revocations{Version: 1, Serials: []string{identity.SerialHex(cert.Leaf.SerialNumber)}}
}
