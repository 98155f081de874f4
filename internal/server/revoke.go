package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

var serialRE = regexp.MustCompile(`^[0-9a-fA-F]{1,40}$`)

// handleRevoke adds a service, node or serial to the deny-list. Revoking a
// node also revokes every unexpired SVID issued to it, since a compromised
// node held their keys (and may have asked for more than it used). The
// list reaches every agent through the watch stream, and agents close the
// tunnels of revoked peers when it arrives. A service or node that is not
// registered is revoked anyway (a node before it joins), and the answer
// says it was not registered, so that a misspelt name shows.
func (s *Server) handleRevoke(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.RevokeRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	n := 0
	for _, v := range []string{req.Service, req.Node, req.Serial} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return nil, "", errorf(http.StatusBadRequest, "name exactly one of service, node or serial")
	}
	var addIDs []string
	var addSerials map[string]time.Time
	var target, registeredKey string
	switch {
	case req.Service != "":
		id, err := identity.ServiceID(s.td, req.Service)
		if err != nil {
			return nil, trimForError(req.Service), errorf(http.StatusBadRequest, "service: %v", err)
		}
		target, addIDs, registeredKey = id.String(), []string{id.String()}, prefixService+req.Service
	case req.Node != "":
		id, err := identity.NodeID(s.td, req.Node)
		if err != nil {
			return nil, trimForError(req.Node), errorf(http.StatusBadRequest, "node: %v", err)
		}
		target, addIDs, registeredKey = id.String(), []string{id.String()}, prefixNode+req.Node
		if addSerials, err = s.nodeSerials(ctx, req.Node); err != nil {
			return nil, target, err
		}
	default:
		if !serialRE.MatchString(req.Serial) {
			return nil, trimForError(req.Serial), errorf(http.StatusBadRequest, "serial %q: want hexadecimal", trimForError(req.Serial))
		}
		sn := strings.ToLower(strings.TrimLeft(req.Serial, "0"))
		end, err := s.issuedEnd(ctx, sn)
		if err != nil {
			return nil, "serial:" + sn, err
		}
		// Services and nodes are an operator's to revoke; any other
		// certificate (an administrator's, whose serial every viewer
		// reads in the inventory; a server's) is an admin's: an operator
		// must not lock out the accounts above theirs, or the control
		// plane itself.
		if end.IsZero() && api.RoleRank(c.Role) < api.RoleRank(api.RoleAdmin) {
			return nil, "serial:" + sn, errorf(http.StatusForbidden,
				"serial %s is no live service SVID on record: revoking another certificate (an administrator's, a server's) needs role %q", sn, api.RoleAdmin)
		}
		target, addSerials = "serial:"+sn, map[string]time.Time{sn: end}
	}
	notRegistered := false
	if registeredKey != "" {
		_, err := s.st.Get(ctx, registeredKey)
		switch {
		case errors.Is(err, store.ErrNotFound):
			notRegistered = true
			c.note("registered", "false")
		case err != nil:
			return nil, target, err
		}
	}
	rev, err := s.addRevocations(ctx, addIDs, addSerials)
	if err != nil {
		return nil, target, err
	}
	if req.Node != "" {
		// An SVID issued while the list was written was recorded before
		// its issuer read the list (handleSVID): either that read saw the
		// node revoked, or this second look sees the serial.
		more, err := s.nodeSerials(ctx, req.Node)
		if err != nil {
			return nil, target, err
		}
		if rev, err = s.addRevocations(ctx, nil, more); err != nil {
			return nil, target, err
		}
		c.note("serials", fmt.Sprint(len(more)))
	}
	return api.RevokeResult{Revocations: rev, NotRegistered: notRegistered}, target, nil
}

// storedTrust holds the revocation list as stored, read with quorum. This
// server's own trust follows the store's watch, which may lag a
// revocation made through another server: a call that hands out a
// credential (a join, a renewal, an SVID) checks against this instead.
func (s *Server) storedTrust(ctx context.Context) (*identity.Trust, error) {
	rev, err := s.currentRevocations(ctx)
	if err != nil {
		return nil, err
	}
	t := identity.NewTrust(identity.TrustConfig{TrustDomain: s.td, Now: s.now})
	t.Update(nil, rev)
	return t, nil
}

// notRevoked refuses the node caller c when the stored revocation list
// (storedTrust) holds its certificate or its node.
func (s *Server) notRevoked(ctx context.Context, c *caller) error {
	stored, err := s.storedTrust(ctx)
	if err != nil {
		return err
	}
	id, err := identity.NodeID(s.td, c.Name)
	if err != nil {
		return errorf(http.StatusUnauthorized, "client certificate refused: %v", err)
	}
	if stored.Revoked(c.Leaf, id) {
		return errorf(http.StatusUnauthorized, "client certificate refused: %v", identity.ErrRevoked)
	}
	return nil
}

// nodeSerials lists the unexpired SVIDs issued to node, with their NotAfter.
func (s *Server) nodeSerials(ctx context.Context, node string) (map[string]time.Time, error) {
	kvs, _, err := s.st.List(ctx, prefixIssued)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := map[string]time.Time{}
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) == nil && rec.Node == node && now.Before(rec.Expires) {
			out[rec.Serial] = rec.Expires
		}
	}
	return out, nil
}

// issuedEnd returns the NotAfter of the service SVID with serial sn on
// record, or zero when none is (another certificate, or one whose record
// went with its expiry): the serial is then listed for good.
func (s *Server) issuedEnd(ctx context.Context, sn string) (time.Time, error) {
	kvs, _, err := s.st.List(ctx, prefixIssued)
	if err != nil {
		return time.Time{}, err
	}
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) == nil && rec.Serial == sn {
			return rec.Expires, nil
		}
	}
	return time.Time{}, nil
}

// addRevocations adds ids and serials to the stored list and to this
// server's trust: a read-modify-write under a revision check, retried on
// conflict, so two concurrent revocations both land.
func (s *Server) addRevocations(ctx context.Context, addIDs []string, addSerials map[string]time.Time) (identity.Revocations, error) {
	rev, _, err := s.applyRevocations(ctx, addIDs, addSerials)
	return rev, err
}

// mergeRevocations adds ids and serials to rev, the serials (in order) with
// the NotAfter of their certificate when it is known (not zero), and says
// whether it changed (its Version is then one more).
func mergeRevocations(rev *identity.Revocations, ids []string, serials map[string]time.Time) bool {
	changed := false
	for _, id := range ids {
		if !slices.Contains(rev.IDs, id) {
			rev.IDs = append(rev.IDs, id)
			changed = true
		}
	}
	for _, sn := range slices.Sorted(maps.Keys(serials)) {
		if !slices.Contains(rev.Serials, sn) {
			rev.Serials = append(rev.Serials, sn)
			if end := serials[sn]; !end.IsZero() {
				if rev.Expires == nil {
					rev.Expires = map[string]time.Time{}
				}
				rev.Expires[sn] = end.UTC()
			}
			changed = true
		}
	}
	if changed {
		rev.Version++
	}
	return changed
}

// ActionRevocationsPruned names the audit entries of serials dropped from
// the revocation list once their certificates had long expired.
const ActionRevocationsPruned = "revocations.prune"

// revokedKeep is how long a revoked serial stays listed after its
// certificate expired. Refusal does not depend on it: a serial dropped
// moves the list's Pruned to its NotAfter, and every agent then refuses
// any certificate that expired by then, revoked or not, whenever the list
// reaches it and whatever its clock says. What it bounds is the drain of
// a tunnel on an SVID that merely expired, which keeps its streams
// (mesh.peerDistrusted) until a list drops a serial that expired after
// it: a day, a node certificate's default life, lets such a stream run a
// day past its SVID, far beyond the list's propagation (seconds) and any
// skew between clocks, while the list holds at most the serials revoked
// in a day and an SVID's life.
const revokedKeep = 24 * time.Hour

// pruneRevocations drops from the stored list the serials whose
// certificate expired more than revokedKeep ago, moving Pruned forward,
// under a check of the list's revision: of servers pruning at once, one
// writes and the others find nothing left to drop. Serials without a
// NotAfter stay, unless an issued-SVID record gives it (a serial listed
// before NotAfters were kept, whose SVID has not expired yet), and so do
// revoked IDs: a node or service ID names no certificate that ends. It
// returns how many serials it dropped and the list's Pruned.
func (s *Server) pruneRevocations(ctx context.Context) (int, time.Time, error) {
	for attempt := 0; attempt < 10; attempt++ {
		var rev identity.Revocations
		modRev, err := getJSONRev(ctx, s.st, keyRevocations, &rev)
		if errors.Is(err, store.ErrNotFound) {
			return 0, time.Time{}, nil
		}
		if err != nil {
			return 0, time.Time{}, err
		}
		learnt, err := s.learnExpiries(ctx, &rev)
		if err != nil {
			return 0, time.Time{}, err
		}
		cutoff := s.now().Add(-revokedKeep)
		kept := make([]string, 0, len(rev.Serials))
		for _, sn := range rev.Serials {
			end, ok := rev.Expires[sn]
			if !ok || !end.Before(cutoff) {
				kept = append(kept, sn)
				continue
			}
			if end.After(rev.Pruned) {
				rev.Pruned = end
			}
			delete(rev.Expires, sn)
		}
		n := len(rev.Serials) - len(kept)
		if n == 0 && !learnt {
			return 0, rev.Pruned, nil
		}
		rev.Serials = kept
		rev.Version++
		_, err = s.st.Txn(ctx, []store.Cond{{Key: keyRevocations, ModRevision: modRev}}, []store.Op{store.Put(keyRevocations, mustJSON(rev))})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, time.Time{}, err
		}
		s.trust.Update(nil, rev)
		return n, rev.Pruned, nil
	}
	return 0, time.Time{}, store.ErrConflict
}

// learnExpiries gives the listed serials without a NotAfter the one their
// issued-SVID record holds, if any, and says whether it gave any.
func (s *Server) learnExpiries(ctx context.Context, rev *identity.Revocations) (bool, error) {
	if len(rev.Expires) == len(rev.Serials) {
		return false, nil
	}
	kvs, _, err := s.st.List(ctx, prefixIssued)
	if err != nil {
		return false, err
	}
	ends := map[string]time.Time{}
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) == nil && !rec.Expires.IsZero() {
			ends[rec.Serial] = rec.Expires
		}
	}
	learnt := false
	for _, sn := range rev.Serials {
		if _, ok := rev.Expires[sn]; ok {
			continue
		}
		if end, ok := ends[sn]; ok {
			if rev.Expires == nil {
				rev.Expires = map[string]time.Time{}
			}
			rev.Expires[sn], learnt = end.UTC(), true
		}
	}
	return learnt, nil
}

// sweepRevocations prunes the revocation list (pruneRevocations) and
// records what it dropped.
func (s *Server) sweepRevocations(ctx context.Context) error {
	n, pruned, err := s.pruneRevocations(ctx)
	if err != nil || n == 0 {
		return err
	}
	return s.record(ctx, audit.Entry{Time: s.now().UTC(), Actor: "control-plane", Action: ActionRevocationsPruned, Target: "revocations", Result: "ok",
		Detail: map[string]string{"serials_pruned": fmt.Sprint(n), "pruned": pruned.UTC().Format(time.RFC3339)}})
}
