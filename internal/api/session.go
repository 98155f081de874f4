package api

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"moat/internal/ca"
	"moat/internal/identity"
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

// AdminSession is a client of the control plane for an administrator's
// credentials directory. It presents the MFA session certificate while one
// is valid and the enrolment certificate otherwise; a call refused for want
// of a fresh MFA proof asks Code for a code, trades it for a session
// certificate (stored in the directory for the next commands) and is sent
// once more.
type AdminSession struct {
	*Client
	dir   string
	cfg   SessionConfig
	trust *identity.Trust
	enrol *tls.Certificate
	id    string

	mu        sync.Mutex // guards session and presented
	session   *tls.Certificate
	presented *tls.Certificate // what new connections were last given
}

// NewAdminSession opens the credentials in dir for the server at addr.
func NewAdminSession(addr, dir string, cfg SessionConfig) (*AdminSession, error) {
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
	s := &AdminSession{dir: dir, cfg: cfg, enrol: cert, id: id.String()}
	s.trust = identity.NewTrust(identity.TrustConfig{TrustDomain: id.TrustDomain(), Now: cfg.Now})
	s.trust.Update(x509bundle.FromX509Authorities(id.TrustDomain(), roots), identity.Revocations{})
	if sc, err := s.loadSession(); err == nil {
		s.session = sc
	}
	s.Client = NewClient(addr, ClientTLS(s.certificate, s.trust))
	s.Client.mfa = s.prompt
	s.Client.before = s.recheck
	return s, nil
}

// Trust is the bundle the directory pins.
func (s *AdminSession) Trust() *identity.Trust { return s.trust }

// ID is the administrator's SPIFFE ID.
func (s *AdminSession) ID() string { return s.id }

// certificate presents the session certificate while it is valid.
func (s *AdminSession) certificate() (*tls.Certificate, error) {
	c := s.Session()
	if c == nil {
		c = s.enrol
	}
	s.mu.Lock()
	s.presented = c
	s.mu.Unlock()
	return c, nil
}

// recheck drops pooled connections once the session certificate they
// present has expired, so the next call presents the enrolment one.
func (s *AdminSession) recheck() {
	want := s.Session()
	if want == nil {
		want = s.enrol
	}
	s.mu.Lock()
	stale := s.presented != nil && s.presented != want
	s.mu.Unlock()
	if stale {
		s.Client.Close()
	}
}

// Session returns the MFA session certificate if one is valid now.
func (s *AdminSession) Session() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil || identity.CheckValidity(s.session.Leaf, s.cfg.Now().Add(5*time.Second)) != nil {
		return nil
	}
	return s.session
}

func (s *AdminSession) loadSession() (*tls.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, SessionFile))
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

// prompt is the client's answer to ErrMFARequired.
func (s *AdminSession) prompt(ctx context.Context) error {
	if s.cfg.Code == nil {
		return fmt.Errorf("%w: no way to ask for a code here; run \"moat admin mfa login\" first", ErrMFARequired)
	}
	code, err := s.cfg.Code(ctx)
	if err != nil {
		return err
	}
	_, err = s.Login(ctx, code)
	return err
}

// Login trades code for an MFA session certificate, stores it in the
// directory and presents it from now on. It returns the certificate.
func (s *AdminSession) Login(ctx context.Context, code string) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api: key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("api: csr: %w", err)
	}
	var resp CertResponse
	if err := s.Client.call(ctx, http.MethodPost, PathMFASession, true, mustMarshal(MFASessionRequest{Code: code, CSR: csr}), &resp); err != nil {
		return nil, err
	}
	chain, err := ParseChain(resp.Chain)
	if err != nil {
		return nil, err
	}
	if !publicKeyMatch(chain[0].PublicKey, key.Public()) {
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
	if err := writeFile0600(filepath.Join(s.dir, SessionFile), b); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.session = sc
	s.mu.Unlock()
	s.Client.Close() // new connections present the session certificate
	return chain[0], nil
}

// Logout forgets the session certificate, here and on disk.
func (s *AdminSession) Logout() error {
	s.mu.Lock()
	s.session = nil
	s.mu.Unlock()
	s.Client.Close()
	if err := os.Remove(filepath.Join(s.dir, SessionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

func publicKeyMatch(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
