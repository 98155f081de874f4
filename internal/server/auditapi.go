package server

import (
	"context"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"moat/internal/api"
	"moat/internal/audit"
)

// AuditLog is the audit log a server writes and publishes: an audit.Log in
// its data directory, or an audit.StoreLog that every server sharing the
// store writes (one sequence for the cluster).
type AuditLog interface {
	audit.Recorder
	Checkpoint() ([]byte, error)
	Size() int64
	Entries(from, to int64) ([]audit.Indexed, error)
	Stored(i int64) ([]byte, error)
	Prove(n int64) (*audit.Proof, error)
	ProveConsistency(old int64) ([]byte, tlog.TreeProof, error)
	Verifier() note.Verifier
	Close() error
}

// maxAuditPage bounds the entries one call returns.
const maxAuditPage = 1000

func (s *Server) auditRoutes(t *routeTable) {
	admin := t.admin
	admin("GET", api.PathCheckpoint, api.RoleViewer, "audit.checkpoint", s.handleCheckpoint)
	admin("GET", api.PathAudit, api.RoleViewer, "audit.log", s.handleAuditLog)
	admin("GET", api.PathAuditProof, api.RoleViewer, "audit.prove", s.handleAuditProve)
	admin("GET", api.PathAuditConsistency, api.RoleViewer, "audit.consistency", s.handleAuditConsistency)
	admin("GET", api.PathAuditStored, api.RoleViewer, "audit.stored", s.handleAuditStored)
}

// auditKey is the log's verifier key as text, or "" when unknown.
func (s *Server) auditKey() string {
	if s.cfg.AuditLog == nil {
		return ""
	}
	k, _ := audit.VerifierKey(s.cfg.AuditLog.Verifier())
	return k
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
	return api.AuditCheckpoint{Signed: string(cp), Key: s.auditKey()}, "", nil
}

// consistency answers a witness holding a checkpoint of ?from=N entries.
func (s *Server) consistency(r *http.Request) (api.AuditConsistency, error) {
	l, err := s.auditLog()
	if err != nil {
		return api.AuditConsistency{}, err
	}
	v := r.URL.Query().Get("from")
	from, err := strconv.ParseInt(v, 10, 64)
	if err != nil || from < 0 {
		return api.AuditConsistency{}, errorf(http.StatusBadRequest, "from %q: want a tree size ≥ 0", trimForError(v))
	}
	cp, proof, err := l.ProveConsistency(from)
	if err != nil {
		return api.AuditConsistency{}, err
	}
	return api.AuditConsistency{Checkpoint: string(cp), From: from, Proof: audit.ProofBytes(proof)}, nil
}

func (s *Server) handleAuditConsistency(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	out, err := s.consistency(r)
	return out, "", err
}

// handleNodeAudit lets an agent witness the log: it keeps the newest
// checkpoint it has checked and accepts only one that extends it.
func (s *Server) handleNodeAudit(w http.ResponseWriter, r *http.Request, c *caller) {
	out, err := s.consistency(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAuditStored serves entries as stored, so that a client recomputes
// the tree and checks it against a checkpoint without trusting the server.
func (s *Server) handleAuditStored(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	l, err := s.auditLog()
	if err != nil {
		return nil, "", err
	}
	size := l.Size()
	from, to, err := pageRange(r, size)
	if err != nil {
		return nil, "", err
	}
	out := api.AuditStored{Size: size, From: from, Entries: [][]byte{}}
	for i := from; i < to; i++ {
		b, err := l.Stored(i)
		if err != nil {
			return nil, "", err
		}
		out.Entries = append(out.Entries, b)
	}
	return out, "", nil
}

// pageRange reads ?from= and ?to= (an exclusive end), clipped to size and
// to one page.
func pageRange(r *http.Request, size int64) (from, to int64, err error) {
	from, to = 0, size
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseInt(v, 10, 64); err != nil || from < 0 {
			return 0, 0, errorf(http.StatusBadRequest, "from %q: want an index ≥ 0", trimForError(v))
		}
	}
	if v := q.Get("to"); v != "" {
		if to, err = strconv.ParseInt(v, 10, 64); err != nil || to < from {
			return 0, 0, errorf(http.StatusBadRequest, "to %q: want an index ≥ from", trimForError(v))
		}
	}
	to = min(to, size, from+maxAuditPage)
	from = min(from, to)
	return from, to, nil
}

func (s *Server) handleAuditLog(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	l, err := s.auditLog()
	if err != nil {
		return nil, "", err
	}
	size := l.Size()
	from, to, err := pageRange(r, size)
	if err != nil {
		return nil, "", err
	}
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
