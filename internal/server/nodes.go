package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
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

// maxNodeBody bounds the body of a join or renewal: a token, a name, an
// address and a CSR.
const maxNodeBody = 16 << 10

// handleJoin trades a one-time token for a node SVID. A join is anonymous
// until its token holds, so a refused one is only counted (refusals.go),
// and against its source (failgate.go); one whose token holds is audited
// as intent and outcome around the change, like an admin call.
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	const action = "node.join"
	call, ok := s.admitPublic(w, r, action)
	if !ok {
		return
	}
	defer call.end()
	ctx := r.Context()
	var req api.JoinRequest
	err := decodeLimit(r, &req, maxNodeBody)
	if err == nil {
		err = s.validateJoin(req)
	}
	if err != nil {
		call.refuse(reasonOf(err), err)
		writeError(w, err)
		return
	}
	tok, err := s.checkToken(ctx, req)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			reason := reasonBadToken
			if he.code == http.StatusForbidden {
				reason = reasonForbidden
			}
			call.refuse(reason, err)
		}
		writeError(w, err)
		return
	}
	if err := s.holdCredential(ctx, req.Node); err != nil {
		writeError(w, err)
		return
	}
	reqID := requestID()
	detail := map[string]string{"request": reqID, "token": tok.id, "mesh_addr": req.MeshAddr}
	if host, _, e := net.SplitHostPort(r.RemoteAddr); e == nil {
		detail["remote"] = host
	}
	intent := audit.Entry{Time: s.now().UTC(), Actor: "join-token", Action: action, Target: req.Node, Result: resultPending, Detail: detail}
	if aerr := s.record(ctx, intent); aerr != nil {
		s.log.Error("audit: join intent not recorded; join refused", "node", req.Node, "err", aerr)
		s.m.calls.WithLabelValues(action, "unaudited").Inc()
		writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written; nothing was changed"))
		return
	}
	resp, revoked, err := s.join(ctx, req, tok)
	entry := audit.Entry{Time: s.now().UTC(), Actor: "join-token", Action: action, Target: req.Node, Result: "ok",
		Detail: map[string]string{"request": reqID}}
	if revoked > 0 {
		entry.Detail["svids_revoked"] = strconv.Itoa(revoked)
	}
	if err != nil {
		entry.Result = resultOf(err)
	} else {
		entry.Actor = mustNodeID(s, req.Node)
	}
	s.answerNodeCall(ctx, w, action, reqID, entry, resp, err)
}

func mustNodeID(s *Server, name string) string {
	id, err := identity.NodeID(s.td, name)
	if err != nil {
		return ""
	}
	return id.String()
}

// validateJoin checks every field of a join request before anything is
// looked up or recorded.
func (s *Server) validateJoin(req api.JoinRequest) error {
	if len(req.Node) > 63 {
		return errorf(http.StatusBadRequest, "node: a name of %d bytes, more than 63", len(req.Node))
	}
	if _, err := identity.NodeID(s.td, req.Node); err != nil {
		return errorf(http.StatusBadRequest, "node: %v", err)
	}
	if err := validateMeshAddr(req.MeshAddr); err != nil {
		return err
	}
	// A CSR that cannot be signed would fail the join after its intent is
	// on record, leaving the token unspent for another try: each try two
	// audit entries, for as long as the token lives.
	if _, err := ca.ParseCSR(req.CSR); err != nil {
		return errorf(http.StatusBadRequest, "csr: %v", err)
	}
	if req.NodeKey != nil {
		if _, err := parseNodeKey(req.NodeKey); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	if len(req.Token) > 256 {
		return errorf(http.StatusUnauthorized, "join token refused: malformed")
	}
	if _, _, err := api.SplitToken(req.Token); err != nil {
		return errorf(http.StatusUnauthorized, "join token refused: malformed")
	}
	return nil
}

// heldToken is a join token found valid for a join request.
type heldToken struct {
	key string // its store key
	id  string // a short name for it in the audit log (from its hash)
	rec tokenRecord
	rev int64
}

// checkToken finds the request's token and checks that it may be spent
// now by this node.
func (s *Server) checkToken(ctx context.Context, req api.JoinRequest) (heldToken, error) {
	secret, _, _ := api.SplitToken(req.Token)
	t := heldToken{key: tokenKey(secret)}
	t.id = t.key[len(prefixToken):][:12]
	var err error
	t.rev, err = getJSONRev(ctx, s.st, t.key, &t.rec)
	if errors.Is(err, store.ErrNotFound) {
		return t, errorf(http.StatusUnauthorized, "join token refused: not issued by this control plane")
	}
	if err != nil {
		return t, err
	}
	now := s.now().UTC()
	switch {
	case !t.rec.UsedAt.IsZero():
		return t, errorf(http.StatusUnauthorized, "join token refused: already used at %s", t.rec.UsedAt.Format(time.RFC3339))
	case now.After(t.rec.Expires):
		return t, errorf(http.StatusUnauthorized, "join token refused: expired at %s", t.rec.Expires.Format(time.RFC3339))
	case t.rec.Node != req.Node:
		return t, errorf(http.StatusUnauthorized, "join token refused: it is bound to another node")
	}
	// The list as stored, not this server's copy, which follows the
	// store's watch and may not hold a revocation made through another
	// server yet.
	rev, err := s.currentRevocations(ctx)
	if err != nil {
		return t, err
	}
	if contains(rev.IDs, mustNodeID(s, req.Node)) {
		return t, errorf(http.StatusForbidden, "node %q is revoked", req.Node)
	}
	return t, nil
}

// join spends the token and signs the node's SVID, and revokes those of
// the node's services issued before (revokeEarlierJoin): it returns how
// many.
func (s *Server) join(ctx context.Context, req api.JoinRequest, tok heldToken) (api.CertResponse, int, error) {
	joinID, err := newID()
	if err != nil {
		return api.CertResponse{}, 0, err
	}
	chain, err := s.signNode(req.CSR, req.Node, joinID)
	if err != nil {
		return api.CertResponse{}, 0, err
	}
	s.m.issued.WithLabelValues("node").Inc()
	now := s.now().UTC()
	rec := tok.rec
	rec.UsedAt = now
	node := nodeRecord{Node: api.Node{Name: req.Node, MeshAddr: req.MeshAddr, Joined: now}, JoinID: joinID}
	// Spend the token and record the node in one transaction: two agents
	// racing with one token cannot both join.
	ops := []store.Op{
		store.Put(tok.key, mustJSON(rec)),
		store.Put(prefixNode+req.Node, mustJSON(node)),
	}
	// A join with a token replaces whatever key was pinned before, or,
	// pinning none, drops it: the token is the operator's word that this
	// is the node, and the earlier join's key must not re-attest as it.
	if req.NodeKey != nil {
		ops = append(ops, s.pinOp(req.Node, req.NodeKey))
	} else {
		ops = append(ops, store.Delete(prefixNodeKey+req.Node))
	}
	_, err = s.st.Txn(ctx, []store.Cond{{Key: tok.key, ModRevision: tok.rev}}, ops)
	if errors.Is(err, store.ErrConflict) {
		return api.CertResponse{}, 0, errorf(http.StatusUnauthorized, "join token refused: already used")
	}
	if err != nil {
		return api.CertResponse{}, 0, err
	}
	n, err := s.revokeEarlierJoin(ctx, req.Node)
	if err != nil {
		return api.CertResponse{}, 0, err
	}
	return s.certResponse(chain), n, nil
}

// revokeEarlierJoin revokes the unexpired SVIDs issued to node before its
// latest join, which whoever held the earlier join's certificate may hold,
// and returns how many it added to the list. It runs once the join is
// stored: an SVID whose record it does not read is recorded after it, and
// its request then sees the new join and is refused (handleSVID).
func (s *Server) revokeEarlierJoin(ctx context.Context, node string) (int, error) {
	kvs, _, err := s.st.List(ctx, prefixIssued+node+"/")
	if err != nil {
		return 0, err
	}
	stored, err := s.currentRevocations(ctx)
	if err != nil {
		return 0, err
	}
	serials := liveSerials(kvs, s.now(), func(r issuedRecord) bool { return !slices.Contains(stored.Serials, r.Serial) })
	if len(serials) == 0 {
		return 0, nil
	}
	if _, err := s.addRevocations(ctx, nil, serials); err != nil {
		return 0, err
	}
	return len(serials), nil
}

// nodeRecord is a node as stored: what agents (over the watch stream) and
// administrators read of it, and the ID of its latest join, which its node
// certificates carry (identity.JoinPolicy) and which the server keeps to
// itself.
type nodeRecord struct {
	api.Node
	// JoinID is "" for a node whose latest join was before joins had an ID.
	JoinID string `json:"join_id,omitempty"`
}

// signNode signs a node certificate for node over the key of csr, marked
// with the node's join (identity.JoinPolicy; none for a join without an
// ID), for the node certificates' life.
func (s *Server) signNode(csr []byte, node, join string) ([]*x509.Certificate, error) {
	id, err := identity.NodeID(s.td, node)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "node: %v", err)
	}
	req, err := ca.ParseCSR(csr)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	var pols []x509.OID
	if join != "" {
		pol, err := identity.JoinPolicy(join)
		if err != nil {
			return nil, err
		}
		pols = append(pols, pol)
	}
	chain, err := s.CA().SignWithPolicies(req.PublicKey, id, s.nodeTTL(), pols)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	return chain, nil
}

// certResponse answers a node with its chain, the bundle and the audit
// log's verifier key.
func (s *Server) certResponse(chain []*x509.Certificate) api.CertResponse {
	return api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(s.CA().Bundle().X509Authorities()), TrustDomain: s.td.Name(), AuditKey: s.auditKey()}
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
// identify refuses its certificate. A new mesh address is validated, held
// to a rate per node, and audited as intent and outcome around the change.
func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request, c *caller) {
	const action = "node.update"
	var req api.RenewRequest
	err := decodeLimit(r, &req, maxNodeBody)
	if err == nil && req.MeshAddr != "" {
		err = validateMeshAddr(req.MeshAddr)
	}
	if err == nil {
		err = s.notRevoked(r.Context(), c)
	}
	if err == nil {
		err = s.holdCredential(r.Context(), c.Name)
	}
	if err != nil {
		s.refuse(r, c, "node.renew", err)
		writeError(w, err)
		return
	}
	chain, err := s.signNode(req.CSR, c.Name, c.join)
	if err != nil {
		s.refuse(r, c, "node.renew", err)
		writeError(w, err)
		return
	}
	ctx := r.Context()
	if req.NodeKey != nil {
		if err := s.pinIfNone(ctx, c.Name, req.NodeKey); err != nil {
			writeError(w, err)
			return
		}
	}
	if req.MeshAddr != "" {
		var node nodeRecord
		rev, err := getJSONRev(ctx, s.st, prefixNode+c.Name, &node)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			writeError(w, err)
			return
		}
		if err == nil && node.MeshAddr != req.MeshAddr {
			if !s.nodeLimit(c.Name, limitMeshAddr).AllowN(s.now(), 1) {
				err := errorf(http.StatusTooManyRequests, "mesh address changed too often; try again later")
				s.refuse(r, c, action, err)
				writeError(w, err)
				return
			}
			reqID := requestID()
			intent := audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: "node", Action: action, Target: c.Name, Result: resultPending,
				Detail: map[string]string{"request": reqID, "mesh_addr": req.MeshAddr, "previous": node.MeshAddr}}
			if aerr := s.record(ctx, intent); aerr != nil {
				writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written; nothing was changed"))
				return
			}
			prev := node.MeshAddr
			node.MeshAddr = req.MeshAddr
			_, err := s.st.Txn(ctx, []store.Cond{{Key: prefixNode + c.Name, ModRevision: rev}}, []store.Op{store.Put(prefixNode+c.Name, mustJSON(node))})
			entry := audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: "node", Action: action, Target: c.Name, Result: "ok",
				Detail: map[string]string{"request": reqID, "mesh_addr": req.MeshAddr, "previous": prev}}
			if err != nil {
				entry.Result = resultOf(err)
			}
			if aerr := s.record(ctx, entry); aerr != nil {
				writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written: request %s is on record, its outcome is not", reqID))
				return
			}
			if err != nil {
				writeError(w, err)
				return
			}
		}
	}
	s.m.issued.WithLabelValues("node").Inc()
	writeJSON(w, http.StatusOK, s.certResponse(chain))
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
	if err := s.holdCredential(ctx, c.Name); err != nil {
		writeError(w, err)
		return
	}
	live, err := s.issuedTo(ctx, c.Name, req.Service)
	if err != nil {
		writeError(w, err)
		return
	}
	if live >= maxLiveSVIDs {
		err := errorf(http.StatusTooManyRequests, "node %q holds %d live SVIDs for %q already; renew at half life", c.Name, live, req.Service)
		s.refuse(r, c, "svid.sign", err)
		writeError(w, err)
		return
	}
	chain, err := s.CA().SignCSR(req.CSR, id, 0)
	if err != nil {
		writeError(w, errorf(http.StatusBadRequest, "csr: %v", err))
		return
	}
	// The serial is on record under the node before the SVID leaves, so
	// that revoking the node revokes it; and a node revoked meanwhile
	// does not get it.
	leaf := chain[0]
	rec := issuedRecord{Node: c.Name, Service: req.Service, Serial: identity.SerialHex(leaf.SerialNumber), Expires: leaf.NotAfter}
	if err := putJSON(ctx, s.st, issuedKey(c.Name, rec.Serial), rec); err != nil {
		writeError(w, err)
		return
	}
	// Requests sent at once all pass the count above before any is on
	// record: count again with this one on record, and give it up if it
	// is one too many. Of requests that interleave, each one answered saw
	// every other one answered before it on record, so no more than
	// maxLiveSVIDs are answered.
	if live, err := s.issuedTo(ctx, c.Name, req.Service); err != nil || live > maxLiveSVIDs {
		if _, derr := s.st.Delete(ctx, issuedKey(c.Name, rec.Serial)); derr != nil && err == nil {
			err = derr
		}
		if err == nil {
			err = errorf(http.StatusTooManyRequests, "node %q holds %d live SVIDs for %q already; renew at half life", c.Name, maxLiveSVIDs, req.Service)
			s.refuse(r, c, "svid.sign", err)
		}
		writeError(w, err)
		return
	}
	// Likewise a service moved off the node meanwhile: either this read
	// sees the move, or the move's second look sees the record
	// (placeService).
	reg = api.Registration{}
	if err := getJSON(ctx, s.st, prefixService+req.Service, &reg); (err != nil && !errors.Is(err, store.ErrNotFound)) || reg.Node != c.Name {
		if _, derr := s.st.Delete(ctx, issuedKey(c.Name, rec.Serial)); derr != nil && err == nil {
			err = derr
		}
		if err == nil {
			err = errorf(http.StatusForbidden, "service %q is not registered on node %q", req.Service, c.Name)
		}
		writeError(w, err)
		return
	}
	// And a join of the node meanwhile: either this read sees it, or the
	// join's revocation, after it was stored, sees the record
	// (revokeEarlierJoin).
	var node nodeRecord
	if err := getJSON(ctx, s.st, prefixNode+c.Name, &node); err != nil || node.JoinID != c.join {
		if _, derr := s.st.Delete(ctx, issuedKey(c.Name, rec.Serial)); derr != nil && err == nil {
			err = derr
		}
		if err == nil {
			err = errorf(http.StatusUnauthorized, "client certificate refused: it is of an earlier join of node %q", c.Name)
		}
		writeError(w, err)
		return
	}
	// The revocations as stored, not this server's copy (it follows the
	// store's watch and may lag): of the node, its certificate, and the
	// service.
	stored, err := s.storedTrust(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	if nid, _ := identity.NodeID(s.td, c.Name); stored.Revoked(c.Leaf, nid) {
		writeError(w, errorf(http.StatusForbidden, "node %q is revoked", c.Name))
		return
	}
	if contains(stored.Revocations().IDs, id.String()) {
		writeError(w, errorf(http.StatusForbidden, "service %q is revoked", req.Service))
		return
	}
	s.m.issued.WithLabelValues("svc").Inc()
	writeJSON(w, http.StatusOK, s.certResponse(chain))
}

// maxLiveSVIDs bounds the unexpired SVIDs one node may hold for one
// service: an agent renews at half life, so it holds two or three; more is
// a node stockpiling identities (and store records).
const maxLiveSVIDs = 8

func issuedKey(node, serial string) string { return prefixIssued + node + "/" + serial }

// issuedTo counts the unexpired SVIDs issued to node for service that are
// not revoked (a node joined again is not held back by those of its
// earlier join), and deletes the node's records of expired ones.
func (s *Server) issuedTo(ctx context.Context, node, service string) (int, error) {
	kvs, _, err := s.st.List(ctx, prefixIssued+node+"/")
	if err != nil {
		return 0, err
	}
	now := s.now()
	revoked := s.trust.Revocations().Serials
	live := 0
	var expired []store.Op
	for _, kv := range kvs {
		var rec issuedRecord
		if json.Unmarshal(kv.Value, &rec) != nil || !now.Before(rec.Expires) {
			if len(expired) < store.MaxTxnOps {
				expired = append(expired, store.Delete(kv.Key))
			}
			continue
		}
		if rec.Service == service && !slices.Contains(revoked, rec.Serial) {
			live++
		}
	}
	if len(expired) > 0 {
		if _, err := s.st.Txn(ctx, nil, expired); err != nil {
			return 0, err
		}
	}
	return live, nil
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

// answerNodeCall counts a node call's outcome, records its audit entry and
// answers: with resp when the call succeeded, its error when it failed,
// and 503 when the outcome could not be recorded (the request is on
// record, its outcome is not).
func (s *Server) answerNodeCall(ctx context.Context, w http.ResponseWriter, action, reqID string, entry audit.Entry, resp any, err error) {
	s.m.calls.WithLabelValues(action, resultClass(entry.Result)).Inc()
	if aerr := s.record(ctx, entry); aerr != nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written: request %s is on record, its outcome is not", reqID))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
