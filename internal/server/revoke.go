package server

import (
	"context"
	"encoding/json"
	"errors"
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
// node also revokes the latest SVID of every service it was issued, since a
// compromised node held their keys. The list reaches every agent through the
// watch stream.
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
			return nil, req.Service, errorf(http.StatusBadRequest, "service: %v", err)
		}
		target, addIDs = id.String(), []string{id.String()}
	case req.Node != "":
		id, err := identity.NodeID(s.td, req.Node)
		if err != nil {
			return nil, req.Node, errorf(http.StatusBadRequest, "node: %v", err)
		}
		target, addIDs = id.String(), []string{id.String()}
		kvs, _, err := s.st.List(ctx, prefixIssued)
		if err != nil {
			return nil, target, err
		}
		now := s.now()
		for _, kv := range kvs {
			var rec issuedRecord
			if json.Unmarshal(kv.Value, &rec) == nil && rec.Node == req.Node && now.Before(rec.Expires) {
				addSerials = append(addSerials, rec.Serial)
			}
		}
	default:
		if !serialRE.MatchString(req.Serial) {
			return nil, req.Serial, errorf(http.StatusBadRequest, "serial %q: want hexadecimal", req.Serial)
		}
		s := strings.ToLower(strings.TrimLeft(req.Serial, "0"))
		target, addSerials = "serial:"+s, []string{s}
	}
	// Read-modify-write under a revision check, retried on conflict, so two
	// concurrent revocations both land.
	for attempt := 0; attempt < 10; attempt++ {
		var rev identity.Revocations
		modRev, err := getJSONRev(ctx, s.st, keyRevocations, &rev)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, target, err
		}
		for _, id := range addIDs {
			if !slices.Contains(rev.IDs, id) {
				rev.IDs = append(rev.IDs, id)
			}
		}
		for _, sn := range addSerials {
			if !slices.Contains(rev.Serials, sn) {
				rev.Serials = append(rev.Serials, sn)
			}
		}
		rev.Version++
		_, err = s.st.Txn(ctx, []store.Cond{{Key: keyRevocations, ModRevision: modRev}}, []store.Op{store.Put(keyRevocations, mustJSON(rev))})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, target, err
		}
		s.trust.Update(nil, rev)
		return rev, target, nil
	}
	return nil, target, store.ErrConflict
}
