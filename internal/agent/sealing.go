package agent

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

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
	if a.sealer == nil {
		return api.WriteCredentials(dir, cert, roots)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("agent: encode key: %w", err)
	}
	err = seal.WriteSealedFile(filepath.Join(dir, SealedKeyFile), a.sealer, a.credName(dir), keyDER)
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
	if a.sealer == nil {
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
	keyDER, err := seal.ReadSealedFile(sealed, a.sealer, a.credName(dir))
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

// rotateKeys rotates the primary data key of the agent's keyring when it
// is due, as a server rotates its own (seal.Scheduler): seal.DefaultRotation
// old, or once this process has sealed seal.DefaultMaxEncryptions records
// under it. Every spooled flow record is sealed on its own (AES-GCM, a
// random 96-bit nonce each), so a busy node would otherwise take one key
// towards the bound on such encryptions: at 2,000 records a second, 2^32
// in 25 days. The earlier keys stay in the keyring and open what they
// sealed; what the agent rewrites (SVID keys, the node key at each
// renewal) moves to the new primary as it is rewritten, and spooled
// records leave the spool once sent. A rotation is logged: an agent
// keeps no audit log of its own.
func (a *Agent) rotateKeys(ctx context.Context) error {
	if a.cfg.Keyring == nil || a.cfg.SharedKeyring {
		return nil
	}
	sch := &seal.Scheduler{Keyring: a.cfg.Keyring, Every: seal.DefaultRotation, After: a.cfg.After,
		OnRotate: func(_ context.Context, ev seal.Event) error {
			a.log.Info("data key rotated", "reason", ev.Detail["reason"], "old", ev.Detail["old_primary"],
				"new", ev.Detail["new_primary"], "keys", ev.Detail["keys"], "keyring", ev.Target)
			return nil
		}}
	// A keyring that cannot be written (a full disk) stops no traffic:
	// the agent seals under the key it has, says so, and tries again.
	for {
		err := sch.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		a.log.Error("data key rotation failed; sealing under the current key, trying again in an hour", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-a.cfg.After(time.Hour):
		}
	}
}
