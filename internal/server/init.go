package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/seal"
	"moat/internal/store"
)

// InitConfig configures Init.
type InitConfig struct {
	TrustDomain string
	// SVIDTTL is the default SVID lifetime; zero means 1h.
	SVIDTTL time.Duration
	// NodeTTL is the node certificates' life; zero means ca.DefaultNodeTTL.
	// It must be at least SVIDTTL.
	NodeTTL time.Duration
	// AdminDir receives the admin credentials (api.CertFile, api.KeyFile,
	// api.BundleFile; mode 0600); required.
	AdminDir string
	// AdminName names the first admin (spiffe://<td>/admin/<name>); empty
	// means "admin".
	AdminName string
	// AdminTTL is the admin certificate's life; zero means 30 days.
	AdminTTL time.Duration
	Sealer   ca.KeySealer
	Now      func() time.Time
}

// ErrInitialized means Init found an existing control plane.
var ErrInitialized = errors.New("server: the store already holds a control plane")

// Init creates a control plane in st: the CA, the meta record, the first
// admin with the admin role, and the admin credentials in AdminDir.
func Init(ctx context.Context, st store.Store, c InitConfig) error {
	td, err := identity.ParseTrustDomain(c.TrustDomain)
	if err != nil {
		return fmt.Errorf("server: trust_domain: %w", err)
	}
	if c.AdminDir == "" {
		return errors.New("server: no admin directory")
	}
	if c.AdminName == "" {
		c.AdminName = "admin"
	}
	if c.AdminTTL == 0 {
		c.AdminTTL = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SVIDTTL == 0 {
		c.SVIDTTL = ca.DefaultSVIDTTL
	}
	if c.NodeTTL == 0 {
		c.NodeTTL = max(ca.DefaultNodeTTL, c.SVIDTTL)
	}
	if c.NodeTTL < c.SVIDTTL || c.NodeTTL > ca.MaxNodeTTL {
		return fmt.Errorf("server: node TTL %s must be at least the SVID TTL (%s) and at most %s", c.NodeTTL, c.SVIDTTL, ca.MaxNodeTTL)
	}
	if _, err := st.Get(ctx, keyMeta); err == nil {
		return ErrInitialized
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("server: %w", err)
	}
	authority, err := ca.New(ca.Config{TrustDomain: td, SVIDTTL: c.SVIDTTL, Now: c.Now})
	if err != nil {
		return err
	}
	adminID, err := identity.AdminID(td, c.AdminName)
	if err != nil {
		return fmt.Errorf("server: admin name: %w", err)
	}
	account, err := newID()
	if err != nil {
		return err
	}
	pol, err := identity.AccountPolicy(account)
	if err != nil {
		return err
	}
	adminCert, err := authority.IssueWithPolicies(adminID, c.AdminTTL, []x509.OID{pol})
	if err != nil {
		return err
	}
	chain, err := api.ParseChain(adminCert.Certificate)
	if err != nil {
		return err
	}
	caBytes, err := authority.Marshal(c.Sealer)
	if err != nil {
		return err
	}
	meta := Meta{TrustDomain: td.Name(), SVIDTTL: c.SVIDTTL, NodeTTL: c.NodeTTL, Created: c.Now().UTC()}
	ops := []store.Op{
		store.Put(keyCA, caBytes),
		store.Put(keyBundle, mustJSON(api.DERs(authority.Bundle().X509Authorities()))),
		store.Put(prefixAdmin+c.AdminName, mustJSON(adminRecord{Account: account, Created: c.Now().UTC(), Role: api.RoleAdmin, TTL: c.AdminTTL,
			Cert: issuedAdminCert(chain, authority.Bundle().X509Authorities())})),
		store.Put(keyMeta, mustJSON(meta)),
	}
	if _, err := os.Stat(filepath.Join(c.AdminDir, api.CertFile)); err == nil {
		return fmt.Errorf("server: %s already holds admin credentials: move them away or name another --admin-dir", c.AdminDir)
	}
	// The credentials are staged beside AdminDir and moved into place only
	// once the control plane they authenticate to is stored: a lost race
	// or a failed write leaves no credential for a CA that does not exist.
	parent := filepath.Dir(filepath.Clean(c.AdminDir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(c.AdminDir)+".init-*")
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	defer os.RemoveAll(staging)
	if err := api.WriteCredentials(staging, adminCert, authority.Bundle().X509Authorities()); err != nil {
		return err
	}
	// Meta goes last and only if absent, so a half-made control plane is
	// never mistaken for a whole one.
	if _, err := st.Txn(ctx, []store.Cond{{Key: keyMeta}}, ops); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ErrInitialized
		}
		return fmt.Errorf("server: %w", err)
	}
	// The audit log's verifier key goes beside the credentials; they are
	// placed even if it cannot be written, so init never locks out.
	perr := pinAuditKey(ctx, st, staging)
	if err := placeCredentials(staging, c.AdminDir); err != nil {
		return fmt.Errorf("server: the control plane is created but its admin credentials could not be put in %s (they are in %s): %w", c.AdminDir, staging, err)
	}
	return perr
}

// pinAuditKey makes the audit log's signer key (sealed in the store) and
// writes its verifier key beside the admin credentials, so that the CLI
// checks the log's checkpoints with a key it did not take from the server.
func pinAuditKey(ctx context.Context, st store.Store, adminDir string) error {
	_, v, err := audit.StoreKey(ctx, st, audit.DefaultStoreKey, audit.DefaultKeyName, "")
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	vkey, err := audit.VerifierKey(v)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := seal.WriteFileAtomic(filepath.Join(adminDir, api.AuditKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// placeCredentials moves the staged credential files into dir (created
// 0700 when missing) and makes the moves durable.
func placeCredentials(staging, dir string) error {
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(staging, dir); err != nil {
			return err
		}
		return seal.SyncDir(filepath.Dir(dir))
	}
	ents, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return seal.SyncDir(dir)
}
