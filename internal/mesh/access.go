package mesh

import (
	"crypto/x509"
	"fmt"
	"net"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/identity"
)

// AdminSource is how intentions name an administrator's identity as a
// source: "admin/<name>".
func AdminSource(id spiffeid.ID) (string, bool) {
	kind, name, ok := identity.Parse(id)
	if !ok || kind != identity.KindAdmin {
		return "", false
	}
	return identity.KindAdmin + "/" + name, true
}

// AccessHeader is the tunnel header version of the answer ServeAccess
// writes: the access-forward protocol (ALPN moat-access-forward/1) is
// always answered with version 2.
const AccessHeader = headerV2

// ServeAccess carries one administrator's forwarded connection to service
// on port, as an inbound stream from the source "admin/<name>": the caller
// has authenticated conn with the administrator's access-grant certificate
// (chain) and checked the grant; the intentions still decide, and the
// stream is recorded, answered and cut like any other (the tunnel header's
// answer is written to conn first). It returns when the connection ends.
func (m *Mesh) ServeAccess(conn net.Conn, peer spiffeid.ID, chain []*x509.Certificate, tlsVersion uint16, service string, port int) error {
	src, ok := AdminSource(peer)
	if !ok {
		return fmt.Errorf("mesh: %q is not an administrator", peer)
	}
	start := m.now()
	m.stats.in.Add(1)
	t := &inTunnel{peer: peer, src: src, peerChain: chain, remote: conn.RemoteAddr(), version: tlsVersion, hdr: AccessHeader}
	rec := m.newRecord(start, inboundDir)
	rec.srcID, rec.srcSvc, rec.srcAddr, rec.tls = peer.String(), src, conn.RemoteAddr(), tlsVersion
	req := Request{Service: service, Port: port, ConnID: flow.NewID()}
	rec.connID = req.ConnID
	svc, resp := m.admit(src, req)
	m.finishInbound(rec, conn, t, svc, req, resp)
	if !resp.Allowed() {
		return &RefusedError{Src: src, Dst: service, Port: port, Response: resp}
	}
	return nil
}
