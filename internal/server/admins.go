package server

import (
	"context"
	"net/http"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
)

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
	ttl := req.TTL
	if ttl == 0 {
		ttl = 30 * 24 * time.Hour
	}
	chain, err := s.CA().SignCSR(req.CSR, id, ttl)
	if err != nil {
		return nil, id.String(), errorf(http.StatusBadRequest, "csr: %v", err)
	}
	if err := putJSON(ctx, s.st, prefixAdmin+req.Name, adminRecord{Role: req.Role}); err != nil {
		return nil, id.String(), err
	}
	c.note("role", req.Role)
	s.m.issued.WithLabelValues("admin").Inc()
	return api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(s.CA().Bundle().X509Authorities()), TrustDomain: s.td.Name()}, id.String(), nil
}
