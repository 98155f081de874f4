package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"moat/internal/api"
	"moat/internal/ca"
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
