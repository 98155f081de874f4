package server

import (
	"context"
	"net/http"
	"strconv"

	"moat/internal/api"
	"moat/internal/audit"
)

// AuditLog is what the server publishes of its audit log: signed checkpoints,
// entries and inclusion proofs (audit.Log).
type AuditLog interface {
	Checkpoint() ([]byte, error)
	Size() int64
	Entries(from, to int64) ([]audit.Indexed, error)
	Prove(n int64) (*audit.Proof, error)
}

func (s *Server) auditRoutes(admin func(method, path, role, action string, h func(context.Context, *caller, *http.Request) (any, string, error))) {
	admin("GET", api.PathCheckpoint, api.RoleViewer, "audit.checkpoint", s.handleCheckpoint)
	admin("GET", api.PathAudit, api.RoleViewer, "audit.log", s.handleAuditLog)
	admin("GET", api.PathAuditProof, api.RoleViewer, "audit.prove", s.handleAuditProve)
}

func (s *Server) auditLog() (AuditLog, error) {
	if s.cfg.AuditLog == nil {
		return nil, errorf(http.StatusNotFound, "this server publishes no audit log")
	}
	return s.cfg.AuditLog, nil
}

// handleCheckpoint publishes the latest signed checkpoint, so anyone can
// later check that the log was only ever appended to.
func (s *Server) handleCheckpoint(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	l, err := s.auditLog()
	if err != nil {
		return nil, "", err
	}
	cp, err := l.Checkpoint()
	if err != nil {
		return nil, "", err
	}
	return api.AuditCheckpoint{Signed: string(cp)}, "", nil
}

func (s *Server) handleAuditLog(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	l, err := s.auditLog()
	if err != nil {
		return nil, "", err
	}
	size := l.Size()
	from, to := int64(0), size
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseInt(v, 10, 64); err != nil || from < 0 {
			return nil, "", errorf(http.StatusBadRequest, "from %q: want an index ≥ 0", v)
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = strconv.ParseInt(v, 10, 64); err != nil || to < from {
			return nil, "", errorf(http.StatusBadRequest, "to %q: want an index ≥ from", v)
		}
	}
	to = min(to, size, from+1000)
	from = min(from, to)
	entries, err := l.Entries(from, to)
	if err != nil {
		return nil, "", err
	}
	return api.AuditEntries{Size: size, Entries: entries}, "", nil
}

func (s *Server) handleAuditProve(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	l, err := s.auditLog()
	if err != nil {
		return nil, "", err
	}
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n >= l.Size() {
		return nil, "", errorf(http.StatusBadRequest, "n: want an entry index below %d", l.Size())
	}
	p, err := l.Prove(n)
	if err != nil {
		return nil, "", err
	}
	text, err := p.MarshalText()
	if err != nil {
		return nil, "", err
	}
	cp, err := l.Checkpoint()
	if err != nil {
		return nil, "", err
	}
	return api.AuditProof{Proof: string(text), Checkpoint: string(cp)}, strconv.FormatInt(n, 10), nil
}
