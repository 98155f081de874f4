package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"moat/internal/identity"
	"moat/internal/store"
)

// A restored control plane learns the revocations made after the backup
// from the agents that carry them (carried.go), as each connects. Until
// then it would hand a certificate to a node revoked since. So after a
// restore it holds every credential it signs for a node (a join, a
// renewal, a re-attestation, a service SVID) until the agent of every
// node of its registry but the asking one has reported (its report may
// hold nothing), leaving out the nodes revoked by then, or until
// restoreHold has passed since the first server started on the restored
// store: a node that never reports (down, removed since the backup, or
// withholding its report) holds the others back that long, no more. A
// call held is answered 503, saying for whom it waits; agents try again.

// restoreHold bounds how long a restored control plane holds credentials
// for the agents' reports: far beyond a fleet's reconnection after a
// restore (seconds), well within a service SVID's half-life, when agents
// renew it.
const restoreHold = 10 * time.Minute

// prefixReported keeps, under restore/reported/<epoch>/<node>, the nodes
// whose agents reported at that epoch.
const prefixReported = "restore/reported/"

func reportedKey(epoch int64, node string) string {
	return fmt.Sprintf("%s%d/%s", prefixReported, epoch, node)
}

// markReported records that node's agent reported at epoch.
func (s *Server) markReported(ctx context.Context, epoch int64, node string) error {
	if epoch == 0 {
		return nil
	}
	k := reportedKey(epoch, node)
	_, err := s.st.Txn(ctx, []store.Cond{{Key: k}}, []store.Op{store.Put(k, mustJSON(map[string]time.Time{"reported": s.now().UTC()}))})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("server: recording the report of %q: %w", node, err)
	}
	return nil
}

// holdCredential returns a 503 while the store's restore epoch is held
// (above) for a credential of node, nil once it is not.
func (s *Server) holdCredential(ctx context.Context, node string) error {
	rec, modRev, err := readEpoch(ctx, s.st)
	if err != nil || modRev == 0 {
		return err
	}
	if s.settled.Load() == rec.Epoch {
		return nil
	}
	start := rec.Started
	if start.IsZero() {
		start = rec.Restored
	}
	until := start.Add(restoreHold)
	if !s.now().Before(until) {
		s.settled.Store(rec.Epoch)
		return nil
	}
	nodes, _, err := s.st.List(ctx, prefixNode)
	if err != nil {
		return err
	}
	reported, _, err := s.st.List(ctx, fmt.Sprintf("%s%d/", prefixReported, rec.Epoch))
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, kv := range reported {
		done[kv.Key[strings.LastIndexByte(kv.Key, '/')+1:]] = true
	}
	rev, err := s.currentRevocations(ctx)
	if err != nil {
		return err
	}
	var waiting []string
	for _, kv := range nodes {
		name := strings.TrimPrefix(kv.Key, prefixNode)
		id, err := identity.NodeID(s.td, name)
		if err != nil || done[name] || slices.Contains(rev.IDs, id.String()) {
			continue
		}
		waiting = append(waiting, name)
	}
	if len(waiting) == 0 {
		s.settled.Store(rec.Epoch)
		return nil
	}
	if others := slices.DeleteFunc(waiting, func(n string) bool { return n == node }); len(others) > 0 {
		shown := others[:min(len(others), 8)]
		more := ""
		if len(others) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(others)-len(shown))
		}
		return errorf(http.StatusServiceUnavailable, "the control plane was restored from a backup: it signs nothing for a node until the agents of its other nodes have handed back the revocations they carry (waiting for %s%s), or until %s",
			strings.Join(shown, ", "), more, until.UTC().Format(time.RFC3339))
	}
	return nil
}
