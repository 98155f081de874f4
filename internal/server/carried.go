package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// A restore takes the control plane's revocation list back to the
// backup's day, while the agents carry on what they held that it lacks
// (agent.floor). For the control plane to take them back in turn, an
// agent's word is not enough: whoever holds one node's certificate could
// then revoke any service or node of the trust domain. So the control
// plane tags each revocation it lists (an HMAC under a key of its store,
// kept in every backup), the watch stream carries the tags with the list,
// an agent keeps the tag of each revocation it carries, and reports them
// (PathNodeCarried). The restored control plane applies a reported
// revocation again only under a tag of its own key: what it takes back
// is what it once listed itself, whichever node reports it. A report
// holding one tag that is not its own is refused whole (counted among the
// refused calls, not applied): fail closed against the reporter, since
// what the server cannot verify it cannot tell from an invention, while
// the agents that carry the revocation go on enforcing it.

// keyTagKey holds the key the control plane tags its revocations with.
// It never leaves the store but in a backup, and is not streamed.
const keyTagKey = "revocations/tag-key"

// ActionCarried names the audit entry of a revocation an agent carried
// across a restore and the control plane applied again.
const ActionCarried = "revoke.carried"

const (
	tagKeyLen = 32
	// revTagLen is a tag's length: HMAC-SHA256 cut to 128 bits.
	revTagLen = 16
	// maxCarriedBody bounds PathNodeCarried's body: MaxCarriedReport
	// revocations of at most maxRevocationLen bytes, with their tags and
	// expiries.
	maxCarriedBody = 512 << 10
	// maxRevocationLen bounds a reported ID or serial, as the agent
	// bounds what it carries.
	maxRevocationLen = 256
)

// tagKey is the secret revocations are tagged under. It is not
// comparable and prints as nothing.
type tagKey struct{ b []byte }

func (k tagKey) String() string { return "tagKey(redacted)" }

type tagKeyRecord struct {
	Key []byte `json:"key"`
}

// loadTagKey reads the store's tag key, making it if the store has none
// (one made before tags were): of servers starting together, one writes
// it and the others read it.
func (s *Server) loadTagKey(ctx context.Context) error {
	for attempt := 0; attempt < 3; attempt++ {
		var rec tagKeyRecord
		err := getJSON(ctx, s.st, keyTagKey, &rec)
		if err == nil {
			if len(rec.Key) != tagKeyLen {
				return fmt.Errorf("server: stored %q: a key of %d bytes, want %d", keyTagKey, len(rec.Key), tagKeyLen)
			}
			s.tags.key = tagKey{rec.Key}
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("server: %w", err)
		}
		k := make([]byte, tagKeyLen)
		if _, err := rand.Read(k); err != nil {
			return fmt.Errorf("server: revocation tag key: %w", err)
		}
		_, err = s.st.Txn(ctx, []store.Cond{{Key: keyTagKey}}, []store.Op{store.Put(keyTagKey, mustJSON(tagKeyRecord{Key: k}))})
		if err == nil {
			s.tags.key = tagKey{k}
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("server: writing the revocation tag key: %w", err)
		}
	}
	return fmt.Errorf("server: revocation tag key: %w", store.ErrConflict)
}

// revTags tags revocations.
type revTags struct {
	key tagKey // set once, at start
}

// tag returns the tag of one revocation: kind "id" or "serial", the ID or
// serial, and for a serial its certificate's end as listed (zero: none).
func (t *revTags) tag(td spiffeid.TrustDomain, kind, value string, end time.Time) []byte {
	m := hmac.New(sha256.New, t.key.b)
	var b []byte
	b = append(b, "moat revocation tag v1"...)
	for _, f := range []string{td.Name(), kind, value, endText(end)} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	m.Write(b)
	return m.Sum(nil)[:revTagLen]
}

func endText(end time.Time) string {
	if end.IsZero() {
		return ""
	}
	return end.UTC().Format(time.RFC3339Nano)
}

// of returns the tags of rev, keyed by ID and serial. A frame's list is
// tagged once, for every stream it goes to.
func (t *revTags) of(td spiffeid.TrustDomain, rev identity.Revocations) map[string][]byte {
	m := make(map[string][]byte, len(rev.IDs)+len(rev.Serials))
	for _, id := range rev.IDs {
		m[id] = t.tag(td, "id", id, time.Time{})
	}
	for _, sn := range rev.Serials {
		m[sn] = t.tag(td, "serial", sn, rev.Expires[sn])
	}
	return m
}

// checkCarried validates a report: each revocation an ID of a service or
// node of this trust domain or a serial as the list keeps it, under a tag
// of this control plane's. It returns the IDs and serials reported.
func (s *Server) checkCarried(rep api.CarriedReport) ([]string, map[string]time.Time, error) {
	if len(rep.Revocations) > api.MaxCarriedReport {
		return nil, nil, errorf(http.StatusBadRequest, "%d revocations reported, more than %d", len(rep.Revocations), api.MaxCarriedReport)
	}
	var ids []string
	serials := map[string]time.Time{}
	for i, r := range rep.Revocations {
		var kind, value string
		switch {
		case (r.ID == "") == (r.Serial == ""):
			return nil, nil, errorf(http.StatusBadRequest, "revocations[%d]: name exactly one of id or serial", i)
		case len(r.ID) > maxRevocationLen || len(r.Serial) > maxRevocationLen:
			return nil, nil, errorf(http.StatusBadRequest, "revocations[%d]: longer than %d bytes", i, maxRevocationLen)
		case r.ID != "":
			id, err := spiffeid.FromString(r.ID)
			if err != nil {
				return nil, nil, errorf(http.StatusBadRequest, "revocations[%d]: id %q: %v", i, trimForError(r.ID), err)
			}
			k, _, ok := identity.Parse(id)
			if !ok || id.TrustDomain() != s.td || (k != identity.KindService && k != identity.KindNode) || !r.Expires.IsZero() {
				return nil, nil, errorf(http.StatusBadRequest, "revocations[%d]: id %q is no service or node of trust domain %q", i, trimForError(r.ID), s.td.Name())
			}
			kind, value = "id", r.ID
		default:
			if !serialRE.MatchString(r.Serial) || r.Serial[0] == '0' || r.Serial != strings.ToLower(r.Serial) {
				return nil, nil, errorf(http.StatusBadRequest, "revocations[%d]: serial %q is not as the list keeps one (lowercase hexadecimal)", i, trimForError(r.Serial))
			}
			kind, value = "serial", r.Serial
		}
		if !hmac.Equal(r.Tag, s.tags.tag(s.td, kind, value, r.Expires)) {
			return nil, nil, errorf(http.StatusForbidden, "revocations[%d] (%s): its tag is not this control plane's; nothing was applied", i, trimForError(value))
		}
		if kind == "id" {
			if !slices.Contains(ids, value) {
				ids = append(ids, value)
			}
		} else {
			serials[value] = r.Expires
		}
	}
	return ids, serials, nil
}

// handleCarried applies again the revocations an agent carried across a
// restore that the list lacks, each under a tag of this control plane's
// (checkCarried), and records each it applied (ActionCarried) with the
// node that reported it. A revoked node's SVIDs on record are revoked
// with it, as handleRevoke does. A report with one tag that is not this
// control plane's is refused whole and applies nothing.
func (s *Server) handleCarried(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	var rep api.CarriedReport
	err := decodeLimit(r, &rep, maxCarriedBody)
	var ids []string
	var serials map[string]time.Time
	if err == nil {
		ids, serials, err = s.checkCarried(rep)
	}
	if err != nil {
		// Counted and summed up with every refused call, not logged one
		// by one: a node may send as many as it likes. The node has
		// reported all the same: what it carries is of no use here (a
		// tag under a key this store does not hold), so the credentials
		// held for the agents' reports (restorehold.go) wait no longer
		// for it.
		s.refuse(r, c, ActionCarried, err)
		if rec, _, rerr := readEpoch(ctx, s.st); rerr == nil {
			if merr := s.markReported(ctx, rec.Epoch, c.Name); merr != nil {
				s.log.Warn("a refused report not recorded as made", "node", c.Name, "err", merr)
			}
		}
		writeError(w, err)
		return
	}
	epoch, _, err := readEpoch(ctx, s.st)
	if err != nil {
		writeError(w, err)
		return
	}
	for _, id := range ids {
		sid, _ := spiffeid.FromString(id)
		if name, ok := identity.NodeName(sid); ok {
			more, err := s.nodeSerials(ctx, name)
			if err != nil {
				writeError(w, err)
				return
			}
			for sn, end := range more {
				if _, ok := serials[sn]; !ok {
					serials[sn] = end
				}
			}
		}
	}
	_, added, err := s.applyRevocations(ctx, ids, serials)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.markReported(ctx, epoch.Epoch, c.Name); err != nil {
		writeError(w, err)
		return
	}
	for _, target := range added {
		e := audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: "node", Action: ActionCarried, Target: target, Result: "ok",
			Detail: map[string]string{"reported_by": c.Name, "epoch": strconv.FormatInt(epoch.Epoch, 10)}}
		if err := s.record(ctx, e); err != nil {
			writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written: %d revocations were applied again, not all on record", len(added)))
			return
		}
	}
	if len(added) > 0 {
		s.log.Info("revocations carried across a restore applied again", "node", c.Name, "applied", len(added))
	}
	writeJSON(w, http.StatusOK, api.CarriedResult{Applied: len(added)})
}

// applyRevocations adds ids and serials to the stored list and to this
// server's trust, as addRevocations does, and returns what this write
// added that the list lacked (IDs, and serials as "serial:<hex>"), so that
// of callers adding the same at once each records only its own.
func (s *Server) applyRevocations(ctx context.Context, addIDs []string, addSerials map[string]time.Time) (identity.Revocations, []string, error) {
	for attempt := 0; attempt < 10; attempt++ {
		var rev identity.Revocations
		modRev, err := getJSONRev(ctx, s.st, keyRevocations, &rev)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return rev, nil, err
		}
		before := identity.Revocations{IDs: slices.Clone(rev.IDs), Serials: slices.Clone(rev.Serials)}
		if !mergeRevocations(&rev, addIDs, addSerials) && modRev != 0 {
			s.trust.Update(nil, rev)
			return rev, nil, nil
		}
		_, err = s.st.Txn(ctx, []store.Cond{{Key: keyRevocations, ModRevision: modRev}}, []store.Op{store.Put(keyRevocations, mustJSON(rev))})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return rev, nil, err
		}
		s.trust.Update(nil, rev)
		var added []string
		for _, id := range addIDs {
			if !slices.Contains(before.IDs, id) {
				added = append(added, id)
			}
		}
		for _, sn := range slices.Sorted(maps.Keys(addSerials)) {
			if !slices.Contains(before.Serials, sn) {
				added = append(added, "serial:"+sn)
			}
		}
		return rev, added, nil
	}
	return identity.Revocations{}, nil, store.ErrConflict
}
