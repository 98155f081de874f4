package agent

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/seal"
)

// SealedKeyFile holds a credential's private key sealed under the agent's
// Sealer, in place of api.KeyFile.
const SealedKeyFile = "key.sealed"

// writeCreds stores credentials in dir. With a Sealer the private key is
// sealed (record name: credName, so a sealed key cannot be moved to
// another identity) and no clear copy is left; the certificates are public and stay PEM.
func (a *Agent) writeCreds(dir string, cert *tls.Certificate, roots []*x509.Certificate) error {
	if a.cfg.Sealer == nil {
		return api.WriteCredentials(dir, cert, roots)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("agent: encode key: %w", err)
	}
	err = seal.WriteSealedFile(filepath.Join(dir, SealedKeyFile), a.cfg.Sealer, a.credName(dir), keyDER)
	clear(keyDER)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	var chain, bundle []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	for _, r := range roots {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	for name, b := range map[string][]byte{api.CertFile: chain, api.BundleFile: bundle} {
		if err := seal.WriteFileAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	// A clear key left by an agent run without a Sealer goes.
	if err := os.Remove(filepath.Join(dir, api.KeyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// loadCreds reads what writeCreds wrote. With a Sealer, credentials left
// in the clear by an earlier run are read once and sealed in place.
func (a *Agent) loadCreds(dir string) (*tls.Certificate, []*x509.Certificate, error) {
	if a.cfg.Sealer == nil {
		return api.LoadCredentials(dir)
	}
	sealed := filepath.Join(dir, SealedKeyFile)
	if _, err := os.Stat(sealed); errors.Is(err, os.ErrNotExist) {
		cert, roots, err := api.LoadCredentials(dir)
		if err != nil {
			return nil, nil, err
		}
		if err := a.writeCreds(dir, cert, roots); err != nil {
			return nil, nil, err
		}
		return cert, roots, nil
	}
	keyDER, err := seal.ReadSealedFile(sealed, a.cfg.Sealer, a.credName(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	clear(keyDER)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %s: %w", sealed, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("agent: %s: key cannot sign", sealed)
	}
	chain, err := api.ReadCertFile(filepath.Join(dir, api.CertFile))
	if err != nil {
		return nil, nil, err
	}
	roots, err := api.ReadCertFile(filepath.Join(dir, api.BundleFile))
	if err != nil {
		return nil, nil, err
	}
	cert := ca.TLSCertificate(chain, signer)
	return cert, roots, nil
}

// credName is the sealed key's record name: the node and the directory
// under DataDir, so a key does not open for another node sharing the
// keyring or in another credential directory.
func (a *Agent) credName(dir string) string {
	rel, err := filepath.Rel(a.cfg.DataDir, dir)
	if err != nil {
		rel = dir
	}
	return "agent/" + a.cfg.Node + "/" + filepath.ToSlash(rel) + "/key"
}
