package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/agent"
	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/flow"
	"moat/internal/identity"
)

// accessRefusals keeps the access refusals an agent records.
type accessRefusals struct {
	mu  sync.Mutex             // guards got
	got map[string]flow.Record // by the relayed session's ID
}

func (r *accessRefusals) Write(rec flow.Record) error {
	if rec.Unmapped == nil || rec.Unmapped.Kind != "access" || rec.ConnectionInfo == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[rec.ConnectionInfo.UID] = rec
	return nil
}

// grantAccount is an administrator account with an MFA session that holds
// grants on the cluster's node n1.
type grantAccount struct {
	name    string
	id      spiffeid.ID
	account string // the ID the account's certificates carry
	session *api.Client
	dir     string // its credentials: the enrolment certificate and key
}

// newGrantAccount creates the administrator name through the API, with an
// MFA session, and reads its account ID from its enrolment certificate.
func (c *cluster) newGrantAccount(name string) *grantAccount {
	c.t.Helper()
	_, dir := c.newAdmin(name, api.RoleOperator)
	cert, _, err := api.LoadCredentials(dir)
	if err != nil {
		c.t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		c.t.Fatal(err)
	}
	marks, err := identity.ReadAdminMarks(leaf)
	if err != nil || marks.Account == "" {
		c.t.Fatalf("%s's certificate carries no account: %+v, %v", name, marks, err)
	}
	id, err := identity.AdminID(spiffeid.RequireTrustDomainFromString("example.org"), name)
	if err != nil {
		c.t.Fatal(err)
	}
	return &grantAccount{name: name, id: id, account: marks.Account, session: c.mfaAdmin(dir), dir: dir}
}

// shellGrant has a ask for a shell grant on n1 and the cluster's admin
// approve it, and waits until n1's agent holds it active.
func (c *cluster) shellGrant(a *grantAccount, n1 *agent.Agent) api.Grant {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var l api.GrantListing
	req := api.AccessRequest{Node: "n1", Mode: api.ModeShell, Reason: "INC-60", For: time.Hour}
	if err := a.session.Call(ctx, http.MethodPost, api.PathAccess, req, &l); err != nil {
		c.t.Fatalf("access request by %s: %v", a.name, err)
	}
	if err := c.call(http.MethodPost, api.PathAccessApprov, api.GrantRef{ID: l.ID}, &l); err != nil || l.State != api.GrantActive {
		c.t.Fatalf("access approve: %v, state %q", err, l.State)
	}
	c.settle("n1's agent to hold the grant", func() bool {
		g, ok := n1.Grant(l.ID)
		return ok && g.Active(c.clk.Now())
	})
	return l.Grant
}

// grantCert is the certificate of grant g the control plane gives a.
func grantCert(t *testing.T, a *grantAccount, g api.Grant) *tls.Certificate {
	t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ac api.AccessCert
	if err := a.session.Call(ctx, http.MethodPost, api.PathAccessCert, api.AccessCertRequest{Grant: g.ID, CSR: csr}, &ac); err != nil {
		t.Fatalf("the certificate of grant %s for %s: %v", g.ID, a.name, err)
	}
	chain, err := api.ParseChain(ac.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return ca.TLSCertificate(chain, key)
}

// mintGrantCert has the cluster's CA sign a certificate of grant g for the
// administrator id, marked as issued to account, as the control plane's
// access.cert signs one: what a server that checked the grant's requester
// by name alone would have issued.
func (c *cluster) mintGrantCert(id spiffeid.ID, g api.Grant, account string) *tls.Certificate {
	c.t.Helper()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		c.t.Fatal(err)
	}
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		c.t.Fatal(err)
	}
	grant, err := identity.GrantPolicy(g.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	acct, err := identity.AccountPolicy(account)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	srv := c.srv
	c.mu.Unlock()
	chain, err := srv.CA().SignWithPolicies(req.PublicKey, id, time.Hour, []x509.OID{grant, acct})
	if err != nil {
		c.t.Fatal(err)
	}
	return ca.TLSCertificate(chain, key)
}

// relayedShell opens a relayed connection to n1 under grant g with a's
// MFA session and returns what the agent's SSH server first says over
// mutual TLS with cert: its version line, or the error of a refused
// handshake. start runs once the relay is open, before the handshake.
func relayedShell(t *testing.T, a *grantAccount, g api.Grant, cert *tls.Certificate, start func()) (said string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := a.session.Stream(ctx, api.PathAccessDial, http.Header{api.HeaderGrant: {g.ID}, api.HeaderALPN: {api.ALPNAccessSSH}})
	if err != nil {
		t.Fatalf("relay for %s under grant %s: %v", a.name, g.ID, err)
	}
	defer conn.Close()
	if start != nil {
		start()
	}
	tc := tls.Client(conn, &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{api.ALPNAccessSSH},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		InsecureSkipVerify:   true})
	tc.SetDeadline(time.Now().Add(time.Minute))
	if err := tc.HandshakeContext(ctx); err != nil {
		return "", err
	}
	// TLS 1.3: the client's certificate is judged after the client's
	// handshake ends; a refusal arrives on the first read.
	return bufio.NewReader(tc).ReadString('\n')
}

// refusal waits for the agent's flow record of the refused connection of
// admin id whose reason says why.
func refusal(t *testing.T, c *cluster, recs *accessRefusals, id spiffeid.ID, why string) flow.Record {
	t.Helper()
	var got flow.Record
	c.settle("the agent to record the refusal", func() bool {
		recs.mu.Lock()
		defer recs.mu.Unlock()
		for _, r := range recs.got {
			if r.SrcEndpoint != nil && r.SrcEndpoint.UID == id.String() && strings.Contains(r.Unmapped.Reason, why) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// TestAgentAdmitsTheGrantsAccount: an administrator's name comes back when
// the account is removed and another is made with it, and an access-grant
// certificate names the administrator and carries the account's ID. The
// node's agent, which decides alone who reaches it (the relays carry bytes),
// admits a grant's certificate only if it carries the ID of the account
// that asked: a certificate of the grant for the same name but the
// earlier account is refused as outside the grant, and recorded as a
// security event naming the certificate's account beside the name (so
// detection counts it with the control plane's refusals of that account);
// the account's own is admitted. A grant recorded before
// accounts carried an ID is no account's, at the agent as on the control
// plane.
func TestAgentAdmitsTheGrantsAccount(t *testing.T) {
	c := newCluster(t)
	recs := &accessRefusals{got: map[string]flow.Record{}}
	n1 := c.startAgent("n1", func(cfg *agent.Config) { cfg.Flows = recs })

	t.Log("alice is made and removed; another alice is made and granted a shell on n1")
	earlier := c.newGrantAccount("alice")
	if err := c.call(http.MethodDelete, api.PathAdmins, api.AdminRemove{Name: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	alice := c.newGrantAccount("alice")
	if alice.account == earlier.account || alice.id != earlier.id {
		t.Fatalf("the new alice: %s account %s; the earlier: %s account %s", alice.id, alice.account, earlier.id, earlier.account)
	}
	g := c.shellGrant(alice, n1)

	t.Log("a certificate of the grant for alice's name, issued to the earlier account, is refused")
	forged := c.mintGrantCert(alice.id, g, earlier.account)
	if said, err := relayedShell(t, alice, g, forged, nil); err == nil {
		t.Fatalf("the agent admitted the earlier account's certificate of grant %s: it said %q", g.ID, said)
	}
	rec := refusal(t, c, recs, alice.id, "belongs to another account named "+alice.id.String())
	if m := rec.Unmapped; m.ReasonCode != flow.ReasonOutsideGrant || m.Verdict != flow.VerdictDeny || rec.DstEndpoint == nil || rec.DstEndpoint.Name != "n1" {
		t.Errorf("the refusal's record: %+v %+v, want %s on n1", m, rec.DstEndpoint, flow.ReasonOutsideGrant)
	}
	if rec.Unmapped.Account != earlier.account || rec.SrcEndpoint == nil || rec.SrcEndpoint.UID != alice.id.String() {
		t.Errorf("the refusal's record names %+v account %q, want %s and the certificate's account %s", rec.SrcEndpoint, rec.Unmapped.Account, alice.id, earlier.account)
	}

	t.Log("alice's own certificate of the grant is admitted")
	if said, err := relayedShell(t, alice, g, grantCert(t, alice, g), nil); err != nil || !strings.HasPrefix(said, "SSH-2.0-moat") {
		t.Fatalf("alice's own certificate of grant %s: %q, %v", g.ID, said, err)
	}

	t.Log("a grant recorded before accounts carried an ID is refused, its requester's certificate too")
	old := c.shellGrant(alice, n1)
	cert := grantCert(t, alice, old)
	said, err := relayedShell(t, alice, old, cert, func() {
		// The relay took the grant; its record (the server's key of a
		// grant) becomes what a release before account IDs wrote.
		key := "access/grant/" + old.ID
		kv, err := c.st.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			t.Fatal(err)
		}
		delete(rec, "requester_account")
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.st.Put(context.Background(), key, b); err != nil {
			t.Fatal(err)
		}
		c.settle("n1's agent to hold the grant as recorded before IDs", func() bool {
			g, ok := n1.Grant(old.ID)
			return ok && g.RequesterAccount == "" && g.Active(c.clk.Now())
		})
	})
	if err == nil {
		t.Fatalf("the agent admitted a certificate of grant %s, recorded before account IDs: it said %q", old.ID, said)
	}
	rec = refusal(t, c, recs, alice.id, "grant "+old.ID+" was recorded before accounts carried an ID, so it is no account's")
	if m := rec.Unmapped; m.ReasonCode != flow.ReasonOutsideGrant || !strings.Contains(m.Reason, "ask for a new grant") {
		t.Errorf("the refusal's record: %+v, want %s saying what to do", m, flow.ReasonOutsideGrant)
	}
	if rec.Unmapped.Account != alice.account {
		t.Errorf("the refusal's record names account %q, want alice's %s", rec.Unmapped.Account, alice.account)
	}
}
