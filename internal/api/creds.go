package api

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/seal"
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
		if err := seal.WriteFileAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("api: %w", err)
		}
	}
	return nil
}

// LoadCredentials reads what WriteCredentials wrote.
// A key file that others may read is refused (seal.CheckPrivateMode).
func LoadCredentials(dir string) (*tls.Certificate, []*x509.Certificate, error) {
	keyPEM, err := readPrivate(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("api: credentials: %w", err)
	}
	chain, err := ReadCertFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, nil, err
	}
	roots, err := ReadCertFile(filepath.Join(dir, BundleFile))
	if err != nil {
		return nil, nil, err
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

// readPrivate reads a file holding a private key, refusing one that
// group or others may access.
func readPrivate(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := seal.CheckPrivateMode(path, fi); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// ReadCertFile reads the PEM certificates of a credentials file (a chain or
// a bundle); blocks of other types are passed over, and a file without a
// certificate is an error. Errors name the file.
func ReadCertFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("api: credentials: %w", err)
	}
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
			return nil, fmt.Errorf("api: %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("api: %s: no certificates", path)
	}
	return out, nil
}

// NewClientFromDir returns a client of the server at addr that presents the
// credentials in dir (as WriteCredentials wrote them) and trusts the bundle
// stored beside them.
func NewClientFromDir(addr, dir string) (*Client, error) {
	a, err := NewAdminClient(addr, dir)
	if err != nil {
		return nil, err
	}
	return a.Client, nil
}

// AdminClient is a client of the control plane that presents an
// administrator's credentials directory. It keeps the directory's trust
// bundle in step with the server's (SyncTrust) and renews the certificate
// (Renew), so that neither a root rotation nor the certificate's age locks
// the administrator out.
//
// It also holds the administrator's MFA session (see NewAdminSession).
type AdminClient struct {
	*Client
	addr  string
	dir   string
	trust *identity.Trust
	td    spiffeid.TrustDomain
	id    string
	cfg   SessionConfig

	mu        sync.Mutex       // guards cert, session, presented and gen
	cert      *tls.Certificate // the enrolment credential
	session   *tls.Certificate // the MFA session certificate, if any
	presented *tls.Certificate // what new connections were last given
	gen       uint64           // counts changes of session

	loginMu sync.Mutex // one code asked for at a time
}

// NewAdminClient returns a client of the server at addr with the
// credentials in dir; a call that needs a fresh MFA proof fails with
// ErrMFARequired unless an MFA session is stored there.
func NewAdminClient(addr, dir string) (*AdminClient, error) {
	return NewAdminSession(addr, dir, SessionConfig{})
}

// certificate is the enrolment credential.
func (a *AdminClient) certificate() (*tls.Certificate, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cert, nil
}

// Leaf returns the administrator's current certificate.
func (a *AdminClient) Leaf() *x509.Certificate {
	c, _ := a.certificate()
	return c.Leaf
}

// SyncTrust fetches the server's trust bundle over a connection the pinned
// bundle authenticates and, when it changed, pins the new one in the
// directory: a root published by a rotation's prepare step is trusted before
// it signs the server's certificate, as agents trust it from their watch
// stream. It reports whether the certificate is due for renewal: it chains
// to a root that no longer signs new certificates, or it is past two thirds
// of its life at now.
func (a *AdminClient) SyncTrust(ctx context.Context, now time.Time) (due bool, err error) {
	var resp CertResponse
	if err := a.Call(ctx, http.MethodGet, PathBundle, nil, &resp); err != nil {
		return false, err
	}
	if resp.TrustDomain != a.td.Name() {
		return false, fmt.Errorf("api: the server answers for trust domain %q, not %q", resp.TrustDomain, a.td.Name())
	}
	if err := a.pin(resp.Bundle); err != nil {
		return false, err
	}
	leaf := a.Leaf()
	c, _ := a.certificate()
	onSigning := false
	if len(c.Certificate) > 1 {
		if inter, err := x509.ParseCertificate(c.Certificate[1]); err == nil {
			for _, r := range a.trust.Bundle().X509Authorities() {
				if Pin(r) == resp.Signing && inter.CheckSignatureFrom(r) == nil {
					onSigning = true
				}
			}
		}
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return !onSigning || now.After(leaf.NotBefore.Add(life*2/3)), nil
}

// pin replaces the trusted roots with ders, in memory and in the
// directory, when they differ from the pinned ones.
func (a *AdminClient) pin(ders [][]byte) error {
	roots, err := ParseChain(ders)
	if err != nil {
		return fmt.Errorf("api: bundle: %w", err)
	}
	have := a.trust.Bundle().X509Authorities()
	same := len(have) == len(roots)
	for i := 0; same && i < len(roots); i++ {
		same = have[i].Equal(roots[i])
	}
	if same {
		return nil
	}
	var b []byte
	for _, r := range roots {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	if err := seal.WriteFileAtomic(filepath.Join(a.dir, BundleFile), b, 0o600); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	a.trust.Update(x509bundle.FromX509Authorities(a.td, roots), identity.Revocations{})
	return nil
}

// Renew asks the server for a new certificate over the same key, valid for
// ttl (zero: as long as the current one), and writes it and the bundle
// that came with it to the directory. The key file is not touched, so the
// directory never holds a certificate and a key that do not match.
func (a *AdminClient) Renew(ctx context.Context, ttl time.Duration) (*x509.Certificate, error) {
	cur, _ := a.certificate()
	if ttl == 0 {
		ttl = cur.Leaf.NotAfter.Sub(cur.Leaf.NotBefore).Round(time.Hour)
	}
	key, ok := cur.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("api: the admin key cannot sign")
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("api: csr: %w", err)
	}
	// The server renews the enrolment certificate only when it is the one
	// presented, never an MFA session certificate.
	enrolled := NewClient(a.addr, ClientTLS(func() (*tls.Certificate, error) { return cur, nil }, a.trust))
	defer enrolled.Close()
	var resp CertResponse
	if err := enrolled.Call(ctx, http.MethodPost, PathAdminRenew, AdminRenewRequest{TTL: ttl, CSR: csr}, &resp); err != nil {
		return nil, err
	}
	chain, err := ParseChain(resp.Chain)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("api: the server signed a different key")
	}
	if id, err := identity.LeafID(chain[0]); err != nil || id != mustLeafID(cur.Leaf) {
		return nil, fmt.Errorf("api: the renewed certificate names another identity")
	}
	if err := a.pin(resp.Bundle); err != nil {
		return nil, err
	}
	if _, err := a.trust.Verify(chain); err != nil {
		return nil, fmt.Errorf("api: the renewed certificate does not verify: %w", err)
	}
	var b []byte
	for _, c := range chain {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := seal.WriteFileAtomic(filepath.Join(a.dir, CertFile), b, 0o600); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	a.mu.Lock()
	a.cert = ca.TLSCertificate(chain, key)
	a.mu.Unlock()
	a.Client.NewConnections() // which present the new certificate
	return chain[0], nil
}

func mustLeafID(c *x509.Certificate) spiffeid.ID {
	id, _ := identity.LeafID(c)
	return id
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ea, ok := a.(equaler)
	return ok && ea.Equal(b)
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
	if !publicKeyEqual(chain[0].PublicKey, key.Public()) {
		return nil, errors.New("api: the key does not match the certificate")
	}
	return ca.TLSCertificate(chain, key), nil
}
