// Package ca is moat's certificate authority: a root (moat-made or supplied
// by the operator), an intermediate that signs X.509-SVIDs, and the state of
// a root rotation.
//
// Every certificate the CA signs is parsed back and verified against the
// current bundle with the same rules peers apply (identity.Trust) before it
// is returned: a CA that could hand out a certificate its own fleet rejects
// is a CA that fails silently.
//
// A root rotation has three steps, each safe to run while traffic flows:
// Prepare makes a new root and intermediate and publishes the root in the
// bundle (peers trust both); Activate makes the new intermediate sign; Retire
// removes the old root, refused while an SVID it signed may still be live.
// An intermediate lives a year and nothing signed outlives it, so one with
// a third of its life left is replaced under the same root
// (IntermediateDue, RenewIntermediate).
package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/identity"
)

// Defaults.
const (
	DefaultSVIDTTL         = time.Hour
	DefaultRootTTL         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateTTL = 365 * 24 * time.Hour
	// MaxAdminTTL caps admin client certificates.
	MaxAdminTTL = 90 * 24 * time.Hour
	// DefaultNodeTTL is a node certificate's life: far longer than a
	// service SVID's, so a fleet rides out a long control-plane outage
	// with valid node identities (and one that outlasts even this
	// re-attests with its pinned node key).
	DefaultNodeTTL = 24 * time.Hour
	// MaxNodeTTL caps node certificates.
	MaxNodeTTL = 30 * 24 * time.Hour
	// clockSkew backdates NotBefore so peers with slightly slow clocks accept
	// a fresh SVID.
	clockSkew = 30 * time.Second
)

// Errors.
var (
	ErrNoPrepared     = errors.New("ca: no prepared root: run \"moat ca rotate prepare\" first")
	ErrRotationActive = errors.New("ca: a root rotation is already in progress")
	ErrNothingRetire  = errors.New("ca: no old root to retire")
	ErrOldRootLive    = errors.New("ca: the old root still has live SVIDs")
	ErrBadTTL         = errors.New("ca: bad TTL")
	ErrRootKeyAbsent  = errors.New("ca: the root key is not held here: a new intermediate needs it")
	ErrBadKey         = errors.New("ca: key refused")
)

// Config configures a CA.
type Config struct {
	TrustDomain spiffeid.TrustDomain
	// SVIDTTL is the default SVID lifetime; zero means DefaultSVIDTTL.
	SVIDTTL time.Duration
	// MaxSVIDTTL caps what callers may ask for; zero means 24h.
	MaxSVIDTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the entropy source; nil means crypto/rand.
	Rand io.Reader
}

// Authority is one root with the intermediate under it.
type Authority struct {
	Root         *x509.Certificate
	RootKey      crypto.Signer // nil for an operator-supplied root kept offline
	Intermediate *x509.Certificate
	InterKey     crypto.Signer
	// LastExpiry is the latest NotAfter of any SVID this authority signed.
	LastExpiry time.Time
}

// State is the CA's persistent state. Authorities[Active] signs; a second
// authority exists only during a rotation.
type State struct {
	Authorities []*Authority
	Active      int
}

// CA signs SVIDs. Its methods are safe for concurrent use.
type CA struct {
	td     spiffeid.TrustDomain
	ttl    time.Duration
	maxTTL time.Duration
	now    func() time.Time
	rand   io.Reader

	mu    sync.Mutex // guards state and trust
	state State
	trust *identity.Trust
}

// New returns a CA with a fresh ECDSA P-256 root and intermediate, held in
// memory (see Save and Load to persist it).
func New(c Config) (*CA, error) {
	ca, err := newCA(c)
	if err != nil {
		return nil, err
	}
	a, err := ca.newAuthority()
	if err != nil {
		return nil, err
	}
	ca.state = State{Authorities: []*Authority{a}}
	ca.refreshTrust()
	return ca, nil
}

// FromState returns a CA over state restored from storage.
func FromState(c Config, st State) (*CA, error) {
	ca, err := newCA(c)
	if err != nil {
		return nil, err
	}
	if len(st.Authorities) == 0 || st.Active < 0 || st.Active >= len(st.Authorities) {
		return nil, errors.New("ca: state has no active authority")
	}
	for i, a := range st.Authorities {
		if a.Root == nil || a.Intermediate == nil || a.InterKey == nil {
			return nil, fmt.Errorf("ca: authority %d is incomplete", i)
		}
		if err := a.Intermediate.CheckSignatureFrom(a.Root); err != nil {
			return nil, fmt.Errorf("ca: authority %d: intermediate is not signed by its root: %w", i, err)
		}
		if !publicKeyMatches(a.Intermediate.PublicKey, a.InterKey.Public()) {
			return nil, fmt.Errorf("ca: authority %d: intermediate key does not match its certificate", i)
		}
	}
	ca.state = st
	ca.refreshTrust()
	return ca, nil
}

func newCA(c Config) (*CA, error) {
	if c.TrustDomain.IsZero() {
		return nil, fmt.Errorf("ca: %w", identity.ErrBadTrustDomain)
	}
	ca := &CA{td: c.TrustDomain, ttl: c.SVIDTTL, maxTTL: c.MaxSVIDTTL, now: c.Now, rand: c.Rand}
	if ca.ttl == 0 {
		ca.ttl = DefaultSVIDTTL
	}
	if ca.maxTTL == 0 {
		ca.maxTTL = 24 * time.Hour
	}
	if ca.ttl < 0 || ca.ttl > ca.maxTTL {
		return nil, fmt.Errorf("%w: SVID TTL %s must be positive and at most %s", ErrBadTTL, ca.ttl, ca.maxTTL)
	}
	if ca.now == nil {
		ca.now = time.Now
	}
	if ca.rand == nil {
		ca.rand = rand.Reader
	}
	return ca, nil
}

// TrustDomain returns the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// State returns a copy of the CA state for persisting.
func (ca *CA) State() State {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	st := State{Active: ca.state.Active}
	for _, a := range ca.state.Authorities {
		c := *a
		st.Authorities = append(st.Authorities, &c)
	}
	return st
}

// Bundle returns the trust bundle: every root of every authority.
func (ca *CA) Bundle() *x509bundle.Bundle {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.bundleLocked()
}

func (ca *CA) bundleLocked() *x509bundle.Bundle {
	b := x509bundle.New(ca.td)
	for _, a := range ca.state.Authorities {
		b.AddX509Authority(a.Root)
	}
	return b
}

func (ca *CA) refreshTrust() {
	t := identity.NewTrust(identity.TrustConfig{TrustDomain: ca.td, Now: ca.now})
	t.Update(ca.bundleLocked(), identity.Revocations{})
	ca.trust = t
}

func (ca *CA) newAuthority() (*Authority, error) {
	now := ca.now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: generate root key: %w", err)
	}
	serial, err := ca.serial()
	if err != nil {
		return nil, err
	}
	tdURI := &url.URL{Scheme: "spiffe", Host: ca.td.Name()}
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"moat"}, CommonName: "moat root " + now.UTC().Format("2006-01-02T15:04:05Z")},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(DefaultRootTTL),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{tdURI},
	}
	rootDER, err := x509.CreateCertificate(ca.rand, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign root: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, fmt.Errorf("ca: parse root: %w", err)
	}
	inter, interKey, err := ca.newIntermediate(root, rootKey)
	if err != nil {
		return nil, err
	}
	return &Authority{Root: root, RootKey: rootKey, Intermediate: inter, InterKey: interKey}, nil
}

func (ca *CA) newIntermediate(root *x509.Certificate, rootKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	now := ca.now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate intermediate key: %w", err)
	}
	serial, err := ca.serial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(DefaultIntermediateTTL)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"moat"}, CommonName: "moat intermediate " + now.UTC().Format("2006-01-02T15:04:05Z")},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{{Scheme: "spiffe", Host: ca.td.Name()}},
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: sign intermediate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: parse intermediate: %w", err)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return nil, nil, fmt.Errorf("ca: intermediate does not verify: %w", err)
	}
	return cert, key, nil
}

func (ca *CA) serial() (*big.Int, error) {
	n, err := rand.Int(ca.rand, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// SignPublicKey issues an SVID for id over pub, valid for ttl (zero means the
// CA's default), capped by the intermediate's own life. It returns the chain
// leaf first, then the intermediate, after verifying it as a peer would.
func (ca *CA) SignPublicKey(pub crypto.PublicKey, id spiffeid.ID, ttl time.Duration) ([]*x509.Certificate, error) {
	return ca.SignWithPolicies(pub, id, ttl, nil)
}

// SignWithPolicies is SignPublicKey for a certificate that also carries the
// certificate policies given (moat marks admin session and access-grant
// certificates so; see identity.ReadAdminMarks). The policies are checked on
// the signed leaf like everything else.
func (ca *CA) SignWithPolicies(pub crypto.PublicKey, id spiffeid.ID, ttl time.Duration, policies []x509.OID) ([]*x509.Certificate, error) {
	if !id.MemberOf(ca.td) {
		return nil, fmt.Errorf("ca: %w: %q is not in %q", identity.ErrWrongTrustDomain, id, ca.td.Name())
	}
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	kind, _, ok := identity.Parse(id)
	if !ok {
		return nil, fmt.Errorf("ca: %w: %q is not a moat service, node, admin or server ID", identity.ErrNotSVID, id)
	}
	maxTTL := ca.maxTTL
	switch kind {
	case identity.KindAdmin:
		maxTTL = MaxAdminTTL
	case identity.KindNode:
		maxTTL = max(maxTTL, MaxNodeTTL)
	}
	if ttl == 0 {
		ttl = ca.ttl
	}
	if ttl < 0 || ttl > maxTTL {
		return nil, fmt.Errorf("%w: %s must be positive and at most %s", ErrBadTTL, ttl, maxTTL)
	}
	serial, err := ca.serial()
	if err != nil {
		return nil, err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	a := ca.state.Authorities[ca.state.Active]
	now := ca.now()
	notAfter := now.Add(ttl)
	if notAfter.After(a.Intermediate.NotAfter) {
		notAfter = a.Intermediate.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"moat"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{id.URL()},
		Policies:              policies,
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, a.Intermediate, pub, a.InterKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign SVID for %q: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse signed SVID: %w", err)
	}
	if err := validate(leaf, a.Intermediate, id, now); err != nil {
		return nil, err
	}
	if len(leaf.Policies) != len(policies) {
		return nil, errors.New("ca: signed SVID lost its certificate policies")
	}
	for i, p := range policies {
		if !leaf.Policies[i].Equal(p) {
			return nil, fmt.Errorf("ca: signed SVID carries policy %s, want %s", leaf.Policies[i], p)
		}
	}
	chain := []*x509.Certificate{leaf, a.Intermediate}
	// Admin credentials are renewed by their holders under the new root and
	// do not hold back a rotation; workload SVIDs do.
	if kind != identity.KindAdmin && notAfter.After(a.LastExpiry) {
		a.LastExpiry = notAfter
	}
	return chain, nil
}

// validate checks a freshly signed leaf as peers will: the SVID rules, the
// identity asked for, validity now, and the issuer. x509.CreateCertificate
// has already checked the signature with the intermediate's public key, and
// the intermediate was checked against its root when the authority was made
// or loaded, so the chain is not verified a second time here.
func validate(leaf, inter *x509.Certificate, id spiffeid.ID, now time.Time) error {
	got, err := identity.LeafID(leaf)
	if err != nil {
		return fmt.Errorf("ca: signed SVID: %w", err)
	}
	if got != id {
		return fmt.Errorf("ca: signed SVID names %q, want %q", got, id)
	}
	if err := identity.CheckLeaf(leaf); err != nil {
		return fmt.Errorf("ca: signed SVID: %w", err)
	}
	if err := identity.CheckValidity(leaf, now); err != nil {
		return fmt.Errorf("ca: signed SVID: %w", err)
	}
	if !bytes.Equal(leaf.RawIssuer, inter.RawSubject) || !bytes.Equal(leaf.AuthorityKeyId, inter.SubjectKeyId) {
		return errors.New("ca: signed SVID does not name the intermediate as its issuer")
	}
	return nil
}

// SignCSR issues an SVID for id over the public key of a PKCS#10 request.
// The request's own names are ignored: the CA decides the identity.
func (ca *CA) SignCSR(csrDER []byte, id spiffeid.ID, ttl time.Duration) ([]*x509.Certificate, error) {
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	return ca.SignPublicKey(csr.PublicKey, id, ttl)
}

// Issue makes a fresh P-256 key and an SVID for id: for in-process workloads
// (the gateway in one-process mode, tests). Agents use SignCSR so keys never
// leave the node.
func (ca *CA) Issue(id spiffeid.ID, ttl time.Duration) (*tls.Certificate, error) {
	return ca.IssueWithPolicies(id, ttl, nil)
}

// IssueWithPolicies is Issue for a certificate that also carries the
// certificate policies given (see SignWithPolicies).
func (ca *CA) IssueWithPolicies(id spiffeid.ID, ttl time.Duration, policies []x509.OID) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: generate key: %w", err)
	}
	chain, err := ca.SignWithPolicies(key.Public(), id, ttl, policies)
	if err != nil {
		return nil, err
	}
	return TLSCertificate(chain, key), nil
}

// TLSCertificate assembles a tls.Certificate from a chain and its key.
func TLSCertificate(chain []*x509.Certificate, key crypto.Signer) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

func publicKeyMatches(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
}
