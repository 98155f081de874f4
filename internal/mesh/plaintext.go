package mesh

import (
	"net"
	"time"
)

// handlePlaintext serves one ordinary client on a permissive service's
// plaintext listener. The client speaks its own protocol from the first
// byte: there is no tunnel header and no answer. It has no identity, so
// the policy admits it only by its address (a rule's from_plaintext); a
// refused client is simply closed, and its record says why.
func (m *Mesh) handlePlaintext(l *localListener, c net.Conn) {
	start := m.now()
	m.stats.in.Add(1)
	rec := m.newRecord(start, inboundDir)
	rec.srcAddr = c.RemoteAddr()
	req := Request{Service: l.spec.svc}
	if svc, ok := m.service(l.spec.svc); ok {
		req.Port = svc.Port
	}
	svc, resp := m.admitPlaintext(addrOf(c.RemoteAddr()), req)
	_ = c.SetDeadline(time.Time{})
	m.finishInbound(rec, c, nil, svc, req, resp)
}
