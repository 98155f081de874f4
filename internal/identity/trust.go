package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Revocations is the control plane's deny-list. Serials are lowercase hex
// without leading zeros (as SerialHex writes them); IDs are SPIFFE IDs. A
// revoked node ID also revokes every SVID whose URI is that node's.
//
// A serial leaves the list a while after its certificate expired (the
// control plane prunes it), so that the list does not grow for ever. What
// the list no longer says, Pruned does: every serial dropped belonged to a
// certificate that expired no later than Pruned, and a certificate that
// expired by then is refused as revoked, since the list can no longer tell
// whether it was. A live tunnel kept on an SVID that merely expired
// (checked at its NotAfter) is thus cut at the latest when the list drops
// serials that expired after it; a revoked one is never taken for merely
// expired, whatever the clocks and however late the list arrives.
type Revocations struct {
	Version int64    `json:"version"`
	Serials []string `json:"serials,omitempty"`
	IDs     []string `json:"ids,omitempty"`
	// Expires is the NotAfter of the listed serials whose certificate the
	// control plane knew; a serial without one (revoked by number alone,
	// or listed before expiries were kept) is never dropped.
	Expires map[string]time.Time `json:"expires,omitempty"`
	// Pruned is the latest NotAfter of a serial dropped from the list.
	Pruned time.Time `json:"pruned,omitzero"`
}

// SerialHex formats a certificate serial number as Revocations keeps it.
func SerialHex(n *big.Int) string { return strings.ToLower(n.Text(16)) }

// TrustConfig configures a Trust.
type TrustConfig struct {
	TrustDomain spiffeid.TrustDomain
	// Now is the clock used for validity checks; nil means time.Now.
	Now func() time.Time
}

// Trust verifies SVID chains against the current bundle and revocation list.
// An empty Trust (no bundle yet) refuses everything.
type Trust struct {
	td  spiffeid.TrustDomain
	now func() time.Time

	mu      sync.RWMutex // guards the fields below
	bundle  *x509bundle.Bundle
	serials map[string]bool
	ids     map[string]bool
	rev     Revocations
	pruned  time.Time
	changed chan struct{}
}

// NewTrust returns a Trust that refuses everything until Update.
func NewTrust(c TrustConfig) *Trust {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return &Trust{td: c.TrustDomain, now: now, changed: make(chan struct{})}
}

// TrustDomain returns the trust domain this Trust verifies.
func (t *Trust) TrustDomain() spiffeid.TrustDomain { return t.td }

// Now returns the time by this Trust's clock.
func (t *Trust) Now() time.Time { return t.now() }

// Update replaces the bundle and revocation list and wakes every Changed
// waiter. A nil bundle keeps the current one.
func (t *Trust) Update(b *x509bundle.Bundle, r Revocations) {
	serials := make(map[string]bool, len(r.Serials))
	for _, s := range r.Serials {
		serials[strings.ToLower(strings.TrimLeft(s, "0"))] = true
	}
	ids := make(map[string]bool, len(r.IDs))
	for _, id := range r.IDs {
		ids[id] = true
	}
	t.mu.Lock()
	if b != nil {
		t.bundle = b.Clone()
	}
	t.serials, t.ids, t.rev = serials, ids, r
	t.pruned = r.Pruned
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// Changed returns a channel closed at the next Update, so holders of live
// connections can re-check their peers.
func (t *Trust) Changed() <-chan struct{} {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.changed
}

// Bundle returns a copy of the current bundle, or nil before the first Update.
func (t *Trust) Bundle() *x509bundle.Bundle {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.bundle == nil {
		return nil
	}
	return t.bundle.Clone()
}

// Roots returns a pool of the bundle's roots (empty before the first Update).
func (t *Trust) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.bundle != nil {
		for _, c := range t.bundle.X509Authorities() {
			pool.AddCert(c)
		}
	}
	return pool
}

// Revocations returns the current revocation list.
func (t *Trust) Revocations() Revocations {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.rev
}

// Revoked reports whether the SVID leaf is revoked, by serial, by its own
// SPIFFE ID, or (for a service SVID) because its ID is revoked; or whether
// it expired no later than the list's Pruned, when its serial may have
// been dropped from the list.
func (t *Trust) Revoked(leaf *x509.Certificate, id spiffeid.ID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.serials[SerialHex(leaf.SerialNumber)] || t.ids[id.String()] || (!t.pruned.IsZero() && !leaf.NotAfter.After(t.pruned))
}

// Verify checks chain (leaf first, then intermediates) as an X.509-SVID of
// this trust domain, valid now, chaining to a root of the bundle, carrying
// both serverAuth and clientAuth (moat's SVIDs always do), and not revoked.
// It returns the SPIFFE ID, or an error wrapping one of the Err* reasons.
func (t *Trust) Verify(chain []*x509.Certificate) (spiffeid.ID, error) {
	return t.VerifyAt(chain, t.now())
}

// VerifyAt is Verify as of time at, against the bundle and revocations
// held now. The mesh asks it whether a live connection whose SVID expired
// was otherwise still good (at the SVID's last valid instant).
func (t *Trust) VerifyAt(chain []*x509.Certificate, at time.Time) (spiffeid.ID, error) {
	if len(chain) == 0 {
		return spiffeid.ID{}, ErrNoCertificate
	}
	leaf := chain[0]
	id, err := LeafID(leaf)
	if err != nil {
		return spiffeid.ID{}, err
	}
	if !id.MemberOf(t.td) {
		return id, fmt.Errorf("%w: %q is not in %q", ErrWrongTrustDomain, id, t.td.Name())
	}
	if err := CheckLeaf(leaf); err != nil {
		return id, err
	}
	now := at
	for _, c := range chain {
		if err := CheckValidity(c, now); err != nil {
			return id, err
		}
	}
	roots := t.Roots()
	t.mu.RLock()
	empty := t.bundle == nil
	t.mu.RUnlock()
	if empty {
		return id, ErrNoBundle
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return id, fmt.Errorf("%w", ErrUnknownAuthority)
		}
		return id, fmt.Errorf("%w: %v", ErrUnknownAuthority, err)
	}
	if t.Revoked(leaf, id) {
		return id, fmt.Errorf("%w: %q (serial %s)", ErrRevoked, id, SerialHex(leaf.SerialNumber))
	}
	return id, nil
}

// LeafID returns the SPIFFE ID of an SVID leaf: its one and only URI SAN.
func LeafID(leaf *x509.Certificate) (spiffeid.ID, error) {
	if len(leaf.URIs) != 1 {
		return spiffeid.ID{}, fmt.Errorf("%w: %d URI SANs, want exactly one", ErrNotSVID, len(leaf.URIs))
	}
	id, err := spiffeid.FromURI(leaf.URIs[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("%w: %v", ErrNotSVID, err)
	}
	return id, nil
}

// CheckValidity reports whether c is within its validity period at now.
func CheckValidity(c *x509.Certificate, now time.Time) error {
	if now.Before(c.NotBefore) {
		return fmt.Errorf("%w: %q valid from %s", ErrNotYetValid, c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return fmt.Errorf("%w: %q expired at %s", ErrExpired, c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckLeaf applies the X509-SVID rules for leaves (not a CA, cannot sign
// certificates, digitalSignature, serverAuth and clientAuth).
func CheckLeaf(leaf *x509.Certificate) error {
	if leaf.IsCA {
		return ErrLeafIsCA
	}
	if leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		return ErrLeafCanSign
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return fmt.Errorf("%w: digitalSignature", ErrMissingUsage)
	}
	for _, want := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if !slices.Contains(leaf.ExtKeyUsage, want) {
			name := map[x509.ExtKeyUsage]string{x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth"}[want]
			return fmt.Errorf("%w: %s", ErrMissingUsage, name)
		}
	}
	return nil
}
