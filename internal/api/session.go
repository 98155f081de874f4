package api

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/seal"
)

// SessionFile, inside an admin credentials directory, holds the current MFA
// session certificate and its key (PEM, mode 0600). It lives minutes; the
// enrolment credential beside it is what the session was obtained with.
const SessionFile = "session.pem"

// SessionConfig configures an AdminSession.
type SessionConfig struct {
	// Code returns a one-time code from the administrator's authenticator
	// when a call needs a fresh MFA proof; nil means such calls fail with
	// ErrMFARequired.
	Code func(ctx context.Context) (string, error)
	// Now is the clock that decides whether the session certificate is
	// still fresh; nil means time.Now.
	Now func() time.Time
}

// NewAdminSession opens the credentials in dir for the server at addr as
// an AdminClient that presents the MFA session certificate while one is
// valid and the enrolment certificate otherwise. A call refused for want of
// a fresh MFA proof asks cfg.Code for a code, trades it for a session
// certificate (stored in the directory for the next commands) and is sent
// once more.
func NewAdminSession(addr, dir string, cfg SessionConfig) (*AdminClient, error) {
	cert, roots, err := LoadCredentials(dir)
	if err != nil {
		return nil, err
	}
	id, err := identity.LeafID(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", dir, err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &AdminClient{addr: addr, dir: dir, td: id.TrustDomain(), id: id.String(), cfg: cfg, cert: cert}
	a.trust = identity.NewTrust(identity.TrustConfig{TrustDomain: a.td, Now: cfg.Now})
	a.trust.Update(x509bundle.FromX509Authorities(a.td, roots), identity.Revocations{})
	sc, err := a.loadSession()
	switch {
	case err == nil:
		a.session = sc
	case errors.Is(err, seal.ErrKeyFileMode):
		return nil, fmt.Errorf("api: %w", err)
	}
	a.Client = NewClient(addr, ClientTLS(a.present, a.trust))
	a.Client.mfa = a.prompt
	a.Client.sessionGen = a.generation
	a.Client.before = a.recheck
	return a, nil
}

// Trust is the bundle the directory pins.
func (a *AdminClient) Trust() *identity.Trust { return a.trust }

// ID is the administrator's SPIFFE ID.
func (a *AdminClient) ID() string { return a.id }

// present is what new connections show: the session certificate while it
// is valid, else the enrolment one.
func (a *AdminClient) present() (*tls.Certificate, error) {
	c := a.Session()
	a.mu.Lock()
	defer a.mu.Unlock()
	if c == nil {
		c = a.cert
	}
	a.presented = c
	return c, nil
}

// recheck drops pooled connections once the certificate they present is
// no longer the one to present (the session expired, or a renewal).
func (a *AdminClient) recheck() {
	want := a.Session()
	a.mu.Lock()
	defer a.mu.Unlock()
	if want == nil {
		want = a.cert
	}
	if a.presented != nil && a.presented != want {
		// Under a.mu, so that no call checks before the connections are
		// new and is then sent over an old one.
		a.presented = nil
		a.Client.NewConnections()
	}
}

// Session returns the MFA session certificate if one is valid now and was
// issued under the same intermediate as the enrolment certificate: after a
// root rotation renewed the enrolment certificate, a session from the old
// root would be refused once that root is retired, so it is set aside (a
// new login makes one under the new root).
func (s *AdminClient) Session() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil || identity.CheckValidity(s.session.Leaf, s.cfg.Now().Add(5*time.Second)) != nil {
		return nil
	}
	if len(s.session.Certificate) < 2 || len(s.cert.Certificate) < 2 || !bytes.Equal(s.session.Certificate[1], s.cert.Certificate[1]) {
		return nil
	}
	return s.session
}

func (s *AdminClient) loadSession() (*tls.Certificate, error) {
	b, err := readPrivate(filepath.Join(s.dir, SessionFile))
	if err != nil {
		return nil, err
	}
	c, err := ParseCertKey(b)
	if err != nil {
		return nil, err
	}
	if id, err := identity.LeafID(c.Leaf); err != nil || id.String() != s.id {
		return nil, errors.New("api: the session file belongs to another administrator")
	}
	return c, nil
}

// generation counts the session's changes (logins, logouts).
func (s *AdminClient) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// prompt is the client's answer to ErrMFARequired for a call sent while
// the session was at generation seen. Calls refused together wait for one
// code: once one of them logged in, the others are sent again with its
// session instead of asking for a code each.
func (s *AdminClient) prompt(ctx context.Context, seen uint64) error {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if s.generation() != seen {
		return nil
	}
	if s.adoptStored() {
		return nil
	}
	if s.cfg.Code == nil {
		if se := Refusal(ctx); se != nil && se.Reason == ReasonMFAStale {
			return fmt.Errorf("%w; no way to ask for a code here: run \"moat admin mfa login\" right before", se)
		}
		return fmt.Errorf("%w: no way to ask for a code here; run \"moat admin mfa login\" first", ErrMFARequired)
	}
	code, err := s.cfg.Code(ctx)
	if err != nil {
		return err
	}
	_, err = s.Login(ctx, code)
	return err
}

// adoptStored replaces the client's MFA session, which the server no
// longer takes, with the one stored in the directory if that is valid and
// another: a command logged in since (the administrator ran "moat admin
// mfa login" beside a long-running command such as "moat access
// forward"), and the call is sent again with it rather than asking for a
// code. A client that held no session asks for a code as before.
func (s *AdminClient) adoptStored() bool {
	sc, err := s.loadSession()
	if err != nil || identity.CheckValidity(sc.Leaf, s.cfg.Now().Add(5*time.Second)) != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil || s.session.Leaf.SerialNumber.Cmp(sc.Leaf.SerialNumber) == 0 {
		return false
	}
	s.session = sc
	s.gen++
	s.Client.NewConnections()
	return true
}

// Login trades code for an MFA session certificate, stores it in the
// directory and presents it from now on. It returns the certificate.
func (s *AdminClient) Login(ctx context.Context, code string) (*x509.Certificate, error) {
	ctx, cancel := s.Client.deadline(ctx)
	defer cancel()
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return nil, err
	}
	// The code is spent by the server that takes it: the exchange goes to
	// another server only if no server took the request (failoverUnsent).
	body, err := json.Marshal(MFASessionRequest{Code: code, CSR: csr})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	var resp CertResponse
	if err := s.Client.call(ctx, http.MethodPost, PathMFASession, body, &resp, failoverUnsent); err != nil {
		return nil, err
	}
	return s.adoptSession(resp, key)
}

// Assert answers a WebAuthn assertion request: options is what the server
// answered to PathWebAuthnLoginBegin (the argument of
// navigator.credentials.get()), the result the PublicKeyCredential as
// JSON. A browser does this with the security key; tests with a software
// authenticator.
type Assert func(ctx context.Context, options json.RawMessage) (json.RawMessage, error)

// WebAuthnLogin trades an assertion of a registered security key for an
// MFA session certificate (marked webauthn), as Login does a code. The
// challenge is spent by the server that checks it, so the finish, like a
// code, is never sent twice.
func (s *AdminClient) WebAuthnLogin(ctx context.Context, assert Assert) (*x509.Certificate, error) {
	ctx, cancel := s.Client.deadline(ctx)
	defer cancel()
	var options json.RawMessage
	if err := s.Client.call(ctx, http.MethodPost, PathWebAuthnLoginBegin, []byte("{}"), &options, failoverAny); err != nil {
		return nil, err
	}
	cred, err := assert(ctx, options)
	if err != nil {
		return nil, err
	}
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(WebAuthnSessionRequest{CSR: csr, Credential: cred})
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	var resp CertResponse
	if err := s.Client.call(ctx, http.MethodPost, PathWebAuthnLogin, body, &resp, failoverUnsent); err != nil {
		return nil, err
	}
	return s.adoptSession(resp, key)
}

// adoptSession checks the session certificate the server answered over
// key, stores it in the directory and presents it from now on.
func (s *AdminClient) adoptSession(resp CertResponse, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	chain, err := ParseChain(resp.Chain)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("api: the server signed a different key")
	}
	if id, err := s.trust.Verify(chain); err != nil || id.String() != s.id {
		return nil, fmt.Errorf("api: the session certificate does not verify as %s: %v", s.id, err)
	}
	if m, err := identity.ReadAdminMarks(chain[0]); err != nil || m.MFA == "" {
		return nil, errors.New("api: the server answered with a certificate that is not an MFA session")
	}
	sc := ca.TLSCertificate(chain, key)
	b, err := EncodeCertKey(sc)
	if err != nil {
		return nil, err
	}
	if err := seal.WriteFileAtomic(filepath.Join(s.dir, SessionFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.mu.Lock()
	s.session = sc
	s.gen++
	s.mu.Unlock()
	s.Client.NewConnections() // which present the session certificate
	return chain[0], nil
}

// Logout ends the administrator's MFA sessions on the control plane (every
// copy of every session certificate stops counting as a second factor) and
// forgets the session certificate, here and on disk. The local copy is
// forgotten even when the control plane cannot be told, and the error says
// so.
func (s *AdminClient) Logout(ctx context.Context) (int, error) {
	var out MFALogout
	cerr := s.Call(ctx, http.MethodPost, PathMFALogout, struct{}{}, &out)
	if err := s.forgetSession(); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, fmt.Errorf("api: the session certificate is forgotten here, but the control plane did not end the session (it lasts until it expires): %w", cerr)
	}
	return out.Ended, nil
}

// forgetSession drops the session certificate, here and on disk.
func (s *AdminClient) forgetSession() error {
	s.mu.Lock()
	s.session = nil
	s.gen++
	s.mu.Unlock()
	s.Client.NewConnections()
	if err := os.Remove(filepath.Join(s.dir, SessionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
