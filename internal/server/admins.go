package server

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// defaultAdminTTL is an admin certificate's life when the request names none.
const defaultAdminTTL = 30 * 24 * time.Hour

// handleAdminCreate signs an admin certificate for a new administrator over
// the CSR they made (their key never leaves their machine) and records their
// role. Only an admin may make admins.
func (s *Server) handleAdminCreate(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.AdminRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	id, err := identity.AdminID(s.td, req.Name)
	if err != nil {
		return nil, req.Name, errorf(http.StatusBadRequest, "name: %v", err)
	}
	if api.RoleRank(req.Role) == 0 {
		return nil, id.String(), errorf(http.StatusBadRequest, "role %q: want viewer, operator or admin", req.Role)
	}
	// A credential made here outlives the caller's MFA session: were any
	// live session enough, a copy of an administrator's files taken while
	// it lasts would make an account of its own and keep the access.
	if s.mfa.Requires(c.Role, "admin.create") {
		if err := s.factorChangeProof(ctx, c, "making an administrator's credential",
			"making an administrator's credential needs a fresh MFA proof"); err != nil {
			return nil, id.String(), err
		}
	}
	var cur adminRecord
	switch err := getJSON(ctx, s.st, prefixAdmin+req.Name, &cur); {
	case err == nil && !req.Replace:
		return nil, id.String(), errorf(http.StatusConflict, "admin %q exists (role %s): --replace issues a new credential for that account", req.Name, cur.Role)
	case err == nil:
		c.note("replaced", "role "+cur.Role)
	case !errors.Is(err, store.ErrNotFound):
		return nil, id.String(), err
	}
	resp, err := s.signAdmin(ctx, req.Name, req.Role, req.CSR, req.TTL, c, nil)
	if err != nil {
		return nil, id.String(), err
	}
	c.note("role", req.Role)
	return resp, id.String(), nil
}

// handleAdminRenew signs a new certificate for the calling administrator,
// with the role they hold: what keeps an administrator's access across a
// root rotation and past their certificate's end, without anyone else.
func (s *Server) handleAdminRenew(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.AdminRenewRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	// A session certificate lives minutes on purpose: renewing it would
	// turn whoever holds it into a holder of the enrolment credential.
	if m, err := identity.ReadAdminMarks(c.Leaf); err != nil || m.MFA != "" {
		return nil, c.ID, errorf(http.StatusForbidden, "an MFA session certificate is not renewed: renew with the enrolment certificate")
	}
	resp, err := s.signAdmin(ctx, c.Name, c.Role, req.CSR, req.TTL, nil, c)
	if err != nil {
		return nil, c.ID, err
	}
	return resp, c.ID, nil
}

// signAdmin signs csr for the admin name with role, and records both the
// role and the certificate; creator is the creating administrator, nil
// for a renewal, which keeps the account's creator. renewing is the
// caller of a renewal, nil otherwise.
//
// A name without an account gets a new one (a new adminRecord.Account); a
// --replace and a renewal keep the account's, and give one to an account
// made before accounts carried an ID (adopting it). The record is written
// only if it did not change since it was read: a renewal under way when
// its account is removed, or removed and made again, makes no account.
func (s *Server) signAdmin(ctx context.Context, name, role string, csr []byte, ttl time.Duration, creator, renewing *caller) (api.CertResponse, error) {
	id, err := identity.AdminID(s.td, name)
	if err != nil {
		return api.CertResponse{}, errorf(http.StatusBadRequest, "name: %v", err)
	}
	req, err := parseCSR(csr)
	if err != nil {
		return api.CertResponse{}, err
	}
	var cur adminRecord
	rev, err := getJSONRev(ctx, s.st, prefixAdmin+name, &cur)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return api.CertResponse{}, err
	}
	exists := err == nil
	rec := adminRecord{Role: role, CreatedBy: cur.CreatedBy, MadeBy: cur.MadeBy, TTL: ttl}
	if renewing != nil {
		rec.TTL = grantedTTL(cur, renewing.Leaf)
		switch {
		case ttl == 0:
			ttl = rec.TTL
		case ttl > rec.TTL:
			return api.CertResponse{}, errorf(http.StatusBadRequest,
				"ttl %s is longer than the %s account %s was granted: an admin grants more with \"moat admin create --replace --ttl\"", ttl, rec.TTL, name)
		}
	}
	if ttl == 0 {
		ttl = defaultAdminTTL
		rec.TTL = ttl
	}
	if creator != nil {
		if rec.CreatedBy, rec.MadeBy, err = s.lineage(ctx, creator); err != nil {
			return api.CertResponse{}, err
		}
	}
	switch {
	case renewing != nil && (!exists || cur.Account != renewing.Account):
		return api.CertResponse{}, errorf(http.StatusConflict, "admin %q's account was removed meanwhile: nothing was renewed", name)
	case exists && cur.Account != "":
		rec.Account, rec.Created, rec.Adopted = cur.Account, cur.Created, cur.Adopted
	case exists:
		rec.Adopted = true
		rec.Account, err = newID()
	default:
		rec.Created = s.now().UTC()
		rec.Account, err = newID()
	}
	if err != nil {
		return api.CertResponse{}, err
	}
	pol, err := identity.AccountPolicy(rec.Account)
	if err != nil {
		return api.CertResponse{}, err
	}
	a := s.CA()
	chain, err := a.SignWithPolicies(req.PublicKey, id, ttl, []x509.OID{pol})
	if err != nil {
		return api.CertResponse{}, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	rec.Cert = issuedAdminCert(chain, a.Bundle().X509Authorities())
	rec.Earlier = earlierCerts(cur, s.now())
	if err := s.putRev(ctx, prefixAdmin+name, rev, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return api.CertResponse{}, errorf(http.StatusConflict, "admin %q's account changed meanwhile: nothing was issued; try again", name)
		}
		return api.CertResponse{}, err
	}
	s.m.issued.WithLabelValues("admin").Inc()
	if creator != nil {
		creator.note(audit.DetailTargetAccount, rec.Account)
	}
	roots := a.Bundle().X509Authorities()
	return api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(roots), TrustDomain: s.td.Name(), Signing: rec.Cert.Root}, nil
}

// grantedTTL is the certificate life rec's account was last granted, which
// its renewals keep and may not exceed: rec.TTL, or for an account recorded
// before grants were, the life of the certificate it renews with, to the
// hour (as "moat admin renew" asks by default).
func grantedTTL(rec adminRecord, leaf *x509.Certificate) time.Duration {
	if rec.TTL > 0 {
		return rec.TTL
	}
	return leaf.NotAfter.Sub(leaf.NotBefore).Round(time.Hour)
}

// lineage is what an account creator makes records of its making: the
// creator's SPIFFE ID (adminRecord.CreatedBy) and the accounts that made
// it, the creator's own first (MadeBy).
func (s *Server) lineage(ctx context.Context, creator *caller) (string, []string, error) {
	var rec adminRecord
	if err := getJSON(ctx, s.st, prefixAdmin+creator.Name, &rec); err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", nil, err
	}
	var made []string
	if creator.Account != "" {
		made = append(made, creator.Account)
	}
	made = append(made, rec.MadeBy...)
	return creator.ID, made[:min(len(made), maxMadeBy)], nil
}

// madeBy says whether the administrator name's account was made by the
// creator (SPIFFE ID creator, account ID account), directly or through
// accounts creator made: by the accounts its record says made it, or,
// for a chain recorded before accounts carried an ID, by the names of
// the creators read now. It errs towards yes: it keeps approvers apart
// from requesters, and a later account of a creator's name may be the
// same person.
func (s *Server) madeBy(ctx context.Context, name, creator, account string) (bool, error) {
	seen := map[string]bool{}
	for !seen[name] {
		seen[name] = true
		var rec adminRecord
		if err := getJSON(ctx, s.st, prefixAdmin+name, &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return false, nil
			}
			return false, err
		}
		if account != "" && slices.Contains(rec.MadeBy, account) {
			return true, nil
		}
		if rec.CreatedBy == "" {
			return false, nil
		}
		if rec.CreatedBy == creator {
			return true, nil
		}
		id, err := spiffeid.FromString(rec.CreatedBy)
		if err != nil {
			return false, nil
		}
		kind, by, ok := identity.Parse(id)
		if !ok || kind != identity.KindAdmin {
			return false, nil
		}
		name = by
	}
	return false, nil
}

// issuedAdminCert describes chain (leaf, intermediate) for the admin record:
// its serial, end, and the pin of the root among roots that signed its
// intermediate.
func issuedAdminCert(chain []*x509.Certificate, roots []*x509.Certificate) *adminCert {
	out := &adminCert{Serial: identity.SerialHex(chain[0].SerialNumber), NotAfter: chain[0].NotAfter}
	if len(chain) > 1 {
		for _, root := range roots {
			if chain[1].CheckSignatureFrom(root) == nil {
				out.Root = api.Pin(root)
			}
		}
	}
	return out
}

// adminsOnRoot lists the administrators whose latest certificate chains to
// the root pinned as root and is still valid at now (or is not known: a
// record from before certificates were recorded counts, since whether it
// depends on the root cannot be told).
func (s *Server) adminsOnRoot(ctx context.Context, root string, now time.Time) ([]string, error) {
	kvs, _, err := s.st.List(ctx, prefixAdmin)
	if err != nil {
		return nil, err
	}
	rev := s.trust.Revocations()
	var out []string
	for _, kv := range kvs {
		var rec adminRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		name := strings.TrimPrefix(kv.Key, prefixAdmin)
		id, err := identity.AdminID(s.td, name)
		if err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		revoked := slices.Contains(rev.IDs, id.String()) || rec.Cert != nil && slices.Contains(rev.Serials, rec.Cert.Serial)
		switch {
		case revoked:
		case rec.Cert == nil:
			out = append(out, name+" (certificate not recorded)")
		case rec.Cert.Root == root && now.Before(rec.Cert.NotAfter):
			out = append(out, fmt.Sprintf("%s (until %s)", name, rec.Cert.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	sort.Strings(out)
	return out, nil
}
