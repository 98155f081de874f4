package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/seal"
	"moat/internal/store"
	"moat/internal/testkit"
)

// intermediateFixture is a control plane over a sealed store on a clock
// the test moves, started and stopped as the test asks.
type intermediateFixture struct {
	t    *testing.T
	clk  *testClock
	st   store.Store
	kr   *seal.Keyring
	alog *audit.Log
}

func newIntermediateFixture(t *testing.T) *intermediateFixture {
	t.Helper()
	dir := t.TempDir()
	clk := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	kek, err := seal.GenerateKeyFile(filepath.Join(dir, "kek"), nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := seal.Open(seal.Config{Dir: dir, KEK: kek, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenBolt(store.BoltConfig{Dir: dir, Sealer: NewStoreSealer(kr.AEAD())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := Init(t.Context(), st, InitConfig{TrustDomain: "example.org", AdminDir: filepath.Join(dir, "admin"), Sealer: kr.AEAD(), Now: clk.now}); err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(audit.Config{Dir: filepath.Join(dir, audit.DirName), Now: clk.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	return &intermediateFixture{t: t, clk: clk, st: st, kr: kr, alog: alog}
}

// start makes a server over the fixture's store, as a restart does; it is
// not serving.
func (f *intermediateFixture) start() (*Server, error) {
	return New(f.t.Context(), Config{Listen: "127.0.0.1:0", Store: f.st, Sealer: f.kr.AEAD(), Audit: f.alog, AuditLog: f.alog,
		Logger: slog.New(slog.DiscardHandler), Now: f.clk.now})
}

// serve runs srv until the test ends.
func (f *intermediateFixture) serve(srv *Server) {
	ctx, cancel := context.WithCancel(f.t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done })
	select {
	case <-srv.Ready():
	case err := <-done:
		f.t.Fatalf("server did not start: %v", err)
	}
}

// join joins node over srv's listener with a token the store holds, as an
// agent does, and returns the node certificate's chain.
func (f *intermediateFixture) join(srv *Server, node string) api.CertResponse {
	t := f.t
	ctx, cancel := context.WithTimeout(t.Context(), testkit.WaitLimit)
	defer cancel()
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		t.Fatal(err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	now := f.clk.now()
	if err := putJSON(ctx, f.st, tokenKey(secret), tokenRecord{Node: node, Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st := srv.CA().State()
	pin := api.Pin(st.Authorities[st.Active].Root)
	bundle, err := api.FetchBundle(ctx, srv.Addr(), pin, f.clk.now)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: srv.TrustDomain(), Now: f.clk.now})
	trust.Update(bundle, identity.Revocations{})
	c := api.NewClient(srv.Addr(), api.ClientTLS(nil, trust))
	defer c.Close()
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	var resp api.CertResponse
	if err := c.Call(ctx, http.MethodPost, api.PathJoin, api.JoinRequest{Token: api.TokenPrefix + secret + "." + pin, Node: node, MeshAddr: "127.0.0.1:7401", CSR: csr}, &resp); err != nil {
		t.Fatalf("join %s: %v", node, err)
	}
	chain, err := api.ParseChain(resp.Chain)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := trust.Verify(chain); err != nil || id.String() != "spiffe://example.org/node/"+node {
		t.Fatalf("node certificate of %s: %v (%s)", node, err, id)
	}
	return resp
}

// TestIntermediateRenewedBeforeItExpires: the intermediate that signs every
// SVID lives a year, and nothing made another: a year after init every
// join, renewal and SVID failed (the CA signs only what verifies, and
// nothing under an expired intermediate does), and a server did not even
// start, its own certificate unsigned. Once a third of its life is left a
// server makes a new intermediate under the same root (the bundle is
// unchanged: nothing the agents trust moves), stores it and says so in
// the audit log; certificates the old one signed verify until they end.
func TestIntermediateRenewedBeforeItExpires(t *testing.T) {
	f := newIntermediateFixture(t)
	srv, err := f.start()
	if err != nil {
		t.Fatal(err)
	}
	f.serve(srv)
	first := f.join(srv, "n1")
	old := srv.CA().State()
	oldInter := old.Authorities[old.Active].Intermediate
	life := oldInter.NotAfter.Sub(oldInter.NotBefore)

	t.Log("two thirds of the intermediate's life on, a server starting renews it")
	f.clk.advance(life*2/3 + 24*time.Hour)
	if srv, err = f.start(); err != nil {
		t.Fatalf("server start at %s: %v", f.clk.now(), err)
	}
	st := srv.CA().State()
	inter := st.Authorities[st.Active].Intermediate
	if inter.Equal(oldInter) || !inter.NotAfter.After(oldInter.NotAfter) {
		t.Fatalf("signing intermediate ends %s, want a new one ending after %s", inter.NotAfter, oldInter.NotAfter)
	}
	if err := inter.CheckSignatureFrom(old.Authorities[old.Active].Root); err != nil || len(st.Authorities) != 1 {
		t.Fatalf("the new intermediate is not under the same root, or the CA holds %d roots: %v", len(st.Authorities), err)
	}
	stored, err := f.st.Get(t.Context(), keyCA)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := ca.Unmarshal(srv.caConfig(), stored.Value, f.kr.AEAD())
	if err != nil {
		t.Fatal(err)
	}
	if ls := loaded.State(); !ls.Authorities[ls.Active].Intermediate.Equal(inter) {
		t.Fatal("the new intermediate is not stored")
	}
	var renewed []audit.Entry
	entries, err := f.alog.Entries(0, f.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Entry.Action == ActionIntermediateRenewed {
			renewed = append(renewed, e.Entry)
		}
	}
	if len(renewed) != 1 || renewed[0].Detail["previous_not_after"] != oldInter.NotAfter.UTC().Format(time.RFC3339) ||
		renewed[0].Detail["not_after"] != inter.NotAfter.UTC().Format(time.RFC3339) {
		t.Fatalf("audit entries %+v, want one %s naming both ends", renewed, ActionIntermediateRenewed)
	}

	t.Log("a second start renews nothing")
	if srv, err = f.start(); err != nil {
		t.Fatal(err)
	}
	if st := srv.CA().State(); !st.Authorities[st.Active].Intermediate.Equal(inter) {
		t.Fatal("a second start made another intermediate")
	}

	t.Log("past the first intermediate's end, a server starts and a node joins")
	f.clk.advance(oldInter.NotAfter.Sub(f.clk.now()) + 24*time.Hour)
	if srv, err = f.start(); err != nil {
		t.Fatalf("server start at %s, after the first intermediate's end: %v", f.clk.now(), err)
	}
	f.serve(srv)
	if got := f.join(srv, "n2"); len(got.Chain) != 2 || string(got.Chain[1]) == string(first.Chain[1]) {
		t.Fatal("the node certificate does not come with the new intermediate")
	}
}

// TestIntermediateRenewedOnceInACluster: servers sharing a store find the
// intermediate due together; the first renews it, and the others take
// what it stored rather than making their own or signing on under the
// old one, which may have ended.
func TestIntermediateRenewedOnceInACluster(t *testing.T) {
	f := newIntermediateFixture(t)
	a, err := f.start()
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.start()
	if err != nil {
		t.Fatal(err)
	}
	st := a.CA().State()
	old := st.Authorities[st.Active].Intermediate
	f.clk.advance(old.NotAfter.Sub(f.clk.now()) + time.Hour)
	for _, srv := range []*Server{a, b} {
		if err := srv.renewIntermediate(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb := a.CA().State(), b.CA().State()
	ia, ib := sa.Authorities[sa.Active].Intermediate, sb.Authorities[sb.Active].Intermediate
	if ia.Equal(old) || !ia.Equal(ib) {
		t.Fatalf("intermediates ending %s and %s, want one new one shared", ia.NotAfter, ib.NotAfter)
	}
	if _, err := b.CA().Issue(mustNodeIDOf(t, b, "n1"), 0); err != nil {
		t.Fatalf("the second server signs: %v", err)
	}
	entries, err := f.alog.Entries(0, f.alog.Size())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Entry.Action == ActionIntermediateRenewed {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d %s entries, want 1", n, ActionIntermediateRenewed)
	}
}

func mustNodeIDOf(t *testing.T, s *Server, name string) spiffeid.ID {
	t.Helper()
	id, err := identity.NodeID(s.TrustDomain(), name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
