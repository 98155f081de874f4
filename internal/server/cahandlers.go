package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/store"
)

func (s *Server) handleCAShow(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	a := s.CA()
	st := a.State()
	info := api.CAInfo{
		TrustDomain: s.td.Name(),
		Phase:       string(a.Phase()),
		Signing:     certInfo(st.Authorities[st.Active].Intermediate),
		SVIDTTL:     s.meta.SVIDTTL.String(),
		Revocations: s.trust.Revocations(),
	}
	for _, au := range st.Authorities {
		info.Roots = append(info.Roots, certInfo(au.Root))
	}
	return info, "", nil
}

// handleCARotate runs one root-rotation step on a copy of the CA, stores the
// new state and bundle in one transaction, and only then swaps the copy in:
// a failed step changes nothing.
func (s *Server) handleCARotate(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.CARequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	if err := s.rotate(ctx, req); err != nil {
		return nil, "ca:" + req.Step, err
	}
	// The server's own certificate moves to the signing authority at once.
	if err := s.renewOwnCert(); err != nil {
		return nil, "ca:" + req.Step, err
	}
	info, _, err := s.handleCAShow(ctx, c, r)
	return info, "ca:" + req.Step, err
}

func (s *Server) rotate(ctx context.Context, req api.CARequest) error {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	next, err := ca.FromState(s.caConfig(), s.ca.State())
	if err != nil {
		return err
	}
	switch req.Step {
	case "prepare":
		err = next.Prepare()
	case "activate":
		err = next.Activate()
	case "retire":
		if err := s.checkAdminsMoved(ctx, req.Force); err != nil {
			return err
		}
		err = next.Retire(req.Force)
	default:
		return errorf(http.StatusBadRequest, "step %q: want prepare, activate or retire", req.Step)
	}
	if err != nil {
		if errors.Is(err, ca.ErrNoPrepared) || errors.Is(err, ca.ErrRotationActive) || errors.Is(err, ca.ErrNothingRetire) || errors.Is(err, ca.ErrOldRootLive) {
			return errorf(http.StatusConflict, "%v", err)
		}
		return err
	}
	b, err := next.Marshal(s.cfg.Sealer)
	if err != nil {
		return err
	}
	roots := api.DERs(next.Bundle().X509Authorities())
	if _, err := s.st.Txn(ctx, nil, []store.Op{store.Put(keyCA, b), store.Put(keyBundle, mustJSON(roots))}); err != nil {
		return err
	}
	s.ca = next
	s.trust.Update(next.Bundle(), s.trust.Revocations())
	return nil
}

// checkAdminsMoved refuses to retire the old root while an administrator's
// latest certificate still chains to it: they would be locked out. Each
// renews ("moat admin renew", or any admin command, which renews by itself
// during a rotation), is revoked, or force is set.
func (s *Server) checkAdminsMoved(ctx context.Context, force bool) error {
	st := s.ca.State()
	if force || len(st.Authorities) < 2 {
		return nil
	}
	stuck, err := s.adminsOnRoot(ctx, api.Pin(st.Authorities[0].Root), s.now())
	if err != nil {
		return err
	}
	if len(stuck) > 0 {
		return errorf(http.StatusConflict, "the old root still signs the certificates of administrators it would lock out: %s; each runs \"moat admin renew\" (any admin command renews by itself once the new root signs), or revoke them, or pass --force",
			strings.Join(stuck, ", "))
	}
	return nil
}

// ActionIntermediateRenewed names the audit entries of a new intermediate
// made under the signing root (renewIntermediate).
const ActionIntermediateRenewed = "ca.intermediate"

// renewIntermediate gives the signing authority a new intermediate under
// the same root once the current one has less than a third of its life
// left (ca.IntermediateDue): at start and in every sweep, so that neither
// a server running for a year nor one started after a long stop finds its
// CA unable to sign. The stored state changes only if it is still the
// state this server holds; on a cluster the first server to renew wins
// and the others load what it stored. It is audited.
func (s *Server) renewIntermediate(ctx context.Context) error {
	s.caMu.Lock()
	if !s.ca.IntermediateDue() {
		s.caMu.Unlock()
		return nil
	}
	prev := s.ca.State()
	old := prev.Authorities[prev.Active].Intermediate
	kv, err := s.st.Get(ctx, keyCA)
	if err != nil {
		s.caMu.Unlock()
		return fmt.Errorf("server: renew intermediate: %w", err)
	}
	stored, err := ca.Unmarshal(s.caConfig(), kv.Value, s.cfg.Sealer)
	if err != nil {
		s.caMu.Unlock()
		return fmt.Errorf("server: renew intermediate: %w", err)
	}
	if st := stored.State(); len(st.Authorities) != len(prev.Authorities) || st.Active != prev.Active || !st.Authorities[st.Active].Intermediate.Equal(old) {
		// Another server changed the CA (renewed it first, say): take
		// what it stored now, rather than sign under what may have ended.
		s.caMu.Unlock()
		return s.loadCA(ctx)
	}
	next, err := ca.FromState(s.caConfig(), prev)
	if err == nil {
		err = next.RenewIntermediate()
	}
	var b []byte
	if err == nil {
		b, err = next.Marshal(s.cfg.Sealer)
	}
	if err == nil {
		_, err = s.st.Txn(ctx, []store.Cond{{Key: keyCA, ModRevision: kv.ModRevision}}, []store.Op{store.Put(keyCA, b)})
	}
	if errors.Is(err, store.ErrConflict) {
		s.caMu.Unlock()
		return s.loadCA(ctx)
	}
	if err != nil {
		s.caMu.Unlock()
		return fmt.Errorf("server: renew intermediate: %w", err)
	}
	s.ca = next
	st := next.State()
	inter := st.Authorities[st.Active].Intermediate
	s.caMu.Unlock()
	if err := s.renewOwnCert(); err != nil {
		return err
	}
	return s.record(ctx, audit.Entry{Time: s.now().UTC(), Actor: "control-plane", Action: ActionIntermediateRenewed, Target: "ca", Result: "ok",
		Detail: map[string]string{
			"previous_serial": identity.SerialHex(old.SerialNumber), "previous_not_after": old.NotAfter.UTC().Format(time.RFC3339),
			"serial": identity.SerialHex(inter.SerialNumber), "not_after": inter.NotAfter.UTC().Format(time.RFC3339),
		}})
}
