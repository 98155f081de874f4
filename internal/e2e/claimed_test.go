package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/flow"
)

// TestClaimedIdentityIsNoService: anyone who reaches a mesh port can
// present a certificate of their own making that names another service's
// SPIFFE ID. The refused handshake is recorded with that claim, for
// detection and for whoever reads the records, but the claim verified
// nothing: the graph the control plane sums for the dashboard, and the
// talkers, must not count the record under the service it names.
func TestClaimedIdentityIsNoService(t *testing.T) {
	c := newCluster(t)
	td := spiffeid.RequireTrustDomainFromString("example.org")
	c.register(api.Registration{Name: "api", Node: "n1", Port: freePort(t)})
	c.register(api.Registration{Name: "db", Node: "n2", Port: freePort(t)})
	n2 := c.startAgent("n2")

	t.Log("an attacker on loopback presents a self-signed certificate naming api")
	const claim = "spiffe://example.org/svc/api"
	self := selfSignedClaim(t, claim)

	var refused *flow.Record
	since := time.Now().Add(-time.Hour)
	eventually(t, "the refused handshake's record at the control plane", func() bool {
		conn, err := tls.Dial("tcp", n2.Mesh().Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "db",
			Certificates: []tls.Certificate{*self}, NextProtos: []string{"moat-tunnel/2"}, MinVersion: tls.VersionTLS13})
		if err == nil {
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			conn.Read(make([]byte, 1))
			conn.Close()
		}
		var got api.FlowRecords
		q := api.FlowValues(flow.Filter{Class: flow.ClassNetworkActivity, Since: since}, 0)
		if err := c.call(http.MethodGet, api.PathFlowQuery+"?"+q.Encode(), nil, &got); err != nil {
			t.Fatal(err)
		}
		for i, r := range got.Records {
			// A handshake the agent could not serve yet (not_ready)
			// ends before the certificate is read.
			if r.Unmapped != nil && r.Unmapped.Kind == "handshake" && r.Unmapped.ReasonCode != flow.ReasonNotReady {
				refused = &got.Records[i]
				return true
			}
		}
		return false
	})

	q := api.FlowValues(flow.Filter{Class: flow.ClassNetworkActivity, Since: since}, 0)
	var g api.FlowGraph
	if err := c.call(http.MethodGet, api.PathFlowGraph+"?"+q.Encode(), nil, &g); err != nil {
		t.Fatal(err)
	}
	for _, e := range g.Edges {
		if flow.KeyService(e.Src, td) == "api" {
			t.Errorf("the graph draws the claim as api: %+v", e)
		}
	}
	var talkers api.FlowTalkers
	if err := c.call(http.MethodGet, api.PathFlowTalkers+"?"+q.Encode(), nil, &talkers); err != nil {
		t.Fatal(err)
	}
	for _, tk := range talkers.Talkers {
		if flow.KeyService(tk.Src, td) == "api" {
			t.Errorf("the talkers count the claim under api: %+v", tk)
		}
	}
	if refused.Unmapped.Claimed != claim || flow.ShownClaim(refused, refused.SrcEndpoint) != "claimed: "+claim {
		t.Errorf("refused handshake recorded as %+v, %+v: want the claim kept apart, shown as such", refused.SrcEndpoint, refused.Unmapped)
	}
}

// selfSignedClaim is a client certificate of no CA's naming SPIFFE ID id:
// what anyone can make to claim an identity.
func selfSignedClaim(t *testing.T, id string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	uri, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), URIs: []*url.URL{uri},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestAccessRefusalKeepsTheClaimApart: an administrator whose connection
// the control plane relays to a node presents there a certificate of
// their own making naming a service. The agent's record of the refusal
// names the administrator the control plane authenticated, and keeps
// what the certificate claimed apart, where no key reads it.
func TestAccessRefusalKeepsTheClaimApart(t *testing.T) {
	c := newCluster(t)
	recs := &accessRefusals{got: map[string]flow.Record{}}
	n1 := c.startAgent("n1", func(cfg *agent.Config) { cfg.Flows = recs })
	alice := c.newGrantAccount("alice")
	g := c.shellGrant(alice, n1)

	const claim = "spiffe://example.org/svc/api"
	if said, err := relayedShell(t, alice, g, selfSignedClaim(t, claim), nil); err == nil {
		t.Fatalf("the agent admitted a self-signed certificate: it said %q", said)
	}
	rec := refusal(t, c, recs, alice.id, "")
	if rec.Unmapped.Claimed != claim || rec.Unmapped.Verdict != flow.VerdictDeny {
		t.Errorf("the refusal's record: source %+v, %+v: want alice, the claim apart", rec.SrcEndpoint, rec.Unmapped)
	}
}
