package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/identity"
	"moat/internal/store"
)

// Join token limits.
const (
	DefaultTokenTTL = 15 * time.Minute
	MaxTokenTTL     = 7 * 24 * time.Hour
)

func tokenKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return prefixToken + hex.EncodeToString(sum[:])
}

func (s *Server) handleTokenCreate(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.TokenRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	if err := identity.ValidName(req.Node); err != nil {
		return nil, req.Node, errorf(http.StatusBadRequest, "node: %v", err)
	}
	if req.TTL == 0 {
		req.TTL = DefaultTokenTTL
	}
	if req.TTL < 0 || req.TTL > MaxTokenTTL {
		return nil, req.Node, errorf(http.StatusBadRequest, "ttl %s must be positive and at most %s", req.TTL, MaxTokenTTL)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, req.Node, err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now().UTC()
	rec := tokenRecord{Node: req.Node, Created: now, Expires: now.Add(req.TTL)}
	if err := putJSON(ctx, s.st, tokenKey(secret), rec); err != nil {
		return nil, req.Node, err
	}
	roots := s.CA().State()
	pin := api.Pin(roots.Authorities[roots.Active].Root)
	return api.TokenResponse{Token: api.TokenPrefix + secret + "." + pin, Node: req.Node, Expires: rec.Expires}, req.Node, nil
}

// handleJoin trades a one-time token for a node SVID. Every attempt, good or
// bad, is audited.
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req api.JoinRequest
	var resp api.CertResponse
	err := decode(r, &req)
	if err == nil {
		resp, err = s.join(ctx, req)
	}
	s.answerNodeAttempt(w, r, "node.join", "join-token", req.Node, true, resp, err)
}

// answerNodeAttempt counts a join or re-attestation attempt, records it in
// the audit log when audited (the actor is the node once it succeeded, the
// credential it offered otherwise), and answers it. An attempt that cannot
// be recorded is not answered with a certificate.
func (s *Server) answerNodeAttempt(w http.ResponseWriter, r *http.Request, action, method, node string, audited bool, resp any, err error) {
	entry := audit.Entry{Time: s.now().UTC(), Actor: method, Action: action, Target: node, Result: "ok",
		Detail: map[string]string{"method": method}}
	if err != nil {
		entry.Result = resultOf(err)
	} else {
		entry.Actor = mustNodeID(s, node)
	}
	if host, _, e := net.SplitHostPort(r.RemoteAddr); e == nil {
		entry.Detail["remote"] = host
	}
	s.m.calls.WithLabelValues(action, resultClass(entry.Result)).Inc()
	if audited {
		if aerr := s.cfg.Audit.Record(context.WithoutCancel(r.Context()), entry); aerr != nil {
			writeError(w, errorf(http.StatusServiceUnavailable, "the audit log is unavailable"))
			return
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func mustNodeID(s *Server, name string) string {
	id, err := identity.NodeID(s.td, name)
	if err != nil {
		return ""
	}
	return id.String()
}

func (s *Server) join(ctx context.Context, req api.JoinRequest) (api.CertResponse, error) {
	secret, _, err := api.SplitToken(req.Token)
	if err != nil {
		return api.CertResponse{}, errorf(http.StatusUnauthorized, "join token refused: malformed")
	}
	id, err := identity.NodeID(s.td, req.Node)
	if err != nil {
		return api.CertResponse{}, errorf(http.StatusBadRequest, "node: %v", err)
	}
	if _, _, err := net.SplitHostPort(req.MeshAddr); err != nil {
		return api.CertResponse{}, errorf(http.StatusBadRequest, "mesh_addr %q: %v", req.MeshAddr, err)
	}
	if req.NodeKey != nil {
		if _, err := parseNodeKey(req.NodeKey); err != nil {
			return api.CertResponse{}, errorf(http.StatusBadRequest, "%v", err)
		}
	}
	key := tokenKey(secret)
	var rec tokenRecord
	rev, err := getJSONRev(ctx, s.st, key, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return api.CertResponse{}, errorf(http.StatusUnauthorized, "join token refused: not issued by this control plane")
	}
	if err != nil {
		return api.CertResponse{}, err
	}
	now := s.now().UTC()
	switch {
	case !rec.UsedAt.IsZero():
		return api.CertResponse{}, errorf(http.StatusUnauthorized, "join token refused: already used at %s", rec.UsedAt.Format(time.RFC3339))
	case now.After(rec.Expires):
		return api.CertResponse{}, errorf(http.StatusUnauthorized, "join token refused: expired at %s", rec.Expires.Format(time.RFC3339))
	case rec.Node != req.Node:
		return api.CertResponse{}, errorf(http.StatusUnauthorized, "join token refused: it is bound to another node")
	}
	if s.trust.Revocations().IDs != nil && contains(s.trust.Revocations().IDs, id.String()) {
		return api.CertResponse{}, errorf(http.StatusForbidden, "node %q is revoked", req.Node)
	}
	chain, err := s.CA().SignCSR(req.CSR, id, s.nodeTTL())
	if err != nil {
		return api.CertResponse{}, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	s.m.issued.WithLabelValues("node").Inc()
	rec.UsedAt = now
	node := api.Node{Name: req.Node, MeshAddr: req.MeshAddr, Joined: now}
	// Spend the token and record the node in one transaction: two agents
	// racing with one token cannot both join.
	ops := []store.Op{
		store.Put(key, mustJSON(rec)),
		store.Put(prefixNode+req.Node, mustJSON(node)),
	}
	if req.NodeKey != nil {
		// A join with a token replaces whatever key was pinned before: the
		// token is the operator's word that this is the node.
		ops = append(ops, s.pinOp(req.Node, req.NodeKey))
	}
	_, err = s.st.Txn(ctx, []store.Cond{{Key: key, ModRevision: rev}}, ops)
	if errors.Is(err, store.ErrConflict) {
		return api.CertResponse{}, errorf(http.StatusUnauthorized, "join token refused: already used")
	}
	if err != nil {
		return api.CertResponse{}, err
	}
	return api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(s.CA().Bundle().X509Authorities()), TrustDomain: s.td.Name()}, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// handleRenew gives a node a fresh node SVID. A revoked node never gets here:
// identify refuses its certificate.
func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request, c *caller) {
	var req api.RenewRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	id, _ := identity.NodeID(s.td, c.Name)
	chain, err := s.CA().SignCSR(req.CSR, id, s.nodeTTL())
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "csr: %v", err))
		return
	}
	s.m.issued.WithLabelValues("node").Inc()
	if req.NodeKey != nil {
		if err := s.pinIfNone(r.Context(), c.Name, req.NodeKey); err != nil {
			writeError(w, err)
			return
		}
	}
	if req.MeshAddr != "" {
		var node api.Node
		if err := getJSON(r.Context(), s.st, prefixNode+c.Name, &node); err == nil && node.MeshAddr != req.MeshAddr {
			node.MeshAddr = req.MeshAddr
			if err := putJSON(r.Context(), s.st, prefixNode+c.Name, node); err != nil {
				writeError(w, err)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(s.CA().Bundle().X509Authorities()), TrustDomain: s.td.Name()})
}

// handleSVID signs a service SVID for the calling node, only for a service
// registered on that node: a node can never obtain another node's identity.
func (s *Server) handleSVID(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	var req api.SVIDRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var reg api.Registration
	err := getJSON(ctx, s.st, prefixService+req.Service, &reg)
	if errors.Is(err, store.ErrNotFound) || (err == nil && reg.Node != c.Name) {
		writeError(w, errorf(http.StatusForbidden, "service %q is not registered on node %q", req.Service, c.Name))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	id, err := identity.ServiceID(s.td, req.Service)
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "service: %v", err))
		return
	}
	if contains(s.trust.Revocations().IDs, id.String()) {
		writeError(w, errorf(http.StatusForbidden, "service %q is revoked", req.Service))
		return
	}
	chain, err := s.CA().SignCSR(req.CSR, id, 0)
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "csr: %v", err))
		return
	}
	s.m.issued.WithLabelValues("svc").Inc()
	rec := issuedRecord{Node: c.Name, Serial: identity.SerialHex(chain[0].SerialNumber), Expires: chain[0].NotAfter}
	if err := putJSON(ctx, s.st, prefixIssued+req.Service, rec); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(s.CA().Bundle().X509Authorities()), TrustDomain: s.td.Name()})
}

func (s *Server) handleNodeList(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	kvs, _, err := s.st.List(ctx, prefixNode)
	if err != nil {
		return nil, "", err
	}
	out := []api.Node{}
	for _, kv := range kvs {
		var n api.Node
		if err := jsonUnmarshal(kv.Value, &n); err != nil {
			return nil, "", err
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, "", nil
}

// certInfo summarises c.
func certInfo(c *x509.Certificate) api.CertInfo {
	sum := sha256.Sum256(c.Raw)
	return api.CertInfo{
		Subject: c.Subject.String(), Serial: identity.SerialHex(c.SerialNumber),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]),
	}
}

var _ = fmt.Sprintf
