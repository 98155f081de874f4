package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/identity"
	"moat/internal/store"
)

// prefixNodeKey holds each node's pinned attestation key: nodekey/<node>.
const prefixNodeKey = "nodekey/"

// nodeKeyRecord is a node's long-term attestation key, pinned at join (or
// at the first renewal of a node that joined before keys were pinned).
type nodeKeyRecord struct {
	Key    []byte    `json:"key"` // PKIX DER, ECDSA P-256
	Pinned time.Time `json:"pinned"`
}

// parseNodeKey accepts a PKIX ECDSA P-256 public key.
func parseNodeKey(der []byte) (*ecdsa.PublicKey, error) {
	if len(der) > 1024 {
		return nil, errors.New("node key: too long")
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("node key: %v", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("node key: want an ECDSA P-256 key")
	}
	return ek, nil
}

// pinOp returns the op that pins der as node's key.
func (s *Server) pinOp(node string, der []byte) store.Op {
	return store.Put(prefixNodeKey+node, mustJSON(nodeKeyRecord{Key: der, Pinned: s.now().UTC()}))
}

// pinIfNone pins der for a node that has no key yet (a node that joined
// before keys were pinned). A pinned key is never replaced this way: a
// stolen node certificate must not be able to swap in the thief's key.
func (s *Server) pinIfNone(ctx context.Context, node string, der []byte) error {
	if _, err := parseNodeKey(der); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	_, err := s.st.Txn(ctx, []store.Cond{{Key: prefixNodeKey + node}}, []store.Op{s.pinOp(node, der)})
	if errors.Is(err, store.ErrConflict) {
		return nil // already pinned
	}
	return err
}

// handleReattest gives a node whose certificate expired (or was issued
// under a root since retired) a new one, on proof of the key pinned at
// join. Like a join, an attempt is anonymous until its proof holds: a
// refused one is only counted (refusals.go), and against its source
// (failgate.go); one whose proof holds is audited as intent and outcome
// around the change.
func (s *Server) handleReattest(w http.ResponseWriter, r *http.Request) {
	const action = "node.reattest"
	call, ok := s.admitPublic(w, r, action)
	if !ok {
		return
	}
	defer call.end()
	ctx := r.Context()
	var req api.ReattestRequest
	err := decodeLimit(r, &req, maxNodeBody)
	var node heldNode
	if err == nil {
		node, err = s.checkReattest(ctx, req)
	}
	if err == nil {
		err = s.holdCredential(ctx, req.Node)
	}
	if err != nil {
		call.refuse(reasonOf(err), err)
		writeError(w, err)
		return
	}
	reqID := requestID()
	detail := map[string]string{"request": reqID, "method": methodNodeKey, "mesh_addr": req.MeshAddr}
	if host, _, e := net.SplitHostPort(r.RemoteAddr); e == nil {
		detail["remote"] = host
	}
	intent := audit.Entry{Time: s.now().UTC(), Actor: methodNodeKey, Action: action, Target: req.Node, Result: resultPending, Detail: detail}
	if aerr := s.record(ctx, intent); aerr != nil {
		s.log.Error("audit: re-attestation intent not recorded; refused", "node", req.Node, "err", aerr)
		s.m.calls.WithLabelValues(action, "unaudited").Inc()
		writeError(w, errorf(http.StatusServiceUnavailable, "the audit log cannot be written; nothing was changed"))
		return
	}
	resp, err := s.reattest(ctx, req, node)
	entry := audit.Entry{Time: s.now().UTC(), Actor: methodNodeKey, Action: action, Target: req.Node, Result: "ok",
		Detail: map[string]string{"request": reqID, "method": methodNodeKey}}
	if err != nil {
		entry.Result = resultOf(err)
	} else {
		entry.Actor = mustNodeID(s, req.Node)
	}
	s.answerNodeCall(ctx, w, action, reqID, entry, resp, err)
}

// methodNodeKey names re-attestation by the pinned node key in audit
// entries and metrics.
const methodNodeKey = "node-key"

// checkReattest checks everything a re-attestation claims before
// anything is recorded or signed: the name, the pinned key, the time, the
// signature, and that the node is registered and not revoked.
func (s *Server) checkReattest(ctx context.Context, req api.ReattestRequest) (heldNode, error) {
	if len(req.Node) > 63 {
		return heldNode{}, errorf(http.StatusBadRequest, "node: a name of %d bytes, more than 63", len(req.Node))
	}
	id, err := identity.NodeID(s.td, req.Node)
	if err != nil {
		return heldNode{}, errorf(http.StatusBadRequest, "node: %v", err)
	}
	if req.MeshAddr != "" {
		if err := validateMeshAddr(req.MeshAddr); err != nil {
			return heldNode{}, err
		}
	}
	if _, err := ca.ParseCSR(req.CSR); err != nil {
		return heldNode{}, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	var rec nodeKeyRecord
	err = getJSON(ctx, s.st, prefixNodeKey+req.Node, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return heldNode{}, errorf(http.StatusUnauthorized, "node %q has no pinned node key: re-join it with a token", req.Node)
	}
	if err != nil {
		return heldNode{}, err
	}
	pub, err := parseNodeKey(rec.Key)
	if err != nil {
		return heldNode{}, err
	}
	if skew := s.now().Sub(req.Time); skew > api.MaxReattestSkew || skew < -api.MaxReattestSkew {
		return heldNode{}, errorf(http.StatusUnauthorized, "re-attestation refused: its time is %s from the server's clock", skew.Round(time.Second))
	}
	// The signature covers every field the request acts on (the CSR, the
	// mesh address): one altered on the way, or in a replay, fails it.
	sum := sha256.Sum256(api.ReattestPayload(s.td.Name(), req))
	if !ecdsa.VerifyASN1(pub, sum[:], req.Signature) {
		return heldNode{}, errorf(http.StatusUnauthorized, "re-attestation refused: the signature is not by the node key pinned at join over this request")
	}
	// The list as stored: this server's copy follows the store's watch.
	rev, err := s.currentRevocations(ctx)
	if err != nil {
		return heldNode{}, err
	}
	if contains(rev.IDs, id.String()) {
		return heldNode{}, errorf(http.StatusForbidden, "node %q is revoked", req.Node)
	}
	// Whoever holds the node key (root on the node) signs as many as it
	// likes, and a signed request holds for MaxReattestSkew: each that
	// holds is two audit entries and may move the mesh address, so they
	// are held to the rate of a renewal's address changes. Only a proof
	// that holds spends the node's budget, so strangers cannot spend it.
	if !s.nodeLimit(req.Node, limitReattest).AllowN(s.now(), 1) {
		return heldNode{}, errorf(http.StatusTooManyRequests, "node %q re-attested too often; try again later", req.Node)
	}
	var node heldNode
	if node.rev, err = getJSONRev(ctx, s.st, prefixNode+req.Node, &node.rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return heldNode{}, errorf(http.StatusUnauthorized, "node %q is no longer registered: re-join it with a token", req.Node)
		}
		return heldNode{}, err
	}
	return node, nil
}

// heldNode is a node's record as read, and its store revision.
type heldNode struct {
	rec nodeRecord
	rev int64
}

// reattest signs the node's new certificate and records a changed mesh
// address.
func (s *Server) reattest(ctx context.Context, req api.ReattestRequest, node heldNode) (api.CertResponse, error) {
	chain, err := s.signNode(req.CSR, req.Node, node.rec.JoinID)
	if err != nil {
		return api.CertResponse{}, err
	}
	s.m.issued.WithLabelValues("node").Inc()
	if req.MeshAddr != "" && req.MeshAddr != node.rec.MeshAddr {
		// Only over the record read: a join meanwhile (a new join ID, a
		// new node key) is not undone.
		node.rec.MeshAddr = req.MeshAddr
		_, err := s.st.Txn(ctx, []store.Cond{{Key: prefixNode + req.Node, ModRevision: node.rev}}, []store.Op{store.Put(prefixNode+req.Node, mustJSON(node.rec))})
		if errors.Is(err, store.ErrConflict) {
			return api.CertResponse{}, errorf(http.StatusConflict, "node %q changed meanwhile: re-attest again", req.Node)
		}
		if err != nil {
			return api.CertResponse{}, err
		}
	}
	return s.certResponse(chain), nil
}
