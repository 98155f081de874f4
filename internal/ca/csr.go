package ca

import (
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

// ParseCSR parses a PKCS#10 request as SignCSR takes it: signed by its
// own key, an ECDSA one. A caller checks a request with it before
// anything is recorded for it.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("ca: CSR signature: %w", err)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("ca: CSR key must be ECDSA, got %T", csr.PublicKey)
	}
	return csr, nil
}
