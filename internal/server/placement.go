package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// ActionSVIDLeft names the audit entries of SVIDs revoked by the sweep
// (sweepLeft) rather than by the registry change that left them.
const ActionSVIDLeft = "svid.revoke-left"

// leftSweepEvery is how often each server sweeps for SVIDs left on nodes
// their service no longer runs on: well within an SVID's hour, for the
// rare SVID a registry change could not revoke (its server stopped between
// the change and its second look, see placeService).
const leftSweepEvery = time.Minute

// placeService writes a service's registration (reg), or removes the
// service called name (reg nil). When that takes the service off the node
// it was on, the unexpired SVIDs issued to that node for the service are
// revoked in the same transaction: a node the service left, perhaps the
// compromised one that prompted the move, keeps no identity of it. The
// caller's audit entry says from which node and how many.
//
// An SVID signed while the registration changed is recorded before its
// issuer reads the registration again (handleSVID): either that read saw
// the change, and the SVID was never answered, or the second look here,
// after the transaction, sees its record.
func (s *Server) placeService(ctx context.Context, c *caller, name string, reg *api.Registration) error {
	var from string
	n := 0
	err := store.ErrConflict
	for attempt := 0; attempt < 10 && errors.Is(err, store.ErrConflict); attempt++ {
		from, n, err = s.placeOnce(ctx, name, reg)
	}
	if err != nil {
		return err
	}
	if from == "" {
		return nil
	}
	more, err := s.revokeLeft(ctx, from, name)
	c.note("left_node", from)
	c.note("svids_revoked", fmt.Sprint(n+more))
	return err
}

// placeOnce is one attempt of placeService: store.ErrConflict when the
// registration or the revocation list changed meanwhile. It returns the
// node the service left ("" when it left none) and the serials it revoked.
func (s *Server) placeOnce(ctx context.Context, name string, reg *api.Registration) (string, int, error) {
	var old api.Registration
	oldRev, err := getJSONRev(ctx, s.st, prefixService+name, &old)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", 0, err
	}
	if oldRev == 0 && reg == nil {
		return "", 0, errorf(http.StatusNotFound, "service %q is not registered", name)
	}
	conds := []store.Cond{{Key: prefixService + name, ModRevision: oldRev}}
	ops := []store.Op{store.Delete(prefixService + name)}
	if reg != nil {
		ops[0] = store.Put(prefixService+name, mustJSON(*reg))
	}
	from := ""
	if oldRev != 0 && (reg == nil || reg.Node != old.Node) {
		from = old.Node
	}
	var rev identity.Revocations
	var serials map[string]time.Time
	added := 0
	if from != "" {
		kvs, _, err := s.st.List(ctx, prefixIssued+from+"/")
		if err != nil {
			return "", 0, err
		}
		serials = liveSerials(kvs, s.now(), func(r issuedRecord) bool { return r.Service == name })
		revRev, err := getJSONRev(ctx, s.st, keyRevocations, &rev)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", 0, err
		}
		before := len(rev.Serials)
		if mergeRevocations(&rev, nil, serials) {
			conds = append(conds, store.Cond{Key: keyRevocations, ModRevision: revRev})
			ops = append(ops, store.Put(keyRevocations, mustJSON(rev)))
		}
		added = len(rev.Serials) - before
	}
	if _, err := s.st.Txn(ctx, conds, ops); err != nil {
		return "", 0, err
	}
	if added > 0 {
		s.trust.Update(nil, rev)
	}
	return from, added, nil
}

// liveSerials returns the serials, with their NotAfter, of the unexpired
// records among kvs (issuedRecords) that keep says to.
func liveSerials(kvs []store.KV, now time.Time, keep func(issuedRecord) bool) map[string]time.Time {
	out := map[string]time.Time{}
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) == nil && rec.Service != "" && now.Before(rec.Expires) && keep(rec) {
			out[rec.Serial] = rec.Expires
		}
	}
	return out
}

// revokeLeft revokes the unexpired SVIDs issued for a service to a node
// the service is not registered on: those of service on node, or, with
// both "", all of them. It reads the records before the registrations, so
// that an SVID signed under a registration it reads is never taken for
// one left behind. It returns how many serials it added to the list.
func (s *Server) revokeLeft(ctx context.Context, node, service string) (int, error) {
	prefix := prefixIssued
	if node != "" {
		prefix += node + "/"
	}
	kvs, _, err := s.st.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	regs, err := s.services(ctx)
	if err != nil {
		return 0, err
	}
	placed := map[string]string{}
	for _, reg := range regs {
		placed[reg.Name] = reg.Node
	}
	stored, err := s.currentRevocations(ctx)
	if err != nil {
		return 0, err
	}
	serials := liveSerials(kvs, s.now(), func(r issuedRecord) bool {
		return (service == "" || r.Service == service) && placed[r.Service] != r.Node && !slices.Contains(stored.Serials, r.Serial)
	})
	if len(serials) == 0 {
		return 0, nil
	}
	if _, err := s.addRevocations(ctx, nil, serials); err != nil {
		return 0, err
	}
	return len(serials), nil
}

// currentRevocations reads the stored revocation list.
func (s *Server) currentRevocations(ctx context.Context) (identity.Revocations, error) {
	var rev identity.Revocations
	if err := getJSON(ctx, s.st, keyRevocations, &rev); err != nil && !errors.Is(err, store.ErrNotFound) {
		return rev, err
	}
	return rev, nil
}

// sweepLeft revokes any SVID left on a node its service no longer runs
// on (revokeLeft), and records what it revoked.
func (s *Server) sweepLeft(ctx context.Context) error {
	n, err := s.revokeLeft(ctx, "", "")
	if err != nil || n == 0 {
		return err
	}
	return s.record(ctx, audit.Entry{Time: s.now().UTC(), Actor: "control-plane", Action: ActionSVIDLeft, Target: "svids", Result: "ok",
		Detail: map[string]string{"svids_revoked": fmt.Sprint(n)}})
}

// runLeftSweep runs sweepLeft, the revocation list's pruning
// (sweepRevocations) and the intermediate's renewal (renewIntermediate),
// now and every leftSweepEvery until ctx ends.
func (s *Server) runLeftSweep(ctx context.Context) {
	t := time.NewTicker(leftSweepEvery)
	defer t.Stop()
	for {
		if err := s.sweepLeft(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("revoke SVIDs left on nodes their service left", "err", err)
		}
		if err := s.sweepRevocations(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("prune the revocation list", "err", err)
		}
		if err := s.renewIntermediate(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("renew the CA's intermediate", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
