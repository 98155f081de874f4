package ca

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/identity"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var td = spiffeid.RequireTrustDomainFromString("example.org")

func testCA(t *testing.T, clk *clock) *CA {
	t.Helper()
	c, err := New(Config{TrustDomain: td, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func svc(name string) spiffeid.ID { return spiffeid.RequireFromSegments(td, "svc", name) }

func TestIssueIsValidSVID(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	c := testCA(t, clk)
	cert, err := c.Issue(svc("api"), 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if got := leaf.NotAfter.Sub(clk.Now()); got != DefaultSVIDTTL {
		t.Errorf("TTL = %s, want %s", got, DefaultSVIDTTL)
	}
	if leaf.IsCA || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://example.org/svc/api" {
		t.Errorf("leaf shape: CA=%v URIs=%v", leaf.IsCA, leaf.URIs)
	}
	if len(cert.Certificate) != 2 {
		t.Errorf("chain has %d certificates, want leaf + intermediate", len(cert.Certificate))
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: clk.Now})
	trust.Update(c.Bundle(), identity.Revocations{})
	chain := []*x509.Certificate{leaf}
	inter, _ := x509.ParseCertificate(cert.Certificate[1])
	if _, err := trust.Verify(append(chain, inter)); err != nil {
		t.Fatal(err)
	}
}

func TestSignRefusals(t *testing.T) {
	clk := &clock{t: time.Now()}
	c := testCA(t, clk)
	other := spiffeid.RequireFromSegments(spiffeid.RequireTrustDomainFromString("evil.org"), "svc", "api")
	if _, err := c.Issue(other, 0); !errors.Is(err, identity.ErrWrongTrustDomain) {
		t.Errorf("other trust domain: %v", err)
	}
	if _, err := c.Issue(spiffeid.RequireFromSegments(td, "weird", "x"), 0); !errors.Is(err, identity.ErrNotSVID) {
		t.Errorf("non-moat path: %v", err)
	}
	if _, err := c.Issue(svc("api"), 48*time.Hour); !errors.Is(err, ErrBadTTL) {
		t.Errorf("TTL over the cap: %v", err)
	}
	if _, err := New(Config{TrustDomain: td, SVIDTTL: 25 * time.Hour}); !errors.Is(err, ErrBadTTL) {
		t.Errorf("default TTL over the cap: %v", err)
	}
	if _, err := c.SignCSR([]byte("not a csr"), svc("api"), 0); err == nil {
		t.Error("garbage CSR accepted")
	}
	for _, curve := range []elliptic.Curve{elliptic.P224(), elliptic.P384(), elliptic.P521()} {
		key, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SignPublicKey(key.Public(), svc("api"), 0); !errors.Is(err, ErrBadKey) {
			t.Errorf("key on %s signed: %v", curve.Params().Name, err)
		}
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SignCSR(csr, svc("api"), 0); !errors.Is(err, ErrBadKey) {
			t.Errorf("CSR over a key on %s signed: %v", curve.Params().Name, err)
		}
	}
}

func TestTTLCappedByIntermediate(t *testing.T) {
	clk := &clock{t: time.Now()}
	c := testCA(t, clk)
	inter := c.State().Authorities[0].Intermediate
	clk.t = inter.NotAfter.Add(-10 * time.Minute)
	cert, err := c.Issue(svc("api"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Leaf.NotAfter.Equal(inter.NotAfter) {
		t.Fatalf("leaf NotAfter %s, want capped at %s", cert.Leaf.NotAfter, inter.NotAfter)
	}
}

// handshake runs one mutual-TLS handshake over loopback between client and
// server certificates, each side verifying the other with its own Trust.
func handshake(t *testing.T, clientCert, serverCert *tls.Certificate, clientTrust, serverTrust *identity.Trust) error {
	t.Helper()
	verify := func(tr *identity.Trust) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			_, err := tr.Verify(cs.PeerCertificates)
			return err
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*serverCert},
		ClientAuth: tls.RequireAnyClientCert, VerifyConnection: verify(serverTrust),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer conn.Close()
		err = conn.(*tls.Conn).Handshake()
		if err == nil {
			_, err = conn.Write([]byte("ok"))
		}
		srvErr <- err
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{*clientCert},
		InsecureSkipVerify: true, VerifyConnection: verify(clientTrust),
	})
	if err != nil {
		<-srvErr
		return fmt.Errorf("client: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 2)
	_, rerr := io.ReadFull(conn, buf)
	if err := <-srvErr; err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return rerr
}

func TestRootRotationKeepsHandshakes(t *testing.T) {
	clk := &clock{t: time.Now()}
	c := testCA(t, clk)
	newTrust := func() *identity.Trust {
		tr := identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: clk.Now})
		tr.Update(c.Bundle(), identity.Revocations{})
		return tr
	}
	oldA, _ := c.Issue(svc("a"), 0)
	oldB, _ := c.Issue(svc("b"), 0)
	trOld := newTrust() // a peer that has only the old bundle

	t.Log("prepare: new root published; the old intermediate still signs")
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := c.Activate(); err != nil {
		t.Fatal("activate right after prepare:", err)
	}
	// A second rotation cannot start while this one runs.
	if err := c.Prepare(); !errors.Is(err, ErrRotationActive) {
		t.Fatalf("second prepare: %v", err)
	}
	trBoth := newTrust() // bundle with both roots, as agents hold after prepare
	if n := len(c.Bundle().X509Authorities()); n != 2 {
		t.Fatalf("bundle has %d roots during rotation, want 2", n)
	}
	newA, _ := c.Issue(svc("a"), 0)
	newB, _ := c.Issue(svc("b"), 0)
	if newA.Leaf.CheckSignatureFrom(c.State().Authorities[1].Intermediate) != nil {
		t.Fatal("after activate, SVIDs are not signed by the new intermediate")
	}
	for _, p := range []struct {
		name             string
		client, server   *tls.Certificate
		clientT, serverT *identity.Trust
	}{
		{"old-old", oldA, oldB, trBoth, trBoth},
		{"old-new", oldA, newB, trBoth, trBoth},
		{"new-old", newA, oldB, trBoth, trBoth},
		{"new-new", newA, newB, trBoth, trBoth},
	} {
		if err := handshake(t, p.client, p.server, p.clientT, p.serverT); err != nil {
			t.Errorf("%s during rotation: %v", p.name, err)
		}
	}
	if err := handshake(t, newA, oldB, trOld, trOld); err == nil {
		t.Error("a peer with only the old bundle accepted a new-root SVID: the bundle check is not working")
	}

	t.Log("retire is refused while old SVIDs live")
	if err := c.Retire(false); !errors.Is(err, ErrOldRootLive) {
		t.Fatalf("early retire: %v", err)
	}
	clk.Add(DefaultSVIDTTL + time.Minute)
	renewedA, _ := c.Issue(svc("a"), 0)
	renewedB, _ := c.Issue(svc("b"), 0)
	if err := c.Retire(false); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Bundle().X509Authorities()); n != 1 {
		t.Fatalf("bundle has %d roots after retire, want 1", n)
	}
	trNew := newTrust()
	if err := handshake(t, renewedA, renewedB, trNew, trNew); err != nil {
		t.Fatal("after retire:", err)
	}
	if c.Phase() != PhaseStable {
		t.Fatalf("phase %s after retire", c.Phase())
	}
}

type gcmSealer struct{ aead cipher.AEAD }

func (s gcmSealer) Encrypt(pt, ad []byte) ([]byte, error) {
	n := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(n)
	return s.aead.Seal(n, n, pt, ad), nil
}
func (s gcmSealer) Decrypt(ct, ad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(ct) < ns {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, ct[:ns], ct[ns:], ad)
}

func newSealer(t *testing.T) gcmSealer {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	b, _ := aes.NewCipher(k)
	g, _ := cipher.NewGCM(b)
	return gcmSealer{g}
}

func TestSaveLoad(t *testing.T) {
	clk := &clock{t: time.Now()}
	c := testCA(t, clk)
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := newSealer(t)
	if err := c.Save(dir, s); err != nil {
		t.Fatal(err)
	}
	back, err := Load(Config{TrustDomain: td, Now: clk.Now}, dir, s)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Bundle().Equal(c.Bundle()) || back.Phase() != PhasePrepared {
		t.Fatal("state differs after load")
	}
	if _, err := back.Issue(svc("api"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Config{TrustDomain: td}, dir, newSealer(t)); err == nil {
		t.Fatal("loaded with the wrong key-encryption key")
	}
	if _, err := Load(Config{TrustDomain: td}, dir, nil); err == nil {
		t.Fatal("loaded sealed keys without a key")
	}
}

// BenchmarkECDSASign is the floor under SVID signing: one P-256 signature
// over a SHA-256 digest, as CreateCertificate makes.
func BenchmarkECDSASign(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("tbs certificate"))
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignSVID(b *testing.B) {
	c, err := New(Config{TrustDomain: td})
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := c.Issue(svc("api"), 0)
	pub := cert.Leaf.PublicKey
	id := svc("api")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.SignPublicKey(pub, id, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIssueTLS(t *testing.T) {
	clk := &clock{t: time.Now()}
	c := testCA(t, clk)
	cert, err := c.IssueTLS([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Leaf.URIs) != 0 || cert.Leaf.IsCA {
		t.Fatal("a TLS certificate must not look like an SVID or a CA")
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: clk.Now})
	trust.Update(c.Bundle(), identity.Revocations{})
	inter, _ := x509.ParseCertificate(cert.Certificate[1])
	if _, err := trust.Verify([]*x509.Certificate{cert.Leaf, inter}); err == nil {
		t.Fatal("a TLS certificate passed as an SVID")
	}
	if _, err := c.IssueTLS(nil, nil, time.Hour); err == nil {
		t.Fatal("a certificate without names was issued")
	}
}

// TestIssuedCertificateSignsNothing: root on a node holds its node
// certificate's key and its services' SVID keys. A certificate it signs
// with one of them, for another node or service, claiming to be a CA or
// not, with the issued certificate and the intermediate as its chain, is
// refused by the verifier every agent and server uses.
func TestIssuedCertificateSignsNothing(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	c := testCA(t, clk)
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: clk.Now})
	trust.Update(c.Bundle(), identity.Revocations{})
	for _, issued := range []spiffeid.ID{spiffeid.RequireFromSegments(td, "node", "n1"), svc("api")} {
		held, err := c.Issue(issued, 0)
		if err != nil {
			t.Fatal(err)
		}
		inter, err := x509.ParseCertificate(held.Certificate[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, forged := range []spiffeid.ID{spiffeid.RequireFromSegments(td, "node", "n2"), svc("db"), spiffeid.RequireFromSegments(td, "admin", "admin")} {
			for _, isCA := range []bool{false, true} {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				tmpl := &x509.Certificate{
					SerialNumber: big.NewInt(7), NotBefore: clk.Now().Add(-time.Minute), NotAfter: clk.Now().Add(time.Hour),
					BasicConstraintsValid: true, IsCA: isCA, KeyUsage: x509.KeyUsageDigitalSignature,
					ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
					URIs:        []*url.URL{forged.URL()},
				}
				der, err := x509.CreateCertificate(rand.Reader, tmpl, held.Leaf, key.Public(), held.PrivateKey)
				if err != nil {
					t.Fatal(err)
				}
				leaf, err := x509.ParseCertificate(der)
				if err != nil {
					t.Fatal(err)
				}
				if id, err := trust.Verify([]*x509.Certificate{leaf, held.Leaf, inter}); err == nil {
					t.Errorf("a certificate for %s signed by %s's key (CA %v) verified as %s", forged, issued, isCA, id)
				}
			}
		}
	}
}

// TestRenewIntermediate: once a third of the intermediate's life is left
// it is due, and a new one under the same root signs; what the old one
// signed still verifies against the unchanged bundle. An intermediate
// the root would not outlive, or one whose root key is not held, is not
// due.
func TestRenewIntermediate(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)}
	c := testCA(t, clk)
	a := c.State().Authorities[0]
	life := a.Intermediate.NotAfter.Sub(a.Intermediate.NotBefore)
	clk.Add(life*2/3 - time.Hour)
	if c.IntermediateDue() {
		t.Fatal("due with a third of its life left")
	}
	clk.Add(2 * time.Hour)
	if !c.IntermediateDue() {
		t.Fatal("not due with less than a third of its life left")
	}
	before, err := c.Issue(svc("api"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewIntermediate(); err != nil {
		t.Fatal(err)
	}
	if c.IntermediateDue() {
		t.Fatal("a fresh intermediate is due")
	}
	b := c.State().Authorities[0]
	if b.Intermediate.Equal(a.Intermediate) || !b.Root.Equal(a.Root) || b.Intermediate.CheckSignatureFrom(a.Root) != nil {
		t.Fatal("want a new intermediate under the same root")
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: clk.Now})
	trust.Update(c.Bundle(), identity.Revocations{})
	after, err := c.Issue(svc("api"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, cert := range []*tls.Certificate{before, after} {
		chain := []*x509.Certificate{cert.Leaf}
		for _, der := range cert.Certificate[1:] {
			x, _ := x509.ParseCertificate(der)
			chain = append(chain, x)
		}
		if _, err := trust.Verify(chain); err != nil {
			t.Fatalf("SVID signed by %s: %v", chain[1].Subject, err)
		}
	}
	clk.Add(life / 2)
	if _, err := c.Issue(svc("api"), 0); err != nil {
		t.Fatalf("past the first intermediate's end: %v", err)
	}

	t.Log("an intermediate its root does not outlive is not due")
	clk.t = b.Root.NotAfter.Add(-life / 4)
	if err := c.RenewIntermediate(); err != nil {
		t.Fatal(err)
	}
	if c.IntermediateDue() {
		t.Fatal("due though a new one would end with the root, no later")
	}

	t.Log("without the root key, nothing is due and nothing renews")
	clk.t = time.Now().Truncate(time.Second)
	st := testCA(t, clk).State()
	st.Authorities[0].RootKey = nil
	clk.Add(life)
	offline, err := FromState(Config{TrustDomain: td, Now: clk.Now}, st)
	if err != nil {
		t.Fatal(err)
	}
	if offline.IntermediateDue() || !errors.Is(offline.RenewIntermediate(), ErrRootKeyAbsent) {
		t.Fatal("an authority without its root key renews its intermediate")
	}
}
