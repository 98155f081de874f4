package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/pquerna/otp/totp"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/metrics"
	"moat/internal/server"
	"moat/internal/testkit"
)

// openTunnel opens a mesh tunnel to addr presenting cert, as a node that
// kept an SVID would, and runs the multiplexer over it (answering the
// destination's keep-alives): the session ends when the destination cuts
// the tunnel.
func openTunnel(addr, service string, cert *tls.Certificate, now func() time.Time) (*yamux.Session, error) {
	d := &net.Dialer{Timeout: testkit.WaitLimit}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		Certificates: []tls.Certificate{*cert}, NextProtos: []string{"moat-tunnel/1"}, ServerName: service,
		InsecureSkipVerify: true, Time: now,
	})
	if err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
	b := make([]byte, 1)
	if _, err := conn.Read(b); err != nil || b[0] != 0x01 {
		conn.Close()
		return nil, errors.Join(errors.New("no tunnel-ready byte"), err)
	}
	conn.SetReadDeadline(time.Time{})
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	sess, err := yamux.Client(conn, cfg, nil)
	if err != nil {
		conn.Close()
	}
	return sess, err
}

// moveFixture is web on n1 allowed to db on n2, with n1's SVID for web
// and a tunnel to n2 carried on it.
type moveFixture struct {
	c      *cluster
	svid   *tls.Certificate
	serial string
	n2Mesh string
	tunnel *yamux.Session
	webReg api.Registration
	a1     *agent.Agent
	dbPort int
}

func newMoveFixture(t *testing.T) *moveFixture {
	c := newCluster(t)
	dbPort := streamApp(t)
	web := api.Registration{Name: "web", Node: "n1", Port: freePort(t), Upstreams: []api.Upstream{{Service: "db", LocalPort: freePort(t)}}}
	c.register(web)
	c.register(api.Registration{Name: "db", Node: "n2", Port: dbPort})
	doc := "default: deny\nrules:\n  - name: web-to-db\n    from: [web]\n    to: db\n    ports: [" + itoa(dbPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	a1 := c.startAgent("n1")
	a2 := c.startAgent("n2")
	f := &moveFixture{c: c, n2Mesh: c.agentCfg["n2"].MeshAddr, webReg: web, a1: a1, dbPort: dbPort}
	eventually(t, "web's and db's SVIDs", func() bool { return svidOf(a1, "web") != nil && svidOf(a2, "db") != nil })
	svid, err := a1.Certificate("web")
	if err != nil {
		t.Fatal(err)
	}
	f.svid, f.serial = svid, identity.SerialHex(svid.Leaf.SerialNumber)
	// n2 serves db once its own SVID and registry have arrived.
	eventually(t, "a tunnel from n1 as web to n2", func() bool {
		f.tunnel, err = openTunnel(f.n2Mesh, "db", svid, c.clk.Now)
		return err == nil
	})
	t.Cleanup(func() { f.tunnel.Close() })
	return f
}

// revocations returns the revocation list as the server at client has it.
func revocations(t *testing.T, c *cluster, client *api.Client) identity.Revocations {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	var info api.CAInfo
	if err := client.Call(ctx, http.MethodGet, api.PathCA, nil, &info); err != nil {
		t.Fatal(err)
	}
	return info.Revocations
}

// lastEntry returns the newest audit entry of action with result ok.
func lastEntry(t *testing.T, c *cluster, action string) audit.Entry {
	t.Helper()
	var page api.AuditEntries
	if err := c.call(http.MethodGet, api.PathAudit, nil, &page); err != nil {
		t.Fatal(err)
	}
	for _, e := range slices.Backward(page.Entries) {
		if e.Entry.Action == action && e.Entry.Result == "ok" {
			return e.Entry
		}
	}
	t.Fatalf("no %s entry in the audit log", action)
	return audit.Entry{}
}

// TestMoveRevokesSVIDsLeftBehind: moving web off n1 revokes the SVID n1
// holds for it. A peer then refuses a new tunnel on it and cuts the one it
// carries, and the audit entry of the move says what was revoked; another
// server of the control plane has the same list.
func TestMoveRevokesSVIDsLeftBehind(t *testing.T) {
	f := newMoveFixture(t)
	c := f.c
	t.Log("a second server over the same store")
	s2 := c.startPeerServer("s2")

	t.Log("move web from n1 to n3")
	moved := f.webReg
	moved.Node = "n3"
	c.register(moved)

	rev := revocations(t, c, c.admin)
	if !slices.Contains(rev.Serials, f.serial) {
		t.Fatalf("revocation list %v: want n1's SVID for web (serial %s) on it", rev.Serials, f.serial)
	}
	e := lastEntry(t, c, "svc.register")
	if e.Detail["left_node"] != "n1" || e.Detail["svids_revoked"] != strconv.Itoa(len(rev.Serials)) {
		t.Fatalf("svc.register entry %v: want left_node n1 and svids_revoked %d", e.Detail, len(rev.Serials))
	}
	t.Logf("audit: %v", e.Detail)
	eventually(t, "the second server to have the serial revoked", func() bool {
		return slices.Contains(revocations(t, c, s2).Serials, f.serial)
	})
	eventually(t, "n2 to refuse a new tunnel on the SVID left on n1", func() bool {
		return tunnelAccepts(f.n2Mesh, "db", f.svid, c.clk.Now) != nil
	})
	t.Logf("new tunnel: %v", tunnelAccepts(f.n2Mesh, "db", f.svid, c.clk.Now))
	select {
	case <-f.tunnel.CloseChan():
	case <-time.After(testkit.WaitLimit):
		t.Fatal("the tunnel carried on the SVID left on n1 is still open")
	}

	t.Log("n1 gets no new SVID for web")
	if err := nodeAsks(t, c, "n1", "web"); err == nil {
		t.Fatal("n1 was issued an SVID for web after web moved off it")
	}
}

// TestReregisterInPlaceRevokesNothing: registering web again on the node
// it runs on (a new port) leaves its SVIDs and tunnels alone; removing it
// then revokes them.
func TestReregisterInPlaceRevokesNothing(t *testing.T) {
	f := newMoveFixture(t)
	c := f.c
	t.Log("a canary: n1's tunnel to n2 as api, whose revocation shows n2 has the list")
	c.register(api.Registration{Name: "api", Node: "n1", Port: freePort(t)})
	doc := "default: deny\nrules:\n  - name: to-db\n    from: [web, api]\n    to: db\n    ports: [" + itoa(f.dbPort) + "]\n"
	if err := c.call(http.MethodPost, api.PathPolicy, api.PolicyRequest{YAML: doc}, nil); err != nil {
		t.Fatal(err)
	}
	var canary *yamux.Session
	eventually(t, "a tunnel from n1 as api to n2", func() bool {
		cert, err := f.a1.Certificate("api")
		if err != nil {
			return false
		}
		canary, err = openTunnel(f.n2Mesh, "db", cert, c.clk.Now)
		return err == nil
	})
	defer canary.Close()
	canarySVID, _ := f.a1.Certificate("api")

	t.Log("register web again on n1")
	again := f.webReg
	again.Port = freePort(t)
	c.register(again)
	if rev := revocations(t, c, c.admin); len(rev.Serials) != 0 {
		t.Fatalf("revocation list %v after registering web in place: want none", rev.Serials)
	}
	e := lastEntry(t, c, "svc.register")
	if _, ok := e.Detail["svids_revoked"]; ok {
		t.Fatalf("svc.register entry %v: want nothing revoked", e.Detail)
	}
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Serial: identity.SerialHex(canarySVID.Leaf.SerialNumber)}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-canary.CloseChan():
	case <-time.After(testkit.WaitLimit):
		t.Fatal("the canary's tunnel was not cut")
	}
	if f.tunnel.IsClosed() {
		t.Fatal("web's tunnel was cut by a registration in place")
	}
	if err := tunnelAccepts(f.n2Mesh, "db", f.svid, c.clk.Now); err != nil {
		t.Fatalf("n2 refused web's SVID after a registration in place: %v", err)
	}

	t.Log("deregister web")
	if err := c.call(http.MethodDelete, api.PathServices+"?name=web", nil, nil); err != nil {
		t.Fatal(err)
	}
	if rev := revocations(t, c, c.admin); !slices.Contains(rev.Serials, f.serial) {
		t.Fatalf("revocation list %v after deregistering web: want %s on it", rev.Serials, f.serial)
	}
	if e := lastEntry(t, c, "svc.deregister"); e.Detail["left_node"] != "n1" || e.Detail["svids_revoked"] == "" || e.Detail["svids_revoked"] == "0" {
		t.Fatalf("svc.deregister entry %v: want left_node n1 and the SVIDs revoked", e.Detail)
	}
	select {
	case <-f.tunnel.CloseChan():
	case <-time.After(testkit.WaitLimit):
		t.Fatal("web's tunnel outlived its deregistration")
	}
}

// nodeAsks asks the control plane, with node's credentials, for an SVID
// for service, and returns the refusal (nil when it was issued).
func nodeAsks(t *testing.T, c *cluster, node, service string) error {
	t.Helper()
	cl, err := api.NewClientFromDir(c.addr, filepath.Join(c.dir, "agent-"+node, "node"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.WaitLimit)
	defer cancel()
	err = cl.Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: service, CSR: csr}, nil)
	if err != nil && !errors.Is(err, api.ErrPermissionDenied) {
		t.Fatalf("%s asking for an SVID for %s: %v, want an answer or PermissionDenied", node, service, err)
	}
	return err
}

// startPeerServer starts another server of the control plane over the
// cluster's store, until the test ends, and returns an admin client of it.
func (c *cluster) startPeerServer(name string) *api.Client {
	c.t.Helper()
	srv, err := server.New(context.Background(), server.Config{
		Listen: "127.0.0.1:0", Name: name, Store: c.st, Audit: c.alog, Now: c.clk.Now, Logger: c.logger,
		Heartbeat: 200 * time.Millisecond, Flows: c.flows, Metrics: metrics.NewRegistry(), AuditLog: c.alog,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c.t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		c.t.Fatalf("server %s did not start: %v", name, err)
	}
	c.mu.Lock()
	secret := c.secrets[c.adminDir]
	c.mu.Unlock()
	code := func(context.Context) (string, error) {
		return totp.GenerateCode(secret, c.clk.Now().Add(30*time.Second))
	}
	s, err := api.NewAdminSession(srv.Addr(), c.adminDir, api.SessionConfig{Code: code, Now: c.clk.Now})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Client.Close() })
	return s.Client
}
