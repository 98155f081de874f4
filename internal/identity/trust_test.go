package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type testCA struct {
	root, inter *x509.Certificate
	interKey    *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, td string) *testCA {
	t.Helper()
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, URIs: []*url.URL{{Scheme: "spiffe", Host: td}}}
	rd, err := x509.CreateCertificate(rand.Reader, rt, rt, rk.Public(), rk)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rd)
	it := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "inter"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	id, err := x509.CreateCertificate(rand.Reader, it, root, ik.Public(), rk)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(id)
	return &testCA{root: root, inter: inter, interKey: ik}
}

// goodLeaf is a valid SVID template; tests mutate a copy.
func goodLeaf() *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(0xabc),
		NotBefore:             t0.Add(-time.Minute),
		NotAfter:              t0.Add(time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: "example.org", Path: "/svc/api"}},
	}
}

func (c *testCA) sign(t *testing.T, tmpl *x509.Certificate) []*x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.inter, k.Public(), c.interKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return []*x509.Certificate{leaf, c.inter}
}

func TestVerifyRejections(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	good := newTestCA(t, "example.org")
	other := newTestCA(t, "example.org")
	trust := NewTrust(TrustConfig{TrustDomain: td, Now: func() time.Time { return t0 }})
	trust.Update(x509bundle.FromX509Authorities(td, []*x509.Certificate{good.root}), Revocations{
		Serials: []string{"dead"},
		IDs:     []string{"spiffe://example.org/svc/evil"},
	})

	chain := good.sign(t, goodLeaf())
	id, err := trust.Verify(chain)
	if err != nil || id.String() != "spiffe://example.org/svc/api" {
		t.Fatalf("good SVID: id %q, err %v", id, err)
	}

	cases := []struct {
		name   string
		mutate func(*x509.Certificate)
		ca     *testCA
		want   error
	}{
		{"expired", func(c *x509.Certificate) { c.NotAfter = t0.Add(-time.Second) }, good, ErrExpired},
		{"not yet valid", func(c *x509.Certificate) { c.NotBefore = t0.Add(time.Minute) }, good, ErrNotYetValid},
		{"wrong trust domain", func(c *x509.Certificate) { c.URIs[0].Host = "evil.org" }, good, ErrWrongTrustDomain},
		{"two URI SANs", func(c *x509.Certificate) {
			c.URIs = append(c.URIs, &url.URL{Scheme: "spiffe", Host: "example.org", Path: "/svc/db"})
		}, good, ErrNotSVID},
		{"no URI SAN", func(c *x509.Certificate) { c.URIs = nil }, good, ErrNotSVID},
		{"CA=true leaf", func(c *x509.Certificate) { c.IsCA = true }, good, ErrLeafIsCA},
		{"keyCertSign on a leaf", func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign }, good, ErrLeafCanSign},
		{"no clientAuth", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, good, ErrMissingUsage},
		{"no digitalSignature", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }, good, ErrMissingUsage},
		{"unknown root", func(c *x509.Certificate) {}, other, ErrUnknownAuthority},
		{"revoked serial", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0xdead) }, good, ErrRevoked},
		{"revoked SPIFFE ID", func(c *x509.Certificate) { c.URIs[0].Path = "/svc/evil" }, good, ErrRevoked},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := goodLeaf()
			tc.mutate(tmpl)
			_, err := trust.Verify(tc.ca.sign(t, tmpl))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEmptyTrustRefuses(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	ca := newTestCA(t, "example.org")
	trust := NewTrust(TrustConfig{TrustDomain: td, Now: func() time.Time { return t0 }})
	if _, err := trust.Verify(ca.sign(t, goodLeaf())); !errors.Is(err, ErrNoBundle) {
		t.Fatalf("got %v, want ErrNoBundle", err)
	}
	if _, err := trust.Verify(nil); !errors.Is(err, ErrNoCertificate) {
		t.Fatalf("got %v, want ErrNoCertificate", err)
	}
}

func TestChangedWakesOnUpdate(t *testing.T) {
	trust := NewTrust(TrustConfig{TrustDomain: spiffeid.RequireTrustDomainFromString("example.org")})
	ch := trust.Changed()
	select {
	case <-ch:
		t.Fatal("closed before Update")
	default:
	}
	trust.Update(nil, Revocations{Version: 2})
	<-ch
	if trust.Revocations().Version != 2 {
		t.Fatal("revocations not kept")
	}
}

func TestNames(t *testing.T) {
	td, err := ParseTrustDomain("example.org")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "Example.org", "spiffe://example.org", "a b"} {
		if _, err := ParseTrustDomain(bad); !errors.Is(err, ErrBadTrustDomain) {
			t.Errorf("ParseTrustDomain(%q) = %v, want ErrBadTrustDomain", bad, err)
		}
	}
	id, err := ServiceID(td, "api")
	if err != nil || id.String() != "spiffe://example.org/svc/api" {
		t.Fatalf("ServiceID = %v, %v", id, err)
	}
	if n, ok := ServiceName(id); !ok || n != "api" {
		t.Fatalf("ServiceName = %q %v", n, ok)
	}
	if _, ok := NodeName(id); ok {
		t.Fatal("a service ID is not a node ID")
	}
	for _, bad := range []string{"", "-a", "a-", "A", "a/b", "a.b"} {
		if _, err := ServiceID(td, bad); !errors.Is(err, ErrBadName) {
			t.Errorf("ServiceID(%q) = %v, want ErrBadName", bad, err)
		}
	}
}

// TestRevokedSerialRefusedUntilAndAfterPrune: a revoked SVID is refused
// while valid, and checked at its NotAfter (as a live tunnel on an expired
// SVID is) once expired; after the control plane dropped its serial, the
// list's Pruned refuses it as well, even to a clock that runs behind and
// takes it for valid. An SVID that expired after Pruned is unaffected.
func TestRevokedSerialRefusedUntilAndAfterPrune(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("example.org")
	ca := newTestCA(t, "example.org")
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{ca.root})
	chain := ca.sign(t, goodLeaf())
	leaf := chain[0]
	later := goodLeaf()
	later.SerialNumber, later.NotAfter = big.NewInt(0xdef), leaf.NotAfter.Add(time.Second)
	laterChain := ca.sign(t, later)
	sn := SerialHex(leaf.SerialNumber)

	now := t0
	trust := NewTrust(TrustConfig{TrustDomain: td, Now: func() time.Time { return now }})
	trust.Update(bundle, Revocations{Version: 1, Serials: []string{sn}, Expires: map[string]time.Time{sn: leaf.NotAfter}})
	if _, err := trust.Verify(chain); !errors.Is(err, ErrRevoked) {
		t.Fatalf("listed, valid: %v, want revoked", err)
	}
	now = leaf.NotAfter.Add(time.Hour)
	if _, err := trust.VerifyAt(chain, leaf.NotAfter); !errors.Is(err, ErrRevoked) {
		t.Fatalf("listed, expired, checked at its NotAfter: %v, want revoked", err)
	}

	pruned := Revocations{Version: 2, Pruned: leaf.NotAfter}
	trust.Update(bundle, pruned)
	if _, err := trust.VerifyAt(chain, leaf.NotAfter); !errors.Is(err, ErrRevoked) {
		t.Fatalf("pruned, checked at its NotAfter: %v, want revoked", err)
	}
	if _, err := trust.VerifyAt(laterChain, later.NotAfter); err != nil {
		t.Fatalf("an SVID that expired after Pruned, checked at its NotAfter: %v", err)
	}
	now = t0 // a clock that runs far behind the control plane's
	if _, err := trust.Verify(chain); !errors.Is(err, ErrRevoked) {
		t.Fatalf("pruned, to a clock behind: %v, want revoked", err)
	}
	if _, err := trust.Verify(laterChain); err != nil {
		t.Fatalf("an SVID that expires after Pruned, valid: %v", err)
	}
}
