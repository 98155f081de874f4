package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/seal"
)

// The node's long-term attestation key, beside its certificate in
// DataDir/node: sealed under the agent's keyring when it has one, PEM
// (mode 0600) otherwise. The server pins its public half at join; with
// it the node re-attests by itself once its certificate has expired.
const (
	attestSealedFile = "attest.sealed"
	attestPEMFile    = "attest.pem"
)

// Re-attestation methods, as logs and the metric name them.
const (
	methodNodeKey   = "node-key"
	methodJoinToken = "join-token"
)

func (a *Agent) attestName() string { return "agent/" + a.cfg.Node + "/node/attest" }

// loadAttestKey reads the node key; nil without error when there is none.
func (a *Agent) loadAttestKey() (*ecdsa.PrivateKey, error) {
	dir := filepath.Join(a.cfg.DataDir, nodeDir)
	var der []byte
	var err error
	if a.sealer != nil {
		der, err = seal.ReadSealedFile(filepath.Join(dir, attestSealedFile), a.sealer, a.attestName())
	} else {
		var b []byte
		if b, err = os.ReadFile(filepath.Join(dir, attestPEMFile)); err == nil {
			blk, _ := pem.Decode(b)
			if blk == nil {
				return nil, fmt.Errorf("agent: %s: no PEM block", filepath.Join(dir, attestPEMFile))
			}
			der = blk.Bytes
		}
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: node key: %w", err)
	}
	k, err := x509.ParseECPrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("agent: node key in %s: %w", dir, err)
	}
	return k, nil
}

// newAttestKey makes and stores a node key, returning its public half as
// the server pins it.
func (a *Agent) newAttestKey() (*ecdsa.PrivateKey, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: node key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: node key: %w", err)
	}
	dir := filepath.Join(a.cfg.DataDir, nodeDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	if a.sealer != nil {
		err = seal.WriteSealedFile(filepath.Join(dir, attestSealedFile), a.sealer, a.attestName(), der)
	} else {
		err = seal.WriteFileAtomic(filepath.Join(dir, attestPEMFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	}
	clear(der)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: node key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("agent: node key: %w", err)
	}
	return k, pub, nil
}

// attestPublic returns the node key's public half, making the key first
// if the node has none (a node that joined before keys were pinned: its
// next renewal pins it).
func (a *Agent) attestPublic() ([]byte, error) {
	a.attestMu.Lock()
	defer a.attestMu.Unlock()
	if a.attestKey == nil {
		k, pub, err := a.newAttestKey()
		if err != nil {
			return nil, err
		}
		a.attestKey = k
		return pub, nil
	}
	return x509.MarshalPKIXPublicKey(a.attestKey.Public())
}

// nodeRefused reports whether a failed node renewal means the control
// plane no longer accepts this node's certificate (rather than that it
// is away): the certificate has expired by the agent's clock, or the
// server answers anonymously but refused the certificate.
func (a *Agent) nodeRefused(ctx context.Context, renewErr error) (string, bool) {
	node, _ := a.nodeCertificate()
	if !a.cfg.Now().Before(node.Leaf.NotAfter) {
		return "the node certificate expired at " + node.Leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"), true
	}
	var se *api.StatusError
	if errors.As(renewErr, &se) && se.Code != http.StatusUnauthorized {
		return "", false // the server read the certificate and answered
	}
	anon := api.NewClient(a.cfg.Server, api.ClientTLS(nil, a.trust))
	defer anon.Close()
	if err := anon.Call(ctx, http.MethodGet, api.PathBundle, nil, nil); err != nil {
		return "", false // the server is away, not refusing
	}
	return "the control plane refuses the node certificate", true
}

// reattest gets a new node certificate without the old one: by proof of
// the pinned node key, else with the --join token if one was given.
func (a *Agent) reattest(ctx context.Context, reason string) error {
	a.attestMu.Lock()
	key := a.attestKey
	a.attestMu.Unlock()
	var errs []error
	if key != nil {
		err := a.reattestWithKey(ctx, key)
		if err == nil {
			a.reattested(methodNodeKey, reason)
			return nil
		}
		errs = append(errs, fmt.Errorf("with the node key: %w", err))
	} else {
		errs = append(errs, errors.New("no node key is pinned"))
	}
	if a.cfg.Join != "" {
		err := a.join(ctx)
		if err == nil {
			a.renewClient()
			a.reattested(methodJoinToken, reason)
			return nil
		}
		errs = append(errs, fmt.Errorf("with the --join token: %w", err))
	} else {
		errs = append(errs, errors.New("no --join token was given"))
	}
	return fmt.Errorf("agent: %s, and re-attestation failed: %w", reason, errors.Join(errs...))
}

func (a *Agent) reattested(method, reason string) {
	if method == methodNodeKey {
		a.reattestKey.Add(1)
	} else {
		a.reattestToken.Add(1)
	}
	node, _ := a.nodeCertificate()
	a.log.Warn("node re-attested without its certificate", "method", method, "reason", reason, "expires", node.Leaf.NotAfter)
}

func (a *Agent) reattestWithKey(ctx context.Context, key *ecdsa.PrivateKey) error {
	csrKey, csr, err := ca.NewKeyCSR()
	if err != nil {
		return err
	}
	req := api.ReattestRequest{Node: a.cfg.Node, MeshAddr: a.cfg.MeshAddr, CSR: csr, Time: a.cfg.Now().UTC()}
	sum := sha256.Sum256(api.ReattestPayload(a.td.Name(), req))
	if req.Signature, err = ecdsa.SignASN1(rand.Reader, key, sum[:]); err != nil {
		return fmt.Errorf("agent: sign re-attestation: %w", err)
	}
	anon := api.NewClient(a.cfg.Server, api.ClientTLS(nil, a.trust))
	defer anon.Close()
	var resp api.CertResponse
	if err := anon.Call(ctx, http.MethodPost, api.PathReattest, req, &resp); err != nil {
		return err
	}
	cert, roots, err := a.certFrom(resp, csrKey)
	if err != nil {
		return err
	}
	if want, _ := identity.NodeID(a.td, a.cfg.Node); mustID(cert.Leaf) != want {
		return fmt.Errorf("agent: asked for node %q, got %q", a.cfg.Node, mustID(cert.Leaf))
	}
	if err := a.writeCreds(filepath.Join(a.cfg.DataDir, nodeDir), cert, roots); err != nil {
		return err
	}
	if err := a.adopt(cert, roots); err != nil {
		return err
	}
	a.trust.Update(x509bundle.FromX509Authorities(a.td, roots), a.trust.Revocations())
	a.renewClient()
	return nil
}

// NodeExpiry is when the node certificate held now expires.
func (a *Agent) NodeExpiry() time.Time {
	node, _ := a.nodeCertificate()
	return node.Leaf.NotAfter
}

// Reattestations counts the node certificates obtained without the old
// one, by method: the pinned node key, or the --join token.
func (a *Agent) Reattestations() (nodeKey, joinToken int64) {
	return a.reattestKey.Load(), a.reattestToken.Load()
}
