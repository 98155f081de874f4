package e2e

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/server"
)

// TestFleetRecoversAfterOutageLongerThanNodeCertificate stops the control
// plane for longer than a node certificate's life: when it returns, every
// agent re-attests with the node key pinned at join, by itself, and its
// services get SVIDs again.
func TestFleetRecoversAfterOutageLongerThanNodeCertificate(t *testing.T) {
	c := newCluster(t, func(ic *server.InitConfig) { ic.NodeTTL = 2 * time.Hour })
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	a1, a2 := c.startAgent("n1"), c.startAgent("n2")
	eventually(t, "first SVIDs", func() bool { return svidOf(a1, "api") != nil && svidOf(a2, "db") != nil })
	addr := c.addr

	t.Log("control plane down for three hours; node certificates last two")
	c.stopServer()
	for range 18 {
		c.clk.Advance(10 * time.Minute)
	}
	now := c.clk.Now()
	for _, a := range []interface{ NodeExpiry() time.Time }{a1, a2} {
		if !a.NodeExpiry().Before(now) {
			t.Fatalf("node certificate valid until %s, after the outage's end %s: the test proves nothing", a.NodeExpiry(), now)
		}
	}

	t.Log("control plane back: the fleet re-attests with its node keys")
	c.startServer(addr)
	// The clock moves only to bring a retry due while something is still
	// missing (settle), never on its own: a wait long in real time (a
	// loaded machine) cannot carry the clock past the new certificates'
	// renewal and expiry into a second re-attestation.
	c.settle("new node certificates, counted, and SVIDs", func() bool {
		now := c.clk.Now()
		for _, s := range []struct {
			a   *agent.Agent
			svc string
		}{{a1, "api"}, {a2, "db"}} {
			key, token := s.a.Reattestations()
			l := svidOf(s.a, s.svc)
			if !s.a.NodeExpiry().After(now) || key+token == 0 || l == nil || identity.CheckValidity(l, now) != nil {
				return false
			}
		}
		return true
	})
	for name, a := range map[string]interface{ Reattestations() (int64, int64) }{"n1": a1, "n2": a2} {
		if key, token := a.Reattestations(); key != 1 || token != 0 {
			t.Errorf("%s re-attested %d times with its node key and %d with a token, want 1 and 0", name, key, token)
		}
	}
	// Each re-attestation is on record as intent, then outcome.
	var outcomes []audit.Entry
	for _, e := range auditEntries(t, c, "node.reattest") {
		if e.Result != "pending" {
			outcomes = append(outcomes, e)
		}
	}
	if len(outcomes) != 2 {
		t.Fatalf("%d node.reattest outcomes in the audit log, want 2: %+v", len(outcomes), outcomes)
	}
	for _, e := range outcomes {
		if e.Result != "ok" || e.Detail["method"] != "node-key" {
			t.Errorf("audit entry %+v: want ok by node-key", e)
		}
	}

	t.Log("a stranger's re-attestation for n1 is refused")
	var resp api.CertResponse
	anon := api.NewClient(c.addr, api.ClientTLS(nil, a1.Trust()))
	defer anon.Close()
	err := anon.Call(t.Context(), http.MethodPost, api.PathReattest, api.ReattestRequest{Node: "n1", MeshAddr: "127.0.0.1:1", CSR: []byte("x"), Time: c.clk.Now(), Signature: []byte("forged")}, &resp)
	if err == nil {
		t.Fatal("a forged re-attestation was accepted")
	}
	t.Logf("forged re-attestation refused: %v", err)
}

// auditEntries returns the audit log's entries of action.
func auditEntries(t *testing.T, c *cluster, action string) []audit.Entry {
	t.Helper()
	all, err := c.alog.Entries(0, c.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Entry
	for _, e := range all {
		if e.Entry.Action == action {
			out = append(out, e.Entry)
		}
	}
	return out
}

// TestReattestWithJoinTokenWhenNodeKeyIsLost: a node whose certificate
// expired and whose node key is gone uses the --join token it was started
// with (given while its identity exists, the token is kept for this, not
// ignored), and says which way it re-attested.
func TestReattestWithJoinTokenWhenNodeKeyIsLost(t *testing.T) {
	c := newCluster(t, func(ic *server.InitConfig) { ic.NodeTTL = 2 * time.Hour })
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	for _, f := range []string{"attest.pem", "attest.sealed"} {
		os.Remove(filepath.Join(cfg.DataDir, "node", f))
	}

	// The operator's new token, made before the outage (admin calls use
	// the real clock, the servers the fake one).
	var tok api.TokenResponse
	if err := c.call(http.MethodPost, api.PathTokens, api.TokenRequest{Node: "n1", TTL: 24 * time.Hour}, &tok); err != nil {
		t.Fatal(err)
	}

	t.Log("three hours pass with the control plane down; the node key is lost meanwhile")
	addr := c.addr
	c.stopServer()
	for range 18 {
		c.clk.Advance(10 * time.Minute)
	}
	c.startServer(addr)
	cfg.Join = tok.Token
	a, _ = c.runAgent(cfg)
	// The agent adopts the new certificate, then counts how it got it:
	// wait for both. The clock moves only to bring a retry due (settle),
	// so however long the wait, it never reaches the new certificate's
	// end and a second re-attestation.
	c.settle("a new node certificate through the join token", func() bool {
		key, token := a.Reattestations()
		return a.NodeExpiry().After(c.clk.Now()) && key+token > 0
	})
	if key, token := a.Reattestations(); key != 0 || token != 1 {
		t.Fatalf("re-attested %d times with the node key and %d with the token, want 0 and 1", key, token)
	}
	c.settle("an SVID again", func() bool {
		l := svidOf(a, "api")
		return l != nil && identity.CheckValidity(l, c.clk.Now()) == nil
	})
}

// TestReattestByNodeKeyIsRateLimited: root on a node holds its node key,
// and with it may sign re-attestations at will (and replay one for five
// minutes). Each one that holds is two audit entries and may change the
// node's mesh address, which a renewal changes only at a bounded rate: so
// re-attestations are held to a rate per node too. Past it they are
// refused (429) and counted, never recorded one by one, and the log grows
// by a bounded number of entries however many are sent.
func TestReattestByNodeKeyIsRateLimited(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	key := attestKey(t, cfg.DataDir)
	anon := api.NewClient(c.addr, api.ClientTLS(nil, a.Trust()))
	defer anon.Close()
	before := len(auditEntries(t, c, "node.reattest"))
	const tries = 20
	ok, limited := 0, 0
	for i := range tries {
		_, csr, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		req := signedReattest(t, key, api.ReattestRequest{Node: "n1", MeshAddr: "127.0.0.1:" + itoa(20000+i), CSR: csr, Time: c.clk.Now()})
		var resp api.CertResponse
		err = anon.Call(t.Context(), http.MethodPost, api.PathReattest, req, &resp)
		var se *api.StatusError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("re-attestation %d: %v", i, err)
		}
	}
	if ok == 0 || ok > 2 || ok+limited != tries {
		t.Fatalf("of %d re-attestations signed by the node key, %d were answered and %d refused as too many: want at most 2 answered, the rest refused", tries, ok, limited)
	}
	if got := len(auditEntries(t, c, "node.reattest")) - before; got != 2*ok {
		t.Fatalf("%d node.reattest entries for %d re-attestations that held, want %d", got, ok, 2*ok)
	}
	t.Log("a minute on, the node may re-attest again")
	c.clk.Advance(time.Minute)
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if err := anon.Call(t.Context(), http.MethodPost, api.PathReattest, signedReattest(t, key, api.ReattestRequest{Node: "n1", CSR: csr, Time: c.clk.Now()}), &resp); err != nil {
		t.Fatalf("a re-attestation a minute later: %v", err)
	}
}

// TestRevokedNodeCannotReattest: root on a revoked node still holds its
// node key; a re-attestation signed with it is refused, as is a join with
// a fresh token for the name: a revoked node's name takes no certificate
// again.
func TestRevokedNodeCannotReattest(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	key := attestKey(t, cfg.DataDir)
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Node: "n1"}, nil); err != nil {
		t.Fatal(err)
	}
	tok := c.token("n1")
	anon := api.NewClient(c.addr, api.ClientTLS(nil, a.Trust()))
	defer anon.Close()
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	err = anon.Call(t.Context(), http.MethodPost, api.PathReattest, signedReattest(t, key, api.ReattestRequest{Node: "n1", CSR: csr, Time: c.clk.Now()}), &resp)
	if !errors.Is(err, api.ErrPermissionDenied) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked node's re-attestation: %v", err)
	}
	err = anon.Call(t.Context(), http.MethodPost, api.PathJoin, api.JoinRequest{Token: tok, Node: "n1", MeshAddr: "127.0.0.1:1", CSR: csr}, &resp)
	if !errors.Is(err, api.ErrPermissionDenied) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked node's join with a fresh token: %v", err)
	}
}

// attestKey reads the node key an agent without a keyring keeps in
// dataDir: what root on the node holds.
func attestKey(t *testing.T, dataDir string) *ecdsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "node", "attest.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("attest.pem: no PEM block")
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// signedReattest is req signed by key, as the node signs it.
func signedReattest(t *testing.T, key *ecdsa.PrivateKey, req api.ReattestRequest) api.ReattestRequest {
	t.Helper()
	req.Time = req.Time.UTC()
	sum := sha256.Sum256(api.ReattestPayload("example.org", req))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	req.Signature = sig
	return req
}

// TestReattestMeshAddrIsSigned: the mesh address a re-attestation moves
// the node to (where its peers dial it) is part of what the node key
// signs. Whoever captured a genuine request (a proxy, a copy of its body)
// and changes its address gets a refusal: the node's address stays, the
// audit log has nothing of it but the refusal's summary, and the very
// request unaltered still holds.
func TestReattestMeshAddrIsSigned(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	stop()
	key := attestKey(t, cfg.DataDir)
	// n1's mesh address as the control plane records it, read from its
	// store (an admin's listing would be audited itself).
	meshAddr := func() string {
		t.Helper()
		kv, err := c.st.Get(t.Context(), "node/n1")
		if err != nil {
			t.Fatal(err)
		}
		var n api.Node
		if err := json.Unmarshal(kv.Value, &n); err != nil {
			t.Fatal(err)
		}
		return n.MeshAddr
	}
	if got := meshAddr(); got != cfg.MeshAddr {
		t.Fatalf("n1's mesh address is %q, want %q", got, cfg.MeshAddr)
	}
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	moved := "127.0.0.1:" + itoa(freePort(t))
	genuine := signedReattest(t, key, api.ReattestRequest{Node: "n1", MeshAddr: moved, CSR: csr, Time: c.clk.Now()})
	before := c.alog.Size()

	t.Log("the node's signed request, its mesh address changed on the way")
	altered := genuine
	altered.MeshAddr = "127.0.0.1:1"
	anon := api.NewClient(c.addr, api.ClientTLS(nil, a.Trust()))
	defer anon.Close()
	var resp api.CertResponse
	err = anon.Call(t.Context(), http.MethodPost, api.PathReattest, altered, &resp)
	if !errors.Is(err, api.ErrUnauthenticated) {
		t.Fatalf("a re-attestation whose mesh address was altered after signing: %v, want refused as unauthenticated", err)
	}
	t.Logf("refused: %v", err)
	if got := meshAddr(); got != cfg.MeshAddr {
		t.Fatalf("after the refusal n1's mesh address is %q, want %q unchanged", got, cfg.MeshAddr)
	}
	eventually(t, "the refusal's summary", func() bool { n, _ := c.refusedSummaries(); return n >= 1 })
	entries, err := c.alog.Entries(before, c.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Entry.Action != server.ActionRefused {
			t.Errorf("audit entry %+v after the refused re-attestation: want only the refusals' summary", e.Entry)
		}
	}

	t.Log("the same request unaltered holds and moves the address the node signed")
	if err := anon.Call(t.Context(), http.MethodPost, api.PathReattest, genuine, &resp); err != nil {
		t.Fatalf("the genuine re-attestation: %v", err)
	}
	if got := meshAddr(); got != moved {
		t.Fatalf("after the genuine re-attestation n1's mesh address is %q, want %q", got, moved)
	}
}
