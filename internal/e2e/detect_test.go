package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/detect"
	"moat/internal/gateway"
	"moat/internal/identity"
)

// alerts collects the alerts an engine raises.
type alerts struct {
	mu  sync.Mutex // guards all
	all []detect.Alert
}

func (a *alerts) Notify(al detect.Alert) {
	a.mu.Lock()
	a.all = append(a.all, al)
	a.mu.Unlock()
}

// detecting restarts the control plane feeding a detection engine with
// rules (nil: the defaults) and returns the alerts it raises; the engine
// stops with the test.
func (c *cluster) detecting(rules map[string]detect.RuleConfig) *alerts {
	c.t.Helper()
	got := &alerts{}
	eng, err := detect.New(detect.Config{Rules: rules, Notifier: got, Now: c.clk.Now})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	go eng.Run(ctx)
	c.restartWith(eng)
	return got
}

func (a *alerts) fired(rule string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range a.all {
		if al.Rule == rule && al.Status == detect.StatusFiring {
			return true
		}
	}
	return false
}

func (a *alerts) subject(rule string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, al := range a.all {
		if al.Rule == rule {
			return al.Subject
		}
	}
	return ""
}

// TestDetectionRulesOnRealTraffic drives each mesh and control-plane
// detection rule with real traffic through real agents, into the server's
// flow store and detection, and waits for each rule's alert.
func TestDetectionRulesOnRealTraffic(t *testing.T) {
	c := newCluster(t)
	rules := detect.DefaultRules()
	for name, rc := range rules {
		rc.Learning = 0
		switch name {
		case detect.RuleScan, detect.RuleHandshake:
			rc.Threshold = 3
		case detect.RuleDenyBurst, detect.RuleWAFSpike:
			rc.Threshold = 5
		}
		rules[name] = rc
	}
	got := c.detecting(rules)

	apiPort, dbPort, cachePort, queuePort := echoApp(t, "api"), echoApp(t, "db"), echoApp(t, "cache"), echoApp(t, "queue")
	toAPI, toDB, toCache, toQueue := freePort(t), freePort(t), freePort(t), freePort(t)
	c.register(api.Registration{Name: "frontend", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{
		{Service: "api", LocalPort: toAPI}, {Service: "db", LocalPort: toDB}, {Service: "cache", LocalPort: toCache}, {Service: "queue", LocalPort: toQueue}}})
	for _, r := range []api.Registration{{Name: "api", Port: apiPort}, {Name: "db", Port: dbPort}, {Name: "cache", Port: cachePort}, {Name: "queue", Port: queuePort}} {
		r.Node = "n2"
		c.register(r)
	}
	c.register(api.Registration{Name: "gateway", Node: "edge", Port: freePort(t)})
	doc := "default: deny\nrules:\n  - name: web-to-api\n    from: [frontend, gateway]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n" +
		"  - name: db-audit\n    from: [api]\n    to: db\n    ports: [" + itoa(dbPort) + "]\n    mode: audit\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	c.startAgent("n1")
	n2 := c.startAgent("n2")

	t.Log("new_edge: frontend → api, allowed, first seen")
	eventually(t, "frontend → api", func() bool { return ask(loopAddr(toAPI), "hi") == "api: hi" })
	eventually(t, "new_edge alert", func() bool { return got.fired(detect.RuleNewEdge) })

	t.Log("audit_would_deny: frontend → db passes only because db audits")
	eventually(t, "frontend → db (audited)", func() bool { return ask(loopAddr(toDB), "q") == "db: q" })
	eventually(t, "audit_would_deny alert", func() bool { return got.fired(detect.RuleAuditWouldDeny) })

	t.Log("scan and deny_burst: frontend probes cache and queue, which no rule allows")
	eventually(t, "scan and deny_burst alerts", func() bool {
		ask(loopAddr(toCache), "x")
		ask(loopAddr(toQueue), "x")
		return got.fired(detect.RuleScan) && got.fired(detect.RuleDenyBurst)
	})

	t.Log("handshake_failures: a client with a certificate from another CA knocks on n2's mesh port")
	other, err := ca.New(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("example.org")})
	if err != nil {
		t.Fatal(err)
	}
	fid, _ := identity.ServiceID(spiffeid.RequireTrustDomainFromString("example.org"), "frontend")
	forged, err := other.Issue(fid, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "handshake_failures alert", func() bool {
		conn, err := tls.Dial("tcp", n2.Mesh().Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "api",
			Certificates: []tls.Certificate{*forged}, NextProtos: []string{"moat-tunnel/1"}, MinVersion: tls.VersionTLS13})
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			conn.Read(make([]byte, 1))
			conn.Close()
		}
		return got.fired(detect.RuleHandshake)
	})

	t.Log("revoked_identity: frontend is revoked, then calls api")
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Service: "frontend"}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "revoked_identity alert", func() bool {
		ask(loopAddr(toAPI), "after revocation")
		return got.fired(detect.RuleRevoked)
	})
	if s := got.subject(detect.RuleRevoked); s != "spiffe://example.org/svc/frontend" {
		t.Fatalf("revoked_identity subject %q", s)
	}

	t.Log("waf_spike: a client sends attacks through the edge gateway, which blocks them")
	edge := c.startAgent("edge")
	gw := startGateway(t, c, edge, apiPort)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gw.roots}}}
	eventually(t, "waf_spike alert", func() bool {
		resp, err := client.Get("https://" + gw.addr + "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("an XSS attack through the gateway answered %s", resp.Status)
			}
		}
		return got.fired(detect.RuleWAFSpike)
	})
	if s := got.subject(detect.RuleWAFSpike); s != "127.0.0.1" {
		t.Fatalf("waf_spike subject %q, want the client's address", s)
	}

	t.Log("policy_widened: an operator applies a wildcard source")
	wide := doc + "  - name: anyone-to-api\n    from: [\"*\"]\n    to: api\n    ports: [" + itoa(apiPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: wide}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "policy_widened alert", func() bool { return got.fired(detect.RulePolicyWidened) })
}

// edgeGateway is a running gateway with a self-signed certificate.
type edgeGateway struct {
	addr  string
	roots *x509.CertPool
}

// startGateway runs the edge gateway (WAF on, CRS at paranoia 1) on the
// mesh of agent a, calling as service "gateway", with one route to api;
// opts adjust its config.
func startGateway(t *testing.T, c *cluster, a *agent.Agent, apiPort int, opts ...func(*gateway.Config)) edgeGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edge"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	cert := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	file := filepath.Join(c.dir, "gateway.yaml")
	yaml := "listen: 127.0.0.1:0\nredirect_listen: \"off\"\nwaf: {paranoia: 1}\nroutes:\n  - path: /\n    service: api\n    port: " + itoa(apiPort) + "\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := gateway.Config{
		File:   file,
		Logger: c.logger,
		Now:    c.clk.Now,
		Dial: func(ctx context.Context, service string, port int) (net.Conn, error) {
			return a.Mesh().Dial(ctx, "gateway", service, port)
		},
		CredentialsChanged: a.SVIDChanged,
		Services:           a.Services,
		Events:             a.Flows(),
		GetCertificate:     func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
	}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("gateway: %v", err)
		}
	})
	return edgeGateway{addr: g.Addr().String(), roots: roots}
}
