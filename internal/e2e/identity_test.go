package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/testkit"
)

func newAgentErr(c *cluster, node, token string) error {
	_, err := agent.New(context.Background(), agent.Config{
		DataDir: filepath.Join(c.t.TempDir(), node), Server: c.addr, Join: token, Node: node,
		MeshAddr: "127.0.0.1:" + itoa(freePort(c.t)), Now: c.clk.Now, Logger: c.logger,
	})
	return err
}

func TestJoinRefusals(t *testing.T) {
	c := newCluster(t)
	good := c.token("n1")
	_, pin, _ := api.SplitToken(good)

	t.Log("a forged token with the right pin is refused")
	forged := api.TokenPrefix + strings.Repeat("A", 43) + "." + pin
	if err := newAgentErr(c, "n1", forged); err == nil || !strings.Contains(err.Error(), "not issued by this control plane") {
		t.Fatalf("forged token: %v", err)
	}

	t.Log("a token pinned to another root never reaches the server")
	otherPin := strings.Repeat("B", 43)
	secret, _, _ := api.SplitToken(good)
	if err := newAgentErr(c, "n1", api.TokenPrefix+secret+"."+otherPin); err == nil || !strings.Contains(err.Error(), "does not hold the root the join token names") {
		t.Fatalf("wrong pin: %v", err)
	}

	t.Log("a token is bound to its node")
	if err := newAgentErr(c, "n2", good); err == nil || !strings.Contains(err.Error(), "bound to another node") {
		t.Fatalf("other node: %v", err)
	}

	t.Log("the first use succeeds, the second is refused")
	if err := newAgentErr(c, "n1", good); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := newAgentErr(c, "n1", good); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("reuse: %v", err)
	}

	t.Log("an expired token is refused")
	var resp api.TokenResponse
	if err := c.call(http.MethodPost, api.PathTokens, api.TokenRequest{Node: "n3", TTL: time.Minute}, &resp); err != nil {
		t.Fatal(err)
	}
	c.clk.Advance(2 * time.Minute)
	if err := newAgentErr(c, "n3", resp.Token); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}

	t.Log("the join is audited before and after; the refusals are summarised")
	entries, err := c.alog.Entries(0, c.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, e := range entries {
		if e.Entry.Action == "node.join" {
			results = append(results, e.Entry.Result)
		}
	}
	if strings.Join(results, ",") != "pending,ok" {
		t.Fatalf("node.join entries %q, want the intent and the outcome of the one join", results)
	}
	// The summaries count every refused call: the token calls' refusals
	// for want of an MFA session are there too. The joins are the four
	// lines naming node.join.
	joins := func() int {
		_, top := c.refusedSummaries()
		n := 0
		for _, line := range top {
			if _, count, ok := strings.Cut(line, " node.join bad_token ×"); ok {
				k, err := strconv.Atoi(count)
				if err != nil {
					t.Fatalf("summary line %q: %v", line, err)
				}
				n += k
			}
		}
		return n
	}
	eventually(t, "the four refused joins in summary entries", func() bool { return joins() >= 4 })
	if n := joins(); n != 4 {
		t.Fatalf("summaries count %d refused joins, want 4", n)
	}
}

func TestNodeCannotObtainAnotherNodesService(t *testing.T) {
	c := newCluster(t)
	c.startAgent("n1")
	c.startAgent("n2")
	c.register(api.Registration{Name: "db", Node: "n2", Port: 5432})
	n1, err := api.NewClientFromDir(c.addr, filepath.Join(c.dir, "agent-n1", "node"))
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	err = n1.Call(context.Background(), http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db", CSR: csr}, nil)
	if !errors.Is(err, api.ErrPermissionDenied) {
		t.Fatalf("n1 asking for n2's service: %v, want PermissionDenied", err)
	}
	t.Log("an admin certificate is not a node certificate")
	err = c.admin.Call(context.Background(), http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db"}, nil)
	if !errors.Is(err, api.ErrUnauthenticated) {
		t.Fatalf("admin asking for an SVID: %v, want Unauthenticated", err)
	}
}

// TestCSRKeysOtherThanP256Refused: every certificate moat issues to a
// client is over a P-256 key, and the CA took whatever ECDSA key a request
// held: a node got an SVID over a P-224 key (112-bit, and no TLS 1.3
// signature scheme: no peer completes a handshake with it) or over keys
// of curves its peers were never meant to meet. A CSR over another curve
// is now refused, 400, for a service SVID, a node's join and renewal, and
// an administrator's session.
func TestCSRKeysOtherThanP256Refused(t *testing.T) {
	c := newCluster(t)
	c.startAgent("n1")
	c.register(api.Registration{Name: "db", Node: "n1", Port: 5432})
	n1, err := api.NewClientFromDir(c.addr, filepath.Join(c.dir, "agent-n1", "node"))
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	ctx := context.Background()
	for _, curve := range []elliptic.Curve{elliptic.P224(), elliptic.P384(), elliptic.P521()} {
		key, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			t.Fatal(err)
		}
		name := curve.Params().Name
		var resp api.CertResponse
		if err := n1.Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db", CSR: csr}, &resp); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("SVID over a %s key: %v, want invalid (chain of %d)", name, err, len(resp.Chain))
		}
		if err := n1.Call(ctx, http.MethodPost, api.PathNodeRenew, api.RenewRequest{CSR: csr}, nil); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("node renewal over a %s key: %v, want invalid", name, err)
		}
		if err := c.admin.Call(ctx, http.MethodPost, api.PathMFASession, api.MFASessionRequest{CSR: csr}, nil); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("MFA session over a %s key: %v, want invalid", name, err)
		}
	}
	t.Log("a P-256 request is signed")
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db", CSR: csr}, nil); err != nil {
		t.Fatalf("SVID over a P-256 key: %v", err)
	}
}

// svidOf returns the agent's current SVID leaf for service, or nil.
func svidOf(a *agent.Agent, service string) *x509.Certificate {
	cert, err := a.Certificate(service)
	if err != nil {
		return nil
	}
	return cert.Leaf
}

func TestSVIDsRenewBeforeTheyLapse(t *testing.T) {
	c := newCluster(t)
	a := c.startAgent("n1")
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	first := svidOf(a, "api")
	renewals := 0
	prev := first
	// Five hours in ten-minute steps: after each step the agent must hold an
	// SVID that is valid now, and it must have renewed several times.
	for step := 0; step < 30; step++ {
		c.clk.Advance(10 * time.Minute)
		now := c.clk.Now()
		c.settle("a valid SVID at "+now.String(), func() bool {
			l := svidOf(a, "api")
			return l != nil && identity.CheckValidity(l, now) == nil && l.NotAfter.Sub(now) > 15*time.Minute
		})
		if cur := svidOf(a, "api"); cur.SerialNumber.Cmp(prev.SerialNumber) != 0 {
			renewals++
			prev = cur
		}
	}
	// Staying valid for five hours on one-hour SVIDs takes at least four
	// renewals; the per-step check above is what proves none lapsed.
	if renewals < 4 {
		t.Fatalf("%d renewals in 5 hours of 1h SVIDs, want at least 4", renewals)
	}
}

func TestServerOutageKeepsSVIDs(t *testing.T) {
	c := newCluster(t)
	var logs testkit.Buffer
	a := c.startAgent("n1", func(cfg *agent.Config) { cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	eventually(t, "first SVID", func() bool { return svidOf(a, "api") != nil })
	before := svidOf(a, "api")
	addr := c.addr

	t.Log("server down for longer than half an SVID's life")
	c.stopServer()
	c.clk.Advance(40 * time.Minute)
	eventually(t, "a renewal to fail against the closed port", func() bool { return strings.Contains(logs.String(), "SVID renewal failed") })
	now := c.clk.Now()
	held := svidOf(a, "api")
	if held == nil || identity.CheckValidity(held, now) != nil {
		t.Fatal("the agent dropped its SVID while the server was away")
	}
	if held.SerialNumber.Cmp(before.SerialNumber) != 0 {
		t.Fatal("SVID changed while the server was down")
	}

	t.Log("server back: renewal within one backoff period")
	c.startServer(addr)
	c.settle("renewal after the outage", func() bool {
		l := svidOf(a, "api")
		return l != nil && l.SerialNumber.Cmp(before.SerialNumber) != 0
	})
}

func TestRevocationReachesAgentsAndBlocksRenewal(t *testing.T) {
	c := newCluster(t)
	a1 := c.startAgent("n1")
	a2 := c.startAgent("n2")
	c.register(api.Registration{Name: "api", Node: "n1", Port: 8080})
	eventually(t, "SVID", func() bool { return svidOf(a1, "api") != nil })
	leaf := svidOf(a1, "api")
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Serial: identity.SerialHex(leaf.SerialNumber)}, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "revocation at n2", func() bool {
		return a2.Trust().Revoked(leaf, spiffeid.RequireFromString("spiffe://example.org/svc/api"))
	})

	t.Log("a revoked node can no longer renew")
	if err := c.call(http.MethodPost, api.PathRevoke, api.RevokeRequest{Node: "n1"}, nil); err != nil {
		t.Fatal(err)
	}
	n1, err := api.NewClientFromDir(c.addr, filepath.Join(c.dir, "agent-n1", "node"))
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()
	err = n1.Call(context.Background(), http.MethodPost, api.PathNodeRenew, api.RenewRequest{}, nil)
	if err == nil {
		t.Fatal("a revoked node renewed its certificate")
	}
	t.Logf("renewal refused: %v", err)
}

func TestWorkloadAPI(t *testing.T) {
	c := newCluster(t)
	sock := filepath.Join(t.TempDir(), "workload.sock")
	a := c.startAgent("n1", func(cfg *agent.Config) { cfg.Socket = sock })
	c.register(api.Registration{Name: "web", Node: "n1", Port: 8080})
	eventually(t, "SVID", func() bool { return svidOf(a, "web") != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr("unix://"+sock)))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := src.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if got.ID.String() != "spiffe://example.org/svc/web" {
		t.Fatalf("SVID for %s", got.ID)
	}
	if _, _, err := x509svid.Verify(got.Certificates, src, x509svid.WithTime(c.clk.Now())); err != nil {
		t.Fatalf("SVID from the Workload API does not verify against its bundle: %v", err)
	}
	first := got.Certificates[0].SerialNumber

	t.Log("a rotation reaches the client")
	c.clk.Advance(40 * time.Minute)
	c.settle("rotated SVID at the client", func() bool {
		s, err := src.GetX509SVID()
		return err == nil && s.Certificates[0].SerialNumber.Cmp(first) != 0
	})
}

// TestJoinRaceSpendsTokenOnce: a stolen join token sent by many joiners at
// once (the thief racing the node, or itself) makes one node certificate:
// one join is answered, and every other is refused as a used token, or,
// once the address has failed ten joins, as too many failures from it.
func TestJoinRaceSpendsTokenOnce(t *testing.T) {
	c := newCluster(t)
	tok := c.token("n1")
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: c.srv.CA().TrustDomain()})
	trust.Update(c.srv.CA().Bundle(), identity.Revocations{})
	anon := api.NewClient(c.addr, api.ClientTLS(nil, trust))
	defer anon.Close()
	const racers = 16
	var wg sync.WaitGroup
	var won, used, throttled atomic.Int64
	errs := make(chan error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, csr, err := ca.NewKeyCSR()
			if err != nil {
				errs <- err
				return
			}
			req := api.JoinRequest{Token: tok, Node: "n1", MeshAddr: "127.0.0.1:" + itoa(30000+i), CSR: csr}
			var resp api.CertResponse
			err = anon.Call(t.Context(), http.MethodPost, api.PathJoin, req, &resp)
			var se *api.StatusError
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, api.ErrUnauthenticated) && strings.Contains(err.Error(), "already used"):
				used.Add(1)
			case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
				throttled.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if won.Load() != 1 || used.Load()+throttled.Load() != racers-1 {
		t.Fatalf("%d joins with one token at once: %d answered, %d refused as used, %d throttled; want 1 and %d refused", racers, won.Load(), used.Load(), throttled.Load(), racers-1)
	}
}

// TestJoinWithBadCSRRecordsNothing: whoever holds an unspent join token
// (stolen, say) sends joins whose CSR is no certificate request. Each is
// refused before anything is recorded, and counted among the refusals:
// the log does not grow by two entries a try for as long as the token
// lives. The token is not spent by them; its join then succeeds, on
// record as intent and outcome.
func TestJoinWithBadCSRRecordsNothing(t *testing.T) {
	c := newCluster(t)
	tok := c.token("n1")
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: c.srv.CA().TrustDomain()})
	trust.Update(c.srv.CA().Bundle(), identity.Revocations{})
	anon := api.NewClient(c.addr, api.ClientTLS(nil, trust))
	defer anon.Close()
	for i, csr := range [][]byte{[]byte("x"), nil, make([]byte, 4096)} {
		var resp api.CertResponse
		err := anon.Call(t.Context(), http.MethodPost, api.PathJoin, api.JoinRequest{Token: tok, Node: "n1", MeshAddr: "127.0.0.1:1", CSR: csr}, &resp)
		var se *api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Msg, "csr") {
			t.Fatalf("join %d with a bad CSR: %v", i, err)
		}
	}
	if got := auditEntries(t, c, "node.join"); len(got) != 0 {
		t.Fatalf("joins refused for their CSR are in the audit log: %+v", got)
	}
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if err := anon.Call(t.Context(), http.MethodPost, api.PathJoin, api.JoinRequest{Token: tok, Node: "n1", MeshAddr: "127.0.0.1:1", CSR: csr}, &resp); err != nil {
		t.Fatalf("the join with a CSR: %v", err)
	}
	if got := auditEntries(t, c, "node.join"); len(got) != 2 {
		t.Fatalf("%d node.join entries, want the intent and the outcome of the one join", len(got))
	}
}
