package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
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

// RecoverConfig configures RecoverAdmin.
type RecoverConfig struct {
	// Name names the administrator (spiffe://<td>/admin/<name>); required.
	// An existing administrator of that name gets new credentials.
	Name string
	// Role is viewer, operator or admin; required.
	Role string
	// TTL is the certificate's life; zero means 30 days.
	TTL time.Duration
	// OutDir receives the credentials (api.CertFile, api.KeyFile,
	// api.BundleFile, mode 0600); it must hold none yet. Required.
	OutDir string
	// Sealer opens the CA's keys in the store; required unless the store
	// holds them in the clear (only tests do that).
	Sealer ca.KeySealer
	// Audit records the recovery; required. Nothing is written without it.
	Audit audit.Recorder
	// Actor names who recovered, for the audit entry (e.g. the local
	// user); empty means "local".
	Actor string
	Now   func() time.Time
}

// RecoverAdmin issues an administrator's credentials straight from the CA
// in st, for when no administrator can reach the control plane any more
// (credentials lost, or expired before anyone renewed them). It needs what
// only the server's host holds: the store opened under the key-encryption
// key, and the audit log, which records the recovery before any credential
// is written. The role and the certificate are recorded as "moat admin
// create" records them.
func RecoverAdmin(ctx context.Context, st store.Store, c RecoverConfig) (*x509.Certificate, error) {
	if c.Audit == nil {
		return nil, errors.New("server: recover: no audit log")
	}
	if c.OutDir == "" {
		return nil, errors.New("server: recover: no directory for the credentials")
	}
	if api.RoleRank(c.Role) == 0 {
		return nil, fmt.Errorf("server: recover: role %q: want viewer, operator or admin", c.Role)
	}
	if c.TTL == 0 {
		c.TTL = defaultAdminTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Actor == "" {
		c.Actor = "local"
	}
	if _, err := os.Stat(filepath.Join(c.OutDir, api.CertFile)); err == nil {
		return nil, fmt.Errorf("server: recover: %s already holds credentials; name another directory", c.OutDir)
	}
	var meta Meta
	if err := getJSON(ctx, st, keyMeta, &meta); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errors.New("server: recover: the store holds no control plane")
		}
		return nil, fmt.Errorf("server: recover: %w", err)
	}
	td, err := identity.ParseTrustDomain(meta.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("server: recover: stored meta: %w", err)
	}
	id, err := identity.AdminID(td, c.Name)
	if err != nil {
		return nil, fmt.Errorf("server: recover: name: %w", err)
	}
	kv, err := st.Get(ctx, keyCA)
	if err != nil {
		return nil, fmt.Errorf("server: recover: load CA: %w", err)
	}
	authority, err := ca.Unmarshal(ca.Config{TrustDomain: td, SVIDTTL: meta.SVIDTTL, Now: c.Now}, kv.Value, c.Sealer)
	if err != nil {
		return nil, fmt.Errorf("server: recover: load CA: %w", err)
	}
	prev, prevErr := st.Get(ctx, prefixAdmin+c.Name)
	var cur adminRecord
	if prevErr == nil {
		if err := json.Unmarshal(prev.Value, &cur); err != nil {
			return nil, fmt.Errorf("server: recover: stored %q: %w", prefixAdmin+c.Name, err)
		}
	}
	// A recovered account is the account of that name, if there is one
	// (as with "admin create --replace"), else a new one.
	rec := adminRecord{Role: c.Role, Account: cur.Account, Created: cur.Created, Adopted: cur.Adopted, TTL: c.TTL}
	switch {
	case prevErr == nil && cur.Account == "":
		rec.Adopted = true
		rec.Account, err = newID()
	case prevErr != nil:
		rec.Created = c.Now().UTC()
		rec.Account, err = newID()
	}
	if err != nil {
		return nil, err
	}
	pol, err := identity.AccountPolicy(rec.Account)
	if err != nil {
		return nil, err
	}
	cert, err := authority.IssueWithPolicies(id, c.TTL, []x509.OID{pol})
	if err != nil {
		return nil, fmt.Errorf("server: recover: %w", err)
	}
	chain, err := api.ParseChain(cert.Certificate)
	if err != nil {
		return nil, err
	}
	roots := authority.Bundle().X509Authorities()
	rec.Cert = issuedAdminCert(chain, roots)
	// The recovered account's earlier certificates stay known, for "moat
	// admin remove".
	rec.Earlier = earlierCerts(cur, c.Now())
	if err := putJSON(ctx, st, prefixAdmin+c.Name, rec); err != nil {
		return nil, fmt.Errorf("server: recover: %w", err)
	}
	entry := audit.Entry{Time: c.Now().UTC(), Actor: c.Actor, Action: "admin.recover", Target: id.String(), Result: "ok",
		Detail: map[string]string{"role": c.Role, "serial": rec.Cert.Serial, audit.DetailTargetAccount: rec.Account}}
	if err := c.Audit.Record(context.WithoutCancel(ctx), entry); err != nil {
		// Unrecorded, so undone: the previous record (or none) stands.
		if prevErr == nil {
			_, _ = st.Put(context.WithoutCancel(ctx), prefixAdmin+c.Name, prev.Value)
		} else {
			_, _ = st.Delete(context.WithoutCancel(ctx), prefixAdmin+c.Name)
		}
		return nil, fmt.Errorf("server: recover: the audit log refused the entry, nothing was issued: %w", err)
	}
	if err := api.WriteCredentials(c.OutDir, cert, roots); err != nil {
		return nil, err
	}
	return chain[0], nil
}

// ApproveConfig configures ApproveEnrolment.
type ApproveConfig struct {
	// Name names the administrator whose first enrolment is approved.
	Name string
	// Audit records the approval; required. Nothing changes without it.
	Audit audit.Recorder
	// Actor names who approved (e.g. the local user); empty means "local".
	Actor string
	Now   func() time.Time
}

// ApproveEnrolment approves an administrator's first MFA enrolment from
// the server's host (the store opened under the key-encryption key), for
// the first administrator of a control plane whose configuration says
// mfa.first_enrolment: approved, who has no other administrator to
// approve it. The approval is recorded in the audit log as "mfa.approve",
// or undone. It returns the administrator's SPIFFE ID.
func ApproveEnrolment(ctx context.Context, st store.Store, c ApproveConfig) (string, error) {
	if c.Audit == nil {
		return "", errors.New("server: approve: no audit log")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Actor == "" {
		c.Actor = "local"
	}
	var meta Meta
	if err := getJSON(ctx, st, keyMeta, &meta); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", errors.New("server: approve: the store holds no control plane")
		}
		return "", fmt.Errorf("server: approve: %w", err)
	}
	td, err := identity.ParseTrustDomain(meta.TrustDomain)
	if err != nil {
		return "", fmt.Errorf("server: approve: stored meta: %w", err)
	}
	id, err := identity.AdminID(td, c.Name)
	if err != nil {
		return "", fmt.Errorf("server: approve: name: %w", err)
	}
	prev, err := st.Get(ctx, prefixMFA+c.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("server: approve: %w", err)
	}
	account, err := approveFirstEnrolment(ctx, st, c.Name, c.Actor)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return "", fmt.Errorf("server: approve: %s", he.msg)
		}
		return "", fmt.Errorf("server: approve: %w", err)
	}
	entry := audit.Entry{Time: c.Now().UTC(), Actor: c.Actor, Action: "mfa.approve", Target: id.String(), Result: "ok",
		Detail: map[string]string{"factor": "totp", "offline": "true"}}
	if account != "" {
		entry.Detail[audit.DetailTargetAccount] = account
	}
	if err := c.Audit.Record(context.WithoutCancel(ctx), entry); err != nil {
		// Unrecorded, so undone.
		_, _ = st.Put(context.WithoutCancel(ctx), prefixMFA+c.Name, prev.Value)
		return "", fmt.Errorf("server: approve: the audit log refused the entry, nothing was approved: %w", err)
	}
	return id.String(), nil
}
