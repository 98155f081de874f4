package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"
)

// MaxTLSTTL caps server certificates for internal names.
const MaxTLSTTL = 90 * 24 * time.Hour

// IssueTLS makes a key and a server certificate for internal DNS names and
// IP addresses (the gateway of a test or development fleet, whose clients
// trust moat's bundle). It is not an SVID: it carries no SPIFFE ID, only
// serverAuth, so it can never pass as a workload identity.
func (ca *CA) IssueTLS(dnsNames []string, ips []net.IP, ttl time.Duration) (*tls.Certificate, error) {
	if len(dnsNames)+len(ips) == 0 {
		return nil, errors.New("ca: a TLS certificate needs at least one name or address")
	}
	if ttl <= 0 || ttl > MaxTLSTTL {
		return nil, fmt.Errorf("%w: %s must be positive and at most %s", ErrBadTTL, ttl, MaxTLSTTL)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), ca.rand)
	if err != nil {
		return nil, fmt.Errorf("ca: generate key: %w", err)
	}
	serial, err := ca.serial()
	if err != nil {
		return nil, err
	}
	ca.mu.Lock()
	a := ca.state.Authorities[ca.state.Active]
	ca.mu.Unlock()
	now := ca.now()
	notAfter := now.Add(ttl)
	if notAfter.After(a.Intermediate.NotAfter) {
		notAfter = a.Intermediate.NotAfter
	}
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"moat"}, CommonName: cn},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(ca.rand, tmpl, a.Intermediate, key.Public(), a.InterKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse TLS certificate: %w", err)
	}
	// Check what was signed as a TLS client will.
	roots := x509.NewCertPool()
	roots.AddCert(a.Root)
	inter := x509.NewCertPool()
	inter.AddCert(a.Intermediate)
	name := cn
	if name == "" {
		name = ips[0].String()
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("ca: signed TLS certificate fails verification: %w", err)
	}
	return TLSCertificate([]*x509.Certificate{leaf, a.Intermediate}, key), nil
}
