package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/store"
)

var serialRE = regexp.MustCompile(`^[0-9a-fA-F]{1,40}$`)

// handleRevoke adds a service, node or serial to the deny-list. Revoking a
// node also revokes every unexpired SVID issued to it, since a compromised
// node held their keys (and may have asked for more than it used). The
// list reaches every agent through the watch stream, and agents close the
// tunnels of revoked peers when it arrives.
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
	var addIDs, addSerials []string
	var target string
	switch {
	case req.Service != "":
		id, err := identity.ServiceID(s.td, req.Service)
		if err != nil {
			return nil, trimForError(req.Service), errorf(http.StatusBadRequest, "service: %v", err)
		}
		target, addIDs = id.String(), []string{id.String()}
	case req.Node != "":
		id, err := identity.NodeID(s.td, req.Node)
		if err != nil {
			return nil, trimForError(req.Node), errorf(http.StatusBadRequest, "node: %v", err)
		}
		target, addIDs = id.String(), []string{id.String()}
		if addSerials, err = s.nodeSerials(ctx, req.Node); err != nil {
			return nil, target, err
		}
	default:
		if !serialRE.MatchString(req.Serial) {
			return nil, trimForError(req.Serial), errorf(http.StatusBadRequest, "serial %q: want hexadecimal", trimForError(req.Serial))
		}
		s := strings.ToLower(strings.TrimLeft(req.Serial, "0"))
		target, addSerials = "serial:"+s, []string{s}
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
	return rev, target, nil
}

// nodeSerials lists the unexpired SVIDs issued to node.
func (s *Server) nodeSerials(ctx context.Context, node string) ([]string, error) {
	kvs, _, err := s.st.List(ctx, prefixIssued)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []string
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) == nil && rec.Node == node && now.Before(rec.Expires) {
			out = append(out, rec.Serial)
		}
	}
	return out, nil
}

// addRevocations adds ids and serials to the stored list and to this
// server's trust: a read-modify-write under a revision check, retried on
// conflict, so two concurrent revocations both land.
func (s *Server) addRevocations(ctx context.Context, addIDs, addSerials []string) (identity.Revocations, error) {
	for attempt := 0; attempt < 10; attempt++ {
		var rev identity.Revocations
		modRev, err := getJSONRev(ctx, s.st, keyRevocations, &rev)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return rev, err
		}
		if !mergeRevocations(&rev, addIDs, addSerials) && modRev != 0 {
			s.trust.Update(nil, rev)
			return rev, nil
		}
		_, err = s.st.Txn(ctx, []store.Cond{{Key: keyRevocations, ModRevision: modRev}}, []store.Op{store.Put(keyRevocations, mustJSON(rev))})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return rev, err
		}
		s.trust.Update(nil, rev)
		return rev, nil
	}
	return identity.Revocations{}, store.ErrConflict
}

// mergeRevocations adds ids and serials to rev, and says whether it changed
// (its Version is then one more).
func mergeRevocations(rev *identity.Revocations, ids, serials []string) bool {
	changed := false
	for _, id := range ids {
		if !slices.Contains(rev.IDs, id) {
			rev.IDs = append(rev.IDs, id)
			changed = true
		}
	}
	for _, sn := range serials {
		if !slices.Contains(rev.Serials, sn) {
			rev.Serials = append(rev.Serials, sn)
			changed = true
		}
	}
	if changed {
		rev.Version++
	}
	return changed
}
