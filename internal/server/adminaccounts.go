package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// Offboarding. "moat admin list" shows every account; "moat admin remove"
// ends one: in one transaction it deletes the account and its second
// factors (ending its MFA sessions on every server), revokes the grants
// of its name that are pending or active (ending their sessions),
// withdraws its approvals of grants still pending, and
// adds every certificate the server issued to it and that has not ended
// (the current one, the ones a renewal or a --replace left behind, the
// MFA session certificates) to the revocation list, so each is refused at
// the handshake by every server and agent. Nobody removes their own
// account, and the last account with role admin stays.
//
// A name removed may be made again ("admin create"): that makes a new
// account, with a new ID (adminRecord.Account), which inherits nothing of
// the earlier one. Every certificate carries its account's ID, and one of
// an earlier account (one the revocation list does not hold: beyond
// maxEarlierCerts, or an access-grant certificate) is refused; grants,
// approvals, sessions and second factors are matched by account ID, so
// the earlier account's recordings, grants and second factors are none of
// the new one's.

// handleAdminList lists the administrators' accounts.
func (s *Server) handleAdminList(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	kvs, _, err := s.st.List(ctx, prefixAdmin)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	out := []api.AdminAccount{}
	for _, kv := range kvs {
		var rec adminRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return nil, "", fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		name := strings.TrimPrefix(kv.Key, prefixAdmin)
		id, err := identity.AdminID(s.td, name)
		if err != nil {
			return nil, "", fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		a := api.AdminAccount{Name: name, ID: id.String(), Role: rec.Role, CreatedBy: rec.CreatedBy, Account: rec.Account, Created: rec.Created}
		if rec.Cert != nil {
			a.Expires = rec.Cert.NotAfter.UTC()
		}
		var m mfaRecord
		if err := getJSON(ctx, s.st, prefixMFA+name, &m); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, "", err
		}
		if !ownsMFA(m, rec.Account, rec.Adopted) {
			m = mfaRecord{} // an earlier account's, none of this one's
		}
		a.MFA = m.TOTP != nil || len(m.Keys) > 0
		a.AwaitingApproval = m.TOTP != nil && m.TOTP.Unapproved
		a.Sessions = len(m.liveSessions(now))
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, "", nil
}

// handleAdminRemove removes an administrator's account (see above).
func (s *Server) handleAdminRemove(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.AdminRemove
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	id, err := identity.AdminID(s.td, req.Name)
	if err != nil {
		return nil, trimForError(req.Name), errorf(http.StatusBadRequest, "name: %v", err)
	}
	target := id.String()
	for attempt := 0; attempt < 10; attempt++ {
		ans, err := s.removeAdmin(ctx, c, req.Name, target)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return ans, target, err
	}
	return nil, target, errorf(http.StatusConflict, "the administrators changed while %q was removed: try again", req.Name)
}

// removeAdmin is one attempt of handleAdminRemove: store.ErrConflict when
// an account, the second factors or the revocation list changed meanwhile.
func (s *Server) removeAdmin(ctx context.Context, c *caller, name, target string) (any, error) {
	kvs, _, err := s.st.List(ctx, prefixAdmin)
	if err != nil {
		return nil, err
	}
	// Every admin-role account is a condition of the transaction: two
	// administrators removing each other at once cannot both succeed.
	var conds []store.Cond
	var rec adminRecord
	found, admins := false, 0
	for _, kv := range kvs {
		var r adminRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		isTarget := strings.TrimPrefix(kv.Key, prefixAdmin) == name
		if r.Role == api.RoleAdmin {
			admins++
		}
		if r.Role == api.RoleAdmin || isTarget {
			conds = append(conds, store.Cond{Key: kv.Key, ModRevision: kv.ModRevision})
		}
		if isTarget {
			rec, found = r, true
		}
	}
	if !found {
		return nil, errorf(http.StatusNotFound, "admin %q does not exist (\"moat admin list\" shows the accounts)", name)
	}
	if rec.Role == api.RoleAdmin && admins <= 1 {
		return nil, errorf(http.StatusConflict, "admin %q is the last account with role admin: create another admin before removing it", name)
	}
	if name == c.Name {
		return nil, errorf(http.StatusForbidden, "an administrator cannot remove their own account: another admin must")
	}
	var m mfaRecord
	mfaRev, err := getJSONRev(ctx, s.st, prefixMFA+name, &m)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	conds = append(conds, store.Cond{Key: prefixMFA + name, ModRevision: mfaRev})
	now := s.now()
	serials := accountSerials(rec, m, now)
	sessions := len(m.liveSessions(now))
	var rev identity.Revocations
	revRev, err := getJSONRev(ctx, s.st, keyRevocations, &rev)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	conds = append(conds, store.Cond{Key: keyRevocations, ModRevision: revRev})
	ops := []store.Op{store.Delete(prefixAdmin + name), store.Delete(prefixMFA + name)}
	if mergeRevocations(&rev, nil, serials) {
		ops = append(ops, store.Put(keyRevocations, mustJSON(rev)))
	}
	// The grants of the name that are pending or active end with the
	// account: its access-grant certificates are not on the revocation
	// list, and agents refuse them once the grant is revoked.
	grants, _, err := s.st.List(ctx, prefixGrant)
	if err != nil {
		return nil, err
	}
	var ended, withdrawn []string
	for _, kv := range grants {
		var g api.Grant
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		st := g.State(now)
		switch {
		case g.Requester == target && (st == api.GrantPending || st == api.GrantActive):
			g.Revoked, g.RevokedBy = now.UTC(), c.ID
			ended = append(ended, g.ID)
		case st == api.GrantPending && slices.ContainsFunc(g.Approvals, func(a api.Approval) bool { return a.By == target }):
			// The account's approvals of grants still pending are
			// withdrawn with it: they no longer count towards the
			// grant's activation.
			g.Approvals = slices.DeleteFunc(g.Approvals, func(a api.Approval) bool { return a.By == target })
			withdrawn = append(withdrawn, g.ID)
		default:
			continue
		}
		conds = append(conds, store.Cond{Key: kv.Key, ModRevision: kv.ModRevision})
		ops = append(ops, store.Put(kv.Key, mustJSON(g)))
	}
	if _, err := s.st.Txn(ctx, conds, ops); err != nil {
		return nil, err
	}
	s.trust.Update(nil, rev)
	for _, id := range ended {
		s.access.cut(id)
	}
	if len(ended) > 0 {
		c.note("grants_revoked", strings.Join(ended, ","))
	}
	if len(withdrawn) > 0 {
		c.note("approvals_withdrawn", strings.Join(withdrawn, ","))
	}
	c.note("role", rec.Role)
	if rec.Account != "" {
		c.note(audit.DetailTargetAccount, rec.Account)
	}
	revoked := slices.Sorted(maps.Keys(serials))
	c.note("serials", strings.Join(revoked, ","))
	c.note("sessions_ended", strconv.Itoa(sessions))
	return api.AdminRemoved{ID: target, Revoked: revoked, SessionsEnded: sessions, GrantsRevoked: ended}, nil
}

// accountSerials lists the serials of the certificates issued to an
// account that have not ended at now: its current and earlier enrolment
// certificates and its MFA session certificates.
func accountSerials(rec adminRecord, m mfaRecord, now time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, x := range earlierCerts(rec, now) {
		out[x.Serial] = x.NotAfter
	}
	for _, x := range m.liveSessions(now) {
		out[x.Serial] = x.Expires
	}
	return out
}

// earlierCerts is what a new certificate for the account of cur leaves
// behind: cur's certificates, current and earlier, that have not ended at
// now, at most maxEarlierCerts (the newest).
func earlierCerts(cur adminRecord, now time.Time) []adminCert {
	var out []adminCert
	all := cur.Earlier
	if cur.Cert != nil {
		all = append(all[:len(all):len(all)], *cur.Cert)
	}
	for _, x := range all {
		if now.Before(x.NotAfter) {
			out = append(out, x)
		}
	}
	if len(out) > maxEarlierCerts {
		out = out[len(out)-maxEarlierCerts:]
	}
	return out
}
