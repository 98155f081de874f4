package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/flow/flowstore"
	"moat/internal/identity"
	"moat/internal/store"
	"moat/internal/store/storetest"
	"moat/internal/testkit"
)

// TestStaleCopyGrantsNothing: when the store has lost its quorum and the
// one member left holds a copy from before changes made through the
// others, no decision that lets a caller in rests on that copy. The
// earlier join's certificate of a node joined again, an administrator
// removed since, and an agent whose snapshot would lack a revocation
// (its watch would take the older list in place of the one it holds)
// are each refused as unavailable, naming the lost quorum, not answered
// from the lagging copy; and the removed administrator's flow stream ends.
func TestStaleCopyGrantsNothing(t *testing.T) {
	all := storetest.StartEtcdCluster(t, 3)
	// The member left behind is the leader when it stops answering: the
	// next leader probes it before sending it anything, so none of the
	// changes below reach it, even queued on its connections.
	lead := leaderOf(t, all)
	var ms []*storetest.EtcdMember
	for _, m := range all {
		if m != lead {
			ms = append(ms, m)
		}
	}
	ms = append(ms, lead)
	f := newAuthFixtureWith(t, authOptions{etcd: []string{ms[0].URL, ms[1].URL}})
	earlier := f.joinNode(t, "web-1")
	other := f.joinNode(t, "web-2")
	// A second server of the cluster reaches the leader only.
	b := f.serverOn(t, ms[2].URL, nil)
	var first api.RevokeResult
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathRevoke, api.RevokeRequest{Service: "old"}, &first); code != http.StatusOK {
		t.Fatalf("revoke service old: %d %s", code, e.Error)
	}
	testkit.WaitFor(t, "the second server following the store", func() bool {
		return b.srv.trust.Revocations().Version >= first.Revocations.Version
	})
	if code, e, _ := b.watchFirst(t, earlier); code != http.StatusOK {
		t.Fatalf("web-1's watch through the second server: %d %s", code, e.Error)
	}

	follow := b.follow(t, f.accs["viewer"].cert)

	t.Log("the leader falls behind; changes go through the other two")
	ms[2].Pause(t)
	testkit.WaitFor(t, "a write with the third member paused", func() bool {
		_, err := f.st.Put(f.ctx, "probe", []byte("x"))
		return err == nil
	})
	f.joinNode(t, "web-1")
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathRevoke, api.RevokeRequest{Service: "api"}, nil); code != http.StatusOK {
		t.Fatalf("revoke service api: %d %s", code, e.Error)
	}
	if _, err := f.st.Delete(f.ctx, prefixAdmin+"viewer"); err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, f.accs["viewer"].cert, "GET", api.PathServices, nil, nil); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("the removed administrator's read with quorum: %d %s, want refused", code, e.Error)
	}

	t.Log("the two stop; the member left behind runs again, alone")
	ms[0].Stop()
	ms[1].Stop()
	ms[2].Continue(t)
	follow.ends(t, "the removed administrator's flow stream on the lagging server")

	unavailable := func(what string, code int, e api.Error) {
		t.Helper()
		if code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "no etcd quorum") {
			t.Errorf("%s without quorum: %d %q, want 503 naming the lost quorum", what, code, e.Error)
		}
	}
	if code, e, snap := b.watchFirst(t, earlier); code == http.StatusOK {
		t.Errorf("the earlier join's certificate of web-1 opened a watch from the lagging copy (snapshot at revision %d)", snap.Revision)
	} else {
		unavailable("the earlier join's watch", code, e)
	}
	if code, e, snap := b.watchFirst(t, other); code == http.StatusOK {
		revoked := snap.Revocations != nil && slices.ContainsFunc(snap.Revocations.IDs, func(id string) bool { return strings.HasSuffix(id, "/svc/api") })
		t.Errorf("web-2's watch was served the lagging copy's snapshot (service api revoked in it: %v)", revoked)
	} else {
		unavailable("web-2's watch", code, e)
	}
	if code, e := b.call(t, f.accs["viewer"].cert, "GET", api.PathServices, nil, nil); code == http.StatusOK {
		t.Errorf("the removed administrator's read was answered, its role read from the lagging copy")
	} else {
		unavailable("the removed administrator's read", code, e)
	}
}

// serverOn starts a second server of f's control plane on the etcd
// member at url alone, its store wrapped by wrap when it is set, and
// returns f as seen through it.
func (f *authFixture) serverOn(t *testing.T, url string, wrap func(store.Store) store.Store) *authFixture {
	t.Helper()
	var st store.Store
	st, err := store.OpenEtcd(f.ctx, store.EtcdConfig{Endpoints: []string{url}, Prefix: "/moat/",
		Sealer: NewStoreSealer(f.kr.AEAD()), RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if wrap != nil {
		st = wrap(st)
	}
	fs, err := flowstore.OpenStore(flowstore.StoreConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	ctx, cancel := context.WithCancel(f.ctx)
	srv, err := New(ctx, Config{Listen: "127.0.0.1:0", Name: "b", Store: st, Sealer: f.kr.AEAD(), Audit: f.log, AuditLog: f.log, Flows: fs,
		Heartbeat: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testkit.WaitFor(t, "the second server ready", func() bool {
		select {
		case <-srv.Ready():
			return true
		default:
			return false
		}
	})
	b := *f
	b.srv = srv
	return &b
}

// TestLaggingWatchGrantsNothing: a server whose watch of the store lags
// (its copy of the revocation list is not yet the store's) grants nothing
// a revocation made through another server took away: no SVID for a
// revoked service, no join of a revoked node with a token issued before,
// no renewal of a node certificate revoked by its serial, no
// re-attestation of a revoked node by its pinned key.
func TestLaggingWatchGrantsNothing(t *testing.T) {
	url := storetest.StartEtcd(t)
	f := newAuthFixtureWith(t, authOptions{etcd: []string{url}})
	node := f.joinNode(t, "web-2")
	reg := api.Registration{Name: "api", Node: "web-2", Port: 8080}
	if code, e := f.call(t, f.accs["op"].session, "POST", api.PathServices, reg, nil); code != http.StatusOK {
		t.Fatalf("register api: %d %s", code, e.Error)
	}
	var tok api.TokenResponse
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathTokens, api.TokenRequest{Node: "web-3"}, &tok); code != http.StatusOK {
		t.Fatalf("token create: %d %s", code, e.Error)
	}
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := x509.MarshalPKIXPublicKey(&nodeKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var tok4 api.TokenResponse
	if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathTokens, api.TokenRequest{Node: "web-4"}, &tok4); code != http.StatusOK {
		t.Fatalf("token create: %d %s", code, e.Error)
	}
	_, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	if code, e := f.call(t, nil, "POST", api.PathJoin, api.JoinRequest{Token: tok4.Token, Node: "web-4", MeshAddr: "127.0.0.1:7401", CSR: csr, NodeKey: pinned}, nil); code != http.StatusOK {
		t.Fatalf("join web-4 with a node key: %d %s", code, e.Error)
	}
	b := f.serverOn(t, url, func(st store.Store) store.Store { return heldWatch{st} })

	t.Log("revocations through the first server, which the second's watch has not brought")
	for _, req := range []api.RevokeRequest{{Service: "api"}, {Node: "web-3"}, {Serial: identity.SerialHex(node.Leaf.SerialNumber)}, {Node: "web-4"}} {
		if code, e := f.call(t, f.accs["admin"].session, "POST", api.PathRevoke, req, nil); code != http.StatusOK {
			t.Fatalf("revoke %+v: %d %s", req, code, e.Error)
		}
	}
	if v := b.srv.trust.Revocations().Version; v != 0 {
		t.Fatalf("the second server's revocations are at version %d; want its watch held before any", v)
	}

	if code, e := b.call(t, node, "POST", api.PathSVID, api.SVIDRequest{Service: "api", CSR: csr}, nil); code != http.StatusForbidden {
		t.Errorf("an SVID for the revoked service api through the lagging server: %d %q, want 403", code, e.Error)
	}
	if code, e := b.call(t, nil, "POST", api.PathJoin, api.JoinRequest{Token: tok.Token, Node: "web-3", MeshAddr: "127.0.0.1:7401", CSR: csr}, nil); code != http.StatusForbidden {
		t.Errorf("the revoked node web-3 joining through the lagging server: %d %q, want 403", code, e.Error)
	}
	if code, e := b.call(t, node, "POST", api.PathNodeRenew, api.RenewRequest{CSR: csr}, nil); code != http.StatusUnauthorized {
		t.Errorf("renewing web-2's certificate revoked by serial through the lagging server: %d %q, want 401", code, e.Error)
	}
	re := api.ReattestRequest{Node: "web-4", MeshAddr: "127.0.0.1:7401", CSR: csr, Time: time.Now()}
	sum := sha256.Sum256(api.ReattestPayload(b.srv.td.Name(), re))
	if re.Signature, err = ecdsa.SignASN1(rand.Reader, nodeKey, sum[:]); err != nil {
		t.Fatal(err)
	}
	if code, e := b.call(t, nil, "POST", api.PathReattest, re, nil); code != http.StatusForbidden {
		t.Errorf("the revoked node web-4 re-attesting through the lagging server: %d %q, want 403", code, e.Error)
	}
}

// heldWatch is a store whose watches bring nothing: a server on it lags
// the store by every change made after it started.
type heldWatch struct{ store.Store }

func (h heldWatch) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan store.Event, error) {
	ch := make(chan store.Event)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}

// watchFirst opens a watch presenting cert and returns its status and, for
// an error, the answer, else the stream's first frame.
func (f *authFixture) watchFirst(t *testing.T, cert *tls.Certificate) (int, api.Error, api.Update) {
	t.Helper()
	tr := f.transport(cert)
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(f.ctx, testkit.WaitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+f.srv.Addr()+api.PathWatch, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer resp.Body.Close()
	var e api.Error
	var u api.Update
	if resp.StatusCode != http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("watch: %d with no error answer: %v", resp.StatusCode, err)
		}
		return resp.StatusCode, e, u
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatalf("watch: first frame: %v", err)
	}
	if err := json.Unmarshal(line, &u); err != nil {
		t.Fatalf("watch: first frame: %v", err)
	}
	return resp.StatusCode, e, u
}

// leaderOf is the member of ms that leads the cluster.
func leaderOf(t *testing.T, ms []*storetest.EtcdMember) *storetest.EtcdMember {
	t.Helper()
	var urls []string
	for _, m := range ms {
		urls = append(urls, m.URL)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: testkit.WaitLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var found *storetest.EtcdMember
	testkit.WaitFor(t, "an etcd leader", func() bool {
		for _, m := range ms {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, m.URL)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.GetMemberId() {
				found = m
				return true
			}
		}
		return false
	})
	return found
}
