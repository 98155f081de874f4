package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
)

// NewKeyCSR makes a P-256 key and a certificate request signed by it, the
// form every certificate moat issues to a client starts from (SVIDs, node
// and admin certificates, MFA sessions, grant certificates): the CA takes
// only the key from the request and sets every name itself.
func NewKeyCSR() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: certificate request: %w", err)
	}
	return key, csr, nil
}

// ParseCSR parses a PKCS#10 request as the CA signs it: signed by its own
// key, an ECDSA P-256 one (the key NewKeyCSR makes, and the only one the
// CA certifies). A caller checks a request with it before anything is
// recorded for it.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("ca: CSR signature: %w", err)
	}
	if err := checkKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr, nil
}

// checkKey accepts an ECDSA P-256 public key: a key of another curve
// (P-224's 112 bits; curves no TLS 1.3 peer of moat's is meant to meet)
// or type is never certified.
func checkKey(pub crypto.PublicKey) error {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: want an ECDSA P-256 key, got %T", ErrBadKey, pub)
	}
	if k.Curve != elliptic.P256() {
		return fmt.Errorf("%w: want an ECDSA P-256 key, got curve %s", ErrBadKey, k.Curve.Params().Name)
	}
	return nil
}
