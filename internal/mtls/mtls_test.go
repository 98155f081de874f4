package mtls

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/testkit"
)

type fixture struct {
	td    spiffeid.TrustDomain
	ca    *ca.CA
	trust *identity.Trust
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("example.org")
	c, err := ca.New(ca.Config{TrustDomain: td})
	if err != nil {
		t.Fatal(err)
	}
	tr := identity.NewTrust(identity.TrustConfig{TrustDomain: td})
	tr.Update(c.Bundle(), identity.Revocations{})
	return &fixture{td: td, ca: c, trust: tr}
}

func (f *fixture) svid(t *testing.T, name string) (*tls.Certificate, spiffeid.ID) {
	t.Helper()
	id, err := identity.ServiceID(f.td, name)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := f.ca.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return cert, id
}

// handshake runs one handshake over a real loopback connection and returns
// the client's and the server's errors.
func handshake(t *testing.T, server, client *tls.Config) (cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3 clients finish before the server has checked them;
			// a read surfaces the server's verdict to the client.
			_, err = tc.Write([]byte{1})
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, client)
	cerr = tc.Handshake()
	if cerr == nil {
		_ = tc.SetReadDeadline(time.Now().Add(testkit.WaitLimit))
		_, cerr = tc.Read(make([]byte, 1))
	}
	return cerr, <-done
}

func TestHandshakes(t *testing.T) {
	f := newFixture(t)
	apiCert, apiID := f.svid(t, "api")
	webCert, webID := f.svid(t, "web")
	other := newFixture(t)
	strangerCert, _ := other.svid(t, "web")

	goodServer := func() ServerConfig {
		return ServerConfig{
			Verifier:       f.trust,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return apiCert, nil },
		}
	}
	goodClient := func() ClientConfig {
		return ClientConfig{Verifier: f.trust, GetClientCertificate: Static(webCert), ServerName: "api", Expect: []spiffeid.ID{apiID}}
	}
	cases := []struct {
		name       string
		server     func(*ServerConfig)
		client     func(*ClientConfig)
		tls12      bool
		serverWant string
		clientWant string
	}{
		{name: "good"},
		{name: "wrong server identity", client: func(c *ClientConfig) { c.Expect = []spiffeid.ID{webID} }, clientWant: "unexpected peer identity"},
		{name: "no client certificate", client: func(c *ClientConfig) {
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
		}, serverWant: "client didn't provide a certificate"},
		{name: "client from another CA", client: func(c *ClientConfig) { c.GetClientCertificate = Static(strangerCert) }, serverWant: "unknown authority"},
		{name: "authorizer refuses", server: func(s *ServerConfig) {
			s.Authorize = func(id spiffeid.ID, _ tls.ConnectionState) error { return errors.New("not today") }
		}, serverWant: `mtls: client "spiffe://example.org/svc/web": not today`},
		{name: "TLS 1.2 client", tls12: true, serverWant: "unsupported versions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc, cc := goodServer(), goodClient()
			if c.server != nil {
				c.server(&sc)
			}
			if c.client != nil {
				c.client(&cc)
			}
			scfg, err := Server(sc)
			if err != nil {
				t.Fatal(err)
			}
			ccfg, err := Client(cc)
			if err != nil {
				t.Fatal(err)
			}
			if c.tls12 {
				ccfg.MinVersion, ccfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			}
			cerr, serr := handshake(t, scfg, ccfg)
			check := func(side string, err error, want string) {
				switch {
				case want == "" && err != nil:
					t.Errorf("%s: unexpected error %v", side, err)
				case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: got %v, want error containing %q", side, err, want)
				}
			}
			if c.clientWant != "" || c.serverWant == "" {
				check("client", cerr, c.clientWant)
			} else if cerr == nil {
				t.Error("client: handshake refused by the server but the client saw no error")
			}
			if c.clientWant == "" {
				check("server", serr, c.serverWant)
			}
		})
	}
}

func TestConfigNeedsParts(t *testing.T) {
	if _, err := Server(ServerConfig{}); err == nil {
		t.Error("server without verifier accepted")
	}
	f := newFixture(t)
	if _, err := Client(ClientConfig{Verifier: f.trust, GetClientCertificate: Static(nil)}); err == nil {
		t.Error("client without expected identity accepted")
	}
}

// TestReasonCode: the error a server's handshake ends with, for each way a
// client's certificate is refused, maps to the reason code its record
// carries (detection matches on it); a TLS failure that is no verdict on a
// certificate maps to none.
func TestReasonCode(t *testing.T) {
	f := newFixture(t)
	apiCert, apiID := f.svid(t, "api")
	webCert, webID := f.svid(t, "web")
	strangerCert, _ := newFixture(t).svid(t, "web")
	trust := func(now time.Time, rev identity.Revocations, bundle bool) *identity.Trust {
		tr := identity.NewTrust(identity.TrustConfig{TrustDomain: f.td, Now: func() time.Time { return now }})
		if bundle {
			tr.Update(f.ca.Bundle(), rev)
		}
		return tr
	}
	now := time.Now()
	cases := []struct {
		name     string
		verifier Verifier
		client   *tls.Certificate
		tls12    bool
		want     string
	}{
		{"revoked identity", trust(now, identity.Revocations{Version: 1, IDs: []string{webID.String()}}, true), webCert, false, flow.ReasonRevoked},
		{"revoked serial", trust(now, identity.Revocations{Version: 1, Serials: []string{identity.SerialHex(webCert.Leaf.SerialNumber)}}, true), webCert, false, flow.ReasonRevoked},
		{"expired", trust(now.Add(2*time.Hour), identity.Revocations{}, true), webCert, false, flow.ReasonExpired},
		{"not yet valid", trust(now.Add(-time.Hour), identity.Revocations{}, true), webCert, false, flow.ReasonExpired},
		{"another authority", f.trust, strangerCert, false, flow.ReasonUnknownAuthority},
		{"no bundle yet", trust(now, identity.Revocations{}, false), webCert, false, flow.ReasonUnknownAuthority},
		{"TLS 1.2", f.trust, webCert, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scfg, err := Server(ServerConfig{Verifier: c.verifier, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return apiCert, nil }})
			if err != nil {
				t.Fatal(err)
			}
			ccfg, err := Client(ClientConfig{Verifier: f.trust, GetClientCertificate: Static(c.client), ServerName: "api", Expect: []spiffeid.ID{apiID}})
			if err != nil {
				t.Fatal(err)
			}
			if c.tls12 {
				ccfg.MinVersion, ccfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			}
			_, serr := handshake(t, scfg, ccfg)
			if serr == nil {
				t.Fatal("the server let the client in")
			}
			if got := ReasonCode(serr); got != c.want {
				t.Errorf("ReasonCode(%v) = %q, want %q", serr, got, c.want)
			}
		})
	}

	t.Run("unexpected server", func(t *testing.T) {
		scfg, err := Server(ServerConfig{Verifier: f.trust, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return apiCert, nil }})
		if err != nil {
			t.Fatal(err)
		}
		ccfg, err := Client(ClientConfig{Verifier: f.trust, GetClientCertificate: Static(webCert), ServerName: "api", Expect: []spiffeid.ID{webID}})
		if err != nil {
			t.Fatal(err)
		}
		cerr, _ := handshake(t, scfg, ccfg)
		if got := ReasonCode(cerr); got != flow.ReasonBadCertificate {
			t.Errorf("ReasonCode(%v) = %q, want %q", cerr, got, flow.ReasonBadCertificate)
		}
	})
}
