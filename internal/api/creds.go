package api

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"moat/internal/ca"
	"moat/internal/identity"
)

// Credential file names inside a credentials directory (the admin directory
// that "moat server init" writes, or an agent's data directory).
const (
	CertFile   = "cert.pem"   // chain, leaf first
	KeyFile    = "key.pem"    // PKCS#8 private key, mode 0600
	BundleFile = "bundle.pem" // trust bundle roots
	// AuditKeyFile is the audit log's verifier key, pinned beside the
	// credentials; AuditCheckpointFile the newest checkpoint of the log
	// that this holder checked (it witnesses the log).
	AuditKeyFile        = "audit.pub"
	AuditCheckpointFile = "audit.checkpoint"
)

// WriteCredentials writes cert's chain, its private key and the bundle roots
// into dir, each file mode 0600, each replaced atomically.
func WriteCredentials(dir string, cert *tls.Certificate, roots []*x509.Certificate) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	var chain, bundle []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	for _, r := range roots {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("api: encode key: %w", err)
	}
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for name, b := range map[string][]byte{KeyFile: key, CertFile: chain, BundleFile: bundle} {
		if err := writeFile0600(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

// LoadCredentials reads what WriteCredentials wrote.
func LoadCredentials(dir string) (*tls.Certificate, []*x509.Certificate, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("api: credentials: %w", err)
	}
	chainPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, nil, fmt.Errorf("api: credentials: %w", err)
	}
	bundlePEM, err := os.ReadFile(filepath.Join(dir, BundleFile))
	if err != nil {
		return nil, nil, fmt.Errorf("api: credentials: %w", err)
	}
	chain, err := parsePEMCerts(chainPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %s: %w", filepath.Join(dir, CertFile), err)
	}
	roots, err := parsePEMCerts(bundlePEM)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %s: %w", filepath.Join(dir, BundleFile), err)
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, nil, fmt.Errorf("api: %s: no PEM block", filepath.Join(dir, KeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("api: %s: %w", filepath.Join(dir, KeyFile), err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("api: %s: key cannot sign", filepath.Join(dir, KeyFile))
	}
	return ca.TLSCertificate(chain, signer), roots, nil
}

func parsePEMCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificates")
	}
	return out, nil
}

func writeFile0600(name string, b []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// NewClientFromDir returns a client of the server at addr that presents the
// credentials in dir (as WriteCredentials wrote them) and trusts the bundle
// stored beside them.
func NewClientFromDir(addr, dir string) (*Client, error) {
	cert, roots, err := LoadCredentials(dir)
	if err != nil {
		return nil, err
	}
	id, err := identity.LeafID(cert.Leaf)
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", dir, err)
	}
	trust := identity.NewTrust(identity.TrustConfig{TrustDomain: id.TrustDomain()})
	trust.Update(x509bundle.FromX509Authorities(id.TrustDomain(), roots), identity.Revocations{})
	return NewClient(addr, ClientTLS(func() (*tls.Certificate, error) { return cert, nil }, trust)), nil
}

// EncodeCertKey is cert's chain and private key in one PEM file
// (CERTIFICATE blocks, leaf first, then a PRIVATE KEY block): how
// short-lived credentials (MFA sessions, grants) are kept.
func EncodeCertKey(cert *tls.Certificate) ([]byte, error) {
	var b []byte
	for _, der := range cert.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("api: encode key: %w", err)
	}
	return append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})...), nil
}

// ParseCertKey reads what EncodeCertKey wrote, checking that the key is
// the leaf's.
func ParseCertKey(b []byte) (*tls.Certificate, error) {
	var chain []*x509.Certificate
	var key crypto.Signer
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("api: %w", err)
			}
			chain = append(chain, c)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("api: %w", err)
			}
			signer, ok := k.(crypto.Signer)
			if !ok {
				return nil, errors.New("api: the key cannot sign")
			}
			key = signer
		}
	}
	if len(chain) == 0 || key == nil {
		return nil, errors.New("api: want certificates and a private key")
	}
	if !publicKeyMatch(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("api: the key does not match the certificate")
	}
	return ca.TLSCertificate(chain, key), nil
}
