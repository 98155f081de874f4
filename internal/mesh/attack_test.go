package mesh

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/testkit"
)

// A compromised workload or node, holding certificates of the mesh's own
// CA, talks to another agent's mesh port directly, writing its own
// handshake and tunnel headers.

// rawTunnel opens a tunnel to node-b as cert would, returning the session,
// or the handshake's error.
func rawTunnel(t *testing.T, p *pair, cert *tls.Certificate, sni string) (*yamux.Session, error) {
	t.Helper()
	c, err := tls.Dial("tcp", p.b.m.Addr().String(), &tls.Config{
		InsecureSkipVerify: true, ServerName: sni, Certificates: []tls.Certificate{*cert},
		MinVersion: tls.VersionTLS13, NextProtos: []string{alpnTunnelV2},
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return yamux.Client(c, muxConfig(), nil)
}

// TestNodeAndAdminCertificatesAreNoService: a node's own certificate (what
// root on a node holds) and an administrator's pass the chain check but
// are no service: the destination refuses the tunnel and records why.
func TestNodeAndAdminCertificatesAreNoService(t *testing.T) {
	p := newPair(t)
	for _, id := range []func(spiffeid.TrustDomain, string) (spiffeid.ID, error){identity.NodeID, identity.AdminID} {
		sid, err := id(p.f.td, "node-a")
		if err != nil {
			t.Fatal(err)
		}
		cert, err := p.f.ca.Issue(sid, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rawTunnel(t, p, cert, "api"); err == nil {
			t.Errorf("%s opened a tunnel", sid)
		}
		rec := p.b.flows.waitFor(t, "the refusal of "+sid.String(), func(r flow.Record) bool {
			return r.Unmapped != nil && r.Unmapped.Kind == kindHandshake && r.Unmapped.Claimed == sid.String()
		})
		if rec.Unmapped.ReasonCode != flow.ReasonNotService {
			t.Errorf("%s refused with %q (%s), want %q", sid, rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonNotService)
		}
	}
}

// TestTunnelHeaderCannotChooseTheDecision: a caller writes the stream
// header itself. Whatever the SNI it opened the tunnel with, each stream
// is decided by the intentions for the SVID's service and the service
// and port the header names; an unregistered port, another node's
// service or a denied pair gets nothing of the app.
func TestTunnelHeaderCannotChooseTheDecision(t *testing.T) {
	p := newPair(t)
	frontend, _ := p.a.ids.Certificate("frontend") // allowed to api:8080; legacy allows no one
	sess, err := rawTunnel(t, p, frontend, "api")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		req  Request
		want int
		code string
	}{
		{Request{Service: "legacy", Port: 9000, ConnID: strings.Repeat("ab", 16)}, StatusDeny, flow.ReasonPolicyDenied},
		{Request{Service: "api", Port: 22, ConnID: strings.Repeat("ac", 16)}, StatusError, flow.ReasonWrongPort},
		{Request{Service: "frontend", Port: 3000, ConnID: strings.Repeat("ad", 16)}, StatusError, flow.ReasonUnknownService},
		{Request{Service: "api", Port: 8080, ConnID: strings.Repeat("ae", 16)}, StatusAllow, ""},
	} {
		st, err := sess.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := AppendRequest(nil, c.req, headerV2)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.SetDeadline(time.Now().Add(testkit.WaitLimit))
		if _, err := st.Write(append(hdr, "secret?"...)); err != nil {
			t.Fatal(err)
		}
		resp, err := ReadResponse(st, headerV2)
		if err != nil {
			t.Fatalf("%+v: %v", c.req, err)
		}
		if resp.Status != c.want || resp.Code != c.code {
			t.Errorf("%s:%d: status %d code %q (%s), want %d %q", c.req.Service, c.req.Port, resp.Status, resp.Code, resp.Reason, c.want, c.code)
		}
		buf := make([]byte, 7)
		n, _ := io.ReadFull(st, buf)
		if answered := string(buf[:n]) == "secret?"; answered != (c.want == StatusAllow) {
			t.Errorf("%s:%d: the app answered %q", c.req.Service, c.req.Port, buf[:n])
		}
		st.Close()
	}
}

// ticketWatch is a client session cache that counts the tickets it is
// given.
type ticketWatch struct {
	tls.ClientSessionCache
	mu      sync.Mutex
	tickets int
}

func (w *ticketWatch) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		w.mu.Lock()
		w.tickets++
		w.mu.Unlock()
	}
	w.ClientSessionCache.Put(key, cs)
}

// TestMeshPortResumesNoSession: a resumed TLS 1.3 session carries no
// client certificate message, so a peer whose SVID was revoked, or whose
// intention was removed, after its ticket was issued would come back on
// the ticket alone. The mesh port issues no ticket, and a caller that
// offers to resume gets a full handshake, its certificate checked again.
func TestMeshPortResumesNoSession(t *testing.T) {
	p := newPair(t)
	frontend, _ := p.a.ids.Certificate("frontend")
	cache := &ticketWatch{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	dial := func() (*tls.Conn, error) {
		c, err := tls.Dial("tcp", p.b.m.Addr().String(), &tls.Config{
			InsecureSkipVerify: true, ServerName: "api", Certificates: []tls.Certificate{*frontend},
			MinVersion: tls.VersionTLS13, NextProtos: []string{alpnTunnelV2}, ClientSessionCache: cache,
		})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(testkit.WaitLimit))
		// The ready byte comes after any ticket the server sends.
		_, err = io.ReadFull(c, make([]byte, 1))
		return c, err
	}
	for i := range 2 {
		c, err := dial()
		if err != nil {
			t.Fatalf("handshake %d: %v", i+1, err)
		}
		if c.ConnectionState().DidResume {
			t.Fatalf("handshake %d resumed a session", i+1)
		}
	}
	if cache.tickets != 0 {
		t.Fatalf("the mesh port issued %d session tickets", cache.tickets)
	}
	p.b.trust.Update(nil, revokeSerial(frontend))
	if _, err := dial(); err == nil {
		t.Fatal("a revoked SVID opened a tunnel")
	}
}

// TestForgedChainUnderTheCAsNamesRefused: a chain of the attacker's own
// keys that copies the mesh CA's names (the root's and intermediate's
// subjects and key IDs) and names an allowed service is no SVID of the
// trust domain: the handshake is refused as of an unknown authority.
func TestForgedChainUnderTheCAsNamesRefused(t *testing.T) {
	p := newPair(t)
	real, _ := p.a.ids.Certificate("frontend") // leaf, intermediate
	inter, err := x509.ParseCertificate(real.Certificate[1])
	if err != nil {
		t.Fatal(err)
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sign := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	now := time.Now()
	rootKey, interKey, leafKey := key(), key(), key()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: inter.Issuer, SubjectKeyId: inter.AuthorityKeyId,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	root := sign(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	forgedInter := sign(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: inter.Subject, SubjectKeyId: inter.SubjectKeyId,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, root, &interKey.PublicKey, rootKey)
	id, err := identity.ServiceID(p.f.td, "frontend")
	if err != nil {
		t.Fatal(err)
	}
	leaf := sign(&x509.Certificate{SerialNumber: big.NewInt(3), URIs: []*url.URL{id.URL()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}, forgedInter, &leafKey.PublicKey, interKey)
	own, inters := x509.NewCertPool(), x509.NewCertPool()
	own.AddCert(root)
	inters.AddCert(forgedInter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: own, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("the forged chain does not verify even under its own root: %v", err)
	}
	forged := &tls.Certificate{Certificate: [][]byte{leaf.Raw, forgedInter.Raw, root.Raw}, PrivateKey: leafKey, Leaf: leaf}
	if _, err := rawTunnel(t, p, forged, "api"); err == nil {
		t.Fatal("a forged chain under the CA's names opened a tunnel")
	}
	rec := p.b.flows.waitFor(t, "the refused forged chain", func(r flow.Record) bool {
		return r.Unmapped != nil && r.Unmapped.Kind == kindHandshake && r.Unmapped.Claimed == id.String()
	})
	if rec.Unmapped.ReasonCode != flow.ReasonUnknownAuthority {
		t.Errorf("forged chain refused with %q (%s), want %q", rec.Unmapped.ReasonCode, rec.Unmapped.Reason, flow.ReasonUnknownAuthority)
	}
}
