package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/store"
)

// InitConfig configures Init.
type InitConfig struct {
	TrustDomain string
	// SVIDTTL is the default SVID lifetime; zero means 1h.
	SVIDTTL time.Duration
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
	adminCert, err := authority.Issue(adminID, c.AdminTTL)
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
	meta := Meta{TrustDomain: td.Name(), SVIDTTL: c.SVIDTTL, Created: c.Now().UTC()}
	ops := []store.Op{
		store.Put(keyCA, caBytes),
		store.Put(keyBundle, mustJSON(api.DERs(authority.Bundle().X509Authorities()))),
		store.Put(prefixAdmin+c.AdminName, mustJSON(adminRecord{Role: api.RoleAdmin, Cert: issuedAdminCert(chain, authority.Bundle().X509Authorities())})),
		store.Put(keyMeta, mustJSON(meta)),
	}
	if err := os.MkdirAll(c.AdminDir, 0o700); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := api.WriteCredentials(c.AdminDir, adminCert, authority.Bundle().X509Authorities()); err != nil {
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
	return pinAuditKey(ctx, st, c.AdminDir)
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
	if err := os.WriteFile(filepath.Join(adminDir, api.AuditKeyFile), []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}
