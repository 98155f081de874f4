package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/testkit"
)

// TestRejoinCutsEarlierNodeCertificates: a node joined again with a new
// token (a host rebuilt after a compromise, a disk that went missing) is
// the operator's word that the node is what joins now. The certificate of
// the earlier join, and everything renewed from it, stayed good: whoever
// copied the node's certificate and key renewed it every day for ever,
// took the SVIDs of the node's services and read its watch stream, and
// nothing short of revoking the node's name for good stopped them. Every
// node certificate now carries the ID of the join it descends from, and a
// node call with one of an earlier join is refused; the SVIDs issued to
// the node before the new join are revoked (a copy that took all the node
// may hold would otherwise keep them for their hour, and the new join's
// agent waiting as long for one); the new join's agent renews and gets
// its SVIDs.
func TestRejoinCutsEarlierNodeCertificates(t *testing.T) {
	c := newCluster(t)
	c.register(api.Registration{Name: "db", Node: "n1", Port: 5432})
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	eventually(t, "first SVID", func() bool { return svidOf(a, "db") != nil })

	t.Log("a copy of the node's files; the node renews its certificate once")
	copied, err := api.NewClientFromDir(c.addr, filepath.Join(cfg.DataDir, "node"))
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	ctx := context.Background()
	csr := func() []byte {
		_, der, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	renewed := func(cl *api.Client) *tls.Certificate {
		key, der, err := ca.NewKeyCSR()
		if err != nil {
			t.Fatal(err)
		}
		var resp api.CertResponse
		if err := cl.Call(ctx, http.MethodPost, api.PathNodeRenew, api.RenewRequest{CSR: der}, &resp); err != nil {
			t.Fatalf("renewal: %v", err)
		}
		chain, err := api.ParseChain(resp.Chain)
		if err != nil {
			t.Fatal(err)
		}
		return ca.TLSCertificate(chain, key)
	}
	earlier := renewed(copied)
	fromEarlier := api.NewClient(c.addr, api.ClientTLS(func() (*tls.Certificate, error) { return earlier, nil }, a.Trust()))
	defer fromEarlier.Close()

	t.Log("the copy takes every SVID of db the node may hold")
	var taken []*x509.Certificate
	for range 10 {
		var resp api.CertResponse
		err := copied.Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db", CSR: csr()}, &resp)
		var se *api.StatusError
		if errors.As(err, &se) && se.Code == http.StatusTooManyRequests {
			break
		}
		if err != nil {
			t.Fatalf("SVID before the new join: %v", err)
		}
		chain, err := api.ParseChain(resp.Chain)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, chain[0])
	}
	if len(taken) == 0 || len(taken) == 10 {
		t.Fatalf("the copy took %d SVIDs of db, want some and then a refusal", len(taken))
	}
	watchEnded := make(chan error, 1)
	go func() {
		watchEnded <- copied.Watch(ctx, time.Minute, func(api.Update) error { return nil })
	}()

	select {
	case err := <-watchEnded:
		t.Fatalf("the watch stream ended before the new join: %v", err)
	default:
	}

	t.Log("the host is rebuilt and the node joins again with a new token")
	stop()
	cfg2 := c.agentConfig("n1", func(cfg *agent.Config) { cfg.DataDir = filepath.Join(c.dir, "agent-n1-rebuilt") })
	a2, _ := c.runAgent(cfg2)
	eventually(t, "the new join's SVID", func() bool { return svidOf(a2, "db") != nil })
	db := spiffeid.RequireFromString("spiffe://example.org/svc/db")
	for _, leaf := range taken {
		if !a2.Trust().Revoked(leaf, db) {
			t.Errorf("SVID %x the copy took before the new join is not revoked", leaf.SerialNumber)
		}
	}
	joins := auditEntries(t, c, "node.join")
	if n, err := strconv.Atoi(joins[len(joins)-1].Detail["svids_revoked"]); err != nil || n < len(taken) {
		t.Errorf("the new join's audit entry %+v, want svids_revoked of at least %d", joins[len(joins)-1], len(taken))
	}

	t.Log("the copy's watch stream ends with the new join")
	select {
	case err := <-watchEnded:
		t.Logf("watch stream of the earlier join: %v", err)
	case <-time.After(testkit.WaitLimit):
		t.Fatal("the earlier join's watch stream runs on after the node joined again")
	}

	t.Log("the copy of the earlier join's certificate is refused everywhere")
	for name, cl := range map[string]*api.Client{"the earlier join's certificate": copied, "one renewed from it": fromEarlier} {
		if err := cl.Call(ctx, http.MethodPost, api.PathNodeRenew, api.RenewRequest{CSR: csr()}, nil); !errors.Is(err, api.ErrUnauthenticated) {
			t.Errorf("renewal with %s: %v, want unauthenticated", name, err)
		}
		if err := cl.Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db", CSR: csr()}, nil); !errors.Is(err, api.ErrUnauthenticated) {
			t.Errorf("SVID with %s: %v, want unauthenticated", name, err)
		}
	}

	t.Log("the new join's certificate renews, and so does what it renewed to")
	fresh, err := api.NewClientFromDir(c.addr, filepath.Join(cfg2.DataDir, "node"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	next := renewed(fresh)
	fromFresh := api.NewClient(c.addr, api.ClientTLS(func() (*tls.Certificate, error) { return next, nil }, a2.Trust()))
	defer fromFresh.Close()
	renewed(fromFresh)
	if err := fromFresh.Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: "db", CSR: csr()}, nil); err != nil {
		t.Fatalf("SVID with a renewed certificate of the new join: %v", err)
	}
}

// TestRejoinWithoutNodeKeyDropsTheEarlierOne: a join that pins no node key
// (an agent from before node keys, a join made by hand) left the key the
// earlier join pinned, and whoever held that key (root on the node then,
// or a copy of its files) re-attested with it and was the node again,
// under the new join. The join is the operator's word on what the node
// is, so it drops the earlier join's key: the node pins one at its first
// renewal, and the earlier key re-attests nothing.
func TestRejoinWithoutNodeKeyDropsTheEarlierOne(t *testing.T) {
	c := newCluster(t)
	cfg := c.agentConfig("n1")
	a, stop := c.runAgent(cfg)
	stop()
	earlier := attestKey(t, cfg.DataDir)

	t.Log("n1 joins again with a token and no node key")
	anon := api.NewClient(c.addr, api.ClientTLS(nil, a.Trust()))
	defer anon.Close()
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Call(t.Context(), http.MethodPost, api.PathJoin, api.JoinRequest{Token: c.token("n1"), Node: "n1", MeshAddr: "127.0.0.1:1", CSR: csr}, nil); err != nil {
		t.Fatalf("join: %v", err)
	}

	t.Log("the earlier join's node key re-attests nothing")
	_, csr, err = ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	err = anon.Call(t.Context(), http.MethodPost, api.PathReattest, signedReattest(t, earlier, api.ReattestRequest{Node: "n1", CSR: csr, Time: c.clk.Now()}), &resp)
	if !errors.Is(err, api.ErrUnauthenticated) {
		t.Fatalf("re-attestation with the earlier join's node key: %v (chain of %d), want unauthenticated", err, len(resp.Chain))
	}
}
