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
// join. Attempts against a node with a pinned key are audited; attempts
// naming nodes without one are only counted, so strangers cannot fill the
// audit log.
func (s *Server) handleReattest(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var req api.ReattestRequest
	if err := decode(r, &req); err != nil {
		s.m.calls.WithLabelValues("node.reattest", "denied").Inc()
		writeError(w, err)
		return
	}
	resp, pinned, err := s.reattest(ctx, req)
	s.answerNodeAttempt(w, r, "node.reattest", "node-key", req.Node, pinned, resp, err)
}

// reattest checks a re-attestation and signs the node's new certificate.
// pinned reports whether the named node has a pinned key (the attempt is
// then worth an audit entry).
func (s *Server) reattest(ctx context.Context, req api.ReattestRequest) (_ api.CertResponse, pinned bool, _ error) {
	id, err := identity.NodeID(s.td, req.Node)
	if err != nil {
		return api.CertResponse{}, false, errorf(http.StatusBadRequest, "node: %v", err)
	}
	var rec nodeKeyRecord
	err = getJSON(ctx, s.st, prefixNodeKey+req.Node, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return api.CertResponse{}, false, errorf(http.StatusUnauthorized, "node %q has no pinned node key: re-join it with a token", req.Node)
	}
	if err != nil {
		return api.CertResponse{}, false, err
	}
	pub, err := parseNodeKey(rec.Key)
	if err != nil {
		return api.CertResponse{}, true, err
	}
	if skew := s.now().Sub(req.Time); skew > api.MaxReattestSkew || skew < -api.MaxReattestSkew {
		return api.CertResponse{}, true, errorf(http.StatusUnauthorized, "re-attestation refused: its time is %s from the server's clock", skew.Round(time.Second))
	}
	sum := sha256.Sum256(api.ReattestPayload(s.td.Name(), req.Node, req.Time, req.CSR))
	if !ecdsa.VerifyASN1(pub, sum[:], req.Signature) {
		return api.CertResponse{}, true, errorf(http.StatusUnauthorized, "re-attestation refused: the signature is not by the node key pinned at join")
	}
	if contains(s.trust.Revocations().IDs, id.String()) {
		return api.CertResponse{}, true, errorf(http.StatusForbidden, "node %q is revoked", req.Node)
	}
	var node api.Node
	if err := getJSON(ctx, s.st, prefixNode+req.Node, &node); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return api.CertResponse{}, true, errorf(http.StatusUnauthorized, "node %q is no longer registered: re-join it with a token", req.Node)
		}
		return api.CertResponse{}, true, err
	}
	chain, err := s.CA().SignCSR(req.CSR, id, s.nodeTTL())
	if err != nil {
		return api.CertResponse{}, true, errorf(http.StatusBadRequest, "csr: %v", err)
	}
	s.m.issued.WithLabelValues("node").Inc()
	if req.MeshAddr != "" && req.MeshAddr != node.MeshAddr {
		if _, _, err := net.SplitHostPort(req.MeshAddr); err != nil {
			return api.CertResponse{}, true, errorf(http.StatusBadRequest, "mesh_addr %q: %v", req.MeshAddr, err)
		}
		node.MeshAddr = req.MeshAddr
		if err := putJSON(ctx, s.st, prefixNode+req.Node, node); err != nil {
			return api.CertResponse{}, true, err
		}
	}
	return api.CertResponse{Chain: api.DERs(chain), Bundle: api.DERs(s.CA().Bundle().X509Authorities()), TrustDomain: s.td.Name()}, true, nil
}
