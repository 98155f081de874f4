package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/identity"
)

// mfaServer is a control plane stand-in over TLS with a moat server SVID:
// sensitive (PathPolicy) answers 401 mfa_required unless the client
// presents an MFA session certificate; session trades code 123456 for one,
// or does what onSession says. It counts what it was sent.
type mfaServer struct {
	addr             string
	policy, sessions atomic.Int64
	onSession        func(w http.ResponseWriter) bool // true: handled
	unavailable      bool
}

func startMFAServer(t *testing.T, authority *ca.CA, name string, m *mfaServer) *mfaServer {
	t.Helper()
	ln := serverListener(t, authority, name, tls.RequireAnyClientCert)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.unavailable {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"no etcd quorum"}`)
			return
		}
		switch r.URL.Path {
		case PathPolicy:
			m.policy.Add(1)
			marks, err := identity.ReadAdminMarks(r.TLS.PeerCertificates[0])
			if err != nil || marks.MFA == "" {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"policy.apply needs a fresh MFA proof","reason":"mfa_required"}`)
				return
			}
			io.WriteString(w, `{}`)
		case PathMFASession:
			m.sessions.Add(1)
			if m.onSession != nil && m.onSession(w) {
				return
			}
			var req MFASessionRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Code != "123456" {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":"MFA code refused"}`)
				return
			}
			csr, _ := x509.ParseCertificateRequest(req.CSR)
			admin, _ := identity.LeafID(r.TLS.PeerCertificates[0])
			pol, _ := identity.MFASessionPolicy(identity.MFATOTP)
			chain, err := authority.SignWithPolicies(csr.PublicKey, admin, 15*time.Minute, []x509.OID{pol})
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(CertResponse{Chain: DERs(chain)})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.addr = ln.Addr().String()
	return m
}

// adminDir writes an administrator's enrolment credentials from authority.
func adminDir(t *testing.T, authority *ca.CA) string {
	t.Helper()
	id, err := identity.AdminID(authority.TrustDomain(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "alice")
	if err := WriteCredentials(dir, cert, authority.Bundle().X509Authorities()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func testCA(t *testing.T) *ca.CA {
	t.Helper()
	authority, err := ca.New(ca.Config{TrustDomain: spiffeid.RequireTrustDomainFromString("example.org")})
	if err != nil {
		t.Fatal(err)
	}
	return authority
}

// TestMFARetryOnceAcrossFailover: a call that fails over past an
// unavailable server to one that wants a fresh MFA proof asks for one code,
// once, trades it once, and is sent again.
func TestMFARetryOnceAcrossFailover(t *testing.T) {
	authority := testCA(t)
	busy := startMFAServer(t, authority, "busy", &mfaServer{unavailable: true})
	good := startMFAServer(t, authority, "good", &mfaServer{})
	var asked atomic.Int64
	s, err := NewAdminSession(busy.addr+","+good.addr, adminDir(t, authority), SessionConfig{Code: func(context.Context) (string, error) {
		asked.Add(1)
		return "123456", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Call(context.Background(), http.MethodPost, PathPolicy, PolicyRequest{YAML: "default: deny\n"}, nil); err != nil {
		t.Fatalf("policy apply: %v", err)
	}
	if asked.Load() != 1 || good.sessions.Load() != 1 || good.policy.Load() != 2 {
		t.Fatalf("codes asked %d, sessions traded %d, policy calls %d; want 1, 1, 2", asked.Load(), good.sessions.Load(), good.policy.Load())
	}
	t.Log("the session serves the next call without a code")
	if err := s.Call(context.Background(), http.MethodPost, PathPolicy, PolicyRequest{YAML: "default: deny\n"}, nil); err != nil || asked.Load() != 1 {
		t.Fatalf("second call: %v, codes asked %d", err, asked.Load())
	}
}

// TestConcurrentCallsAskOneCode: sensitive calls refused together for want
// of a session ask the administrator for one code between them, trade it
// once, and are each sent again with that session.
func TestConcurrentCallsAskOneCode(t *testing.T) {
	authority := testCA(t)
	good := startMFAServer(t, authority, "good", &mfaServer{})
	const calls = 8
	var asked atomic.Int64
	s, err := NewAdminSession(good.addr, adminDir(t, authority), SessionConfig{Code: func(ctx context.Context) (string, error) {
		asked.Add(1)
		// Every call has been refused before the administrator answers.
		for good.policy.Load() < calls {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		return "123456", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errs := make(chan error, calls)
	for range calls {
		go func() {
			errs <- s.Call(context.Background(), http.MethodPost, PathPolicy, PolicyRequest{YAML: "default: deny\n"}, nil)
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("policy apply: %v", err)
		}
	}
	if asked.Load() != 1 || good.sessions.Load() != 1 || good.policy.Load() != 2*calls {
		t.Fatalf("codes asked %d, sessions traded %d, policy calls %d; want 1, 1, %d", asked.Load(), good.sessions.Load(), good.policy.Load(), 2*calls)
	}
}

// TestLoginNeverResendsACode: a server that took the code-for-session
// request and lost its answer ends the login, naming why; the code is not
// sent to the next server, which could spend it a second time. A server
// that could not be reached took nothing: the next one gets the code.
func TestLoginNeverResendsACode(t *testing.T) {
	authority := testCA(t)
	lost := startMFAServer(t, authority, "lost", &mfaServer{onSession: func(http.ResponseWriter) bool {
		panic(http.ErrAbortHandler) // the request was read; the answer never comes
	}})
	next := startMFAServer(t, authority, "next", &mfaServer{})
	s, err := NewAdminSession(lost.addr+","+next.addr, adminDir(t, authority), SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Login(context.Background(), "123456")
	if err == nil || !strings.Contains(err.Error(), "it is not sent again") {
		t.Fatalf("login through a server that lost the answer: %v", err)
	}
	if lost.sessions.Load() != 1 || next.sessions.Load() != 0 {
		t.Fatalf("the code went to %d and %d servers' session calls; want 1 and 0", lost.sessions.Load(), next.sessions.Load())
	}

	t.Log("a server that is down took nothing: the code goes to the next one")
	s2, err := NewAdminSession(deadAddr(t)+","+next.addr, adminDir(t, authority), SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Login(context.Background(), "123456"); err != nil || next.sessions.Load() != 1 {
		t.Fatalf("login past a dead server: %v (sessions at the next: %d)", err, next.sessions.Load())
	}

	t.Log("a 503 is an answer: the code is not sent on")
	busy := startMFAServer(t, authority, "busy", &mfaServer{unavailable: true})
	s3, err := NewAdminSession(busy.addr+","+next.addr, adminDir(t, authority), SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, err := s3.Login(context.Background(), "123456"); !errors.Is(err, ErrUnavailable) || next.sessions.Load() != 1 {
		t.Fatalf("login through a 503: %v (sessions at the next: %d)", err, next.sessions.Load())
	}
}
