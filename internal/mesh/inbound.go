package mesh

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/identity"
	"moat/internal/mtls"
	"moat/internal/policy"
)

// RulePermissive names the decision that let a plaintext connection into a
// PERMISSIVE service.
const RulePermissive = "permissive"

// tunnelReady is the byte the destination writes right after a successful
// handshake, so that a source refused in VerifyConnection learns why from
// the TLS alert before it opens streams.
const tunnelReady = 0x01

// alpnTunnel names the tunnel protocol in the TLS handshake, so a mesh port
// and another mTLS endpoint of moat cannot be mistaken for each other.
const alpnTunnel = "moat-tunnel/1"

// inTunnel is an accepted mTLS tunnel.
type inTunnel struct {
	conn      *tls.Conn
	sess      *yamux.Session
	peer      spiffeid.ID
	src       string // peer's service name, "" when the peer is not a service
	peerChain []*x509.Certificate
	remote    net.Addr
	version   uint16
}

// inStream is one live inbound connection to an app.
type inStream struct {
	tun       *inTunnel // nil for plaintext
	src, dst  string
	port      int
	plaintext bool
	down, app net.Conn

	mu       sync.Mutex // guards cutWhy
	cutWhy   string
	closeOne sync.Once
}

func (s *inStream) cut(reason string) {
	s.mu.Lock()
	if s.cutWhy == "" {
		s.cutWhy = reason
	}
	s.mu.Unlock()
	_ = s.Close()
}

func (s *inStream) reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cutWhy
}

// Close closes both sides at once.
func (s *inStream) Close() error {
	s.closeOne.Do(func() {
		_ = s.down.SetDeadline(time.Unix(1, 0))
		_ = s.app.Close()
		_ = s.down.Close()
	})
	return nil
}

func (m *Mesh) serverTLS() (*tls.Config, error) {
	return mtls.Server(mtls.ServerConfig{
		Verifier:   m.cfg.Trust,
		Now:        m.now,
		NextProtos: []string{alpnTunnel},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if _, ok := m.service(hello.ServerName); !ok {
				return nil, fmt.Errorf("mesh: no service %q on this node", hello.ServerName)
			}
			return m.cfg.Identities.Certificate(hello.ServerName)
		},
		Authorize: func(peer spiffeid.ID, cs tls.ConnectionState) error {
			if _, ok := identity.ServiceName(peer); !ok {
				return errors.New("mesh: only service identities may open tunnels")
			}
			if cs.NegotiatedProtocol != alpnTunnel {
				return fmt.Errorf("mesh: client did not offer ALPN %q", alpnTunnel)
			}
			return nil
		},
	})
}

// peekConn replays the bytes read to tell TLS from plaintext.
type peekConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *peekConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return p.Conn.Close()
}

func (m *Mesh) serveConn(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(m.cfg.DialTimeout))
	pc := &peekConn{Conn: c, r: bufio.NewReaderSize(c, 512)}
	first, err := pc.r.Peek(1)
	if err != nil {
		_ = c.Close()
		return
	}
	if first[0] != 0x16 { // not a TLS handshake record
		m.servePlaintext(pc)
		return
	}
	start := m.now()
	tc := tls.Server(pc, m.srvTLS)
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.DialTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err == nil {
		_, err = tc.Write([]byte{tunnelReady})
	}
	if err != nil {
		m.stats.hsFail.Add(1)
		m.log.Info("mesh: inbound handshake refused", logRemote, c.RemoteAddr().String(), logReason, err.Error())
		m.handshakeRecord(start, inboundDir, c.RemoteAddr(), c.LocalAddr(), "", "", claimedID(tc), err)
		_ = c.Close()
		return
	}
	m.stats.serverHS.Add(1)
	_ = c.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	peer, _ := identity.LeafID(cs.PeerCertificates[0]) // verified in VerifyConnection
	src, _ := identity.ServiceName(peer)
	sess, err := yamux.Server(&frameConn{Conn: tc}, m.mux)
	if err != nil {
		_ = c.Close()
		return
	}
	t := &inTunnel{conn: tc, sess: sess, peer: peer, src: src, peerChain: cs.PeerCertificates, remote: c.RemoteAddr(), version: cs.Version}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = tc.Close()
		return
	}
	m.inbound[t] = struct{}{}
	m.mu.Unlock()
	// A tunnel lives no longer than the SVID that opened it.
	expiry := time.AfterFunc(cs.PeerCertificates[0].NotAfter.Sub(m.now()), func() { _ = tc.Close() })
	defer func() {
		expiry.Stop()
		_ = sess.Close()
		m.mu.Lock()
		delete(m.inbound, t)
		m.mu.Unlock()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.serveStream(t, st)
		}()
	}
}

// claimedID is the SPIFFE ID a peer presented, verified or not.
func claimedID(tc *tls.Conn) string {
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return ""
	}
	id, err := identity.LeafID(certs[0])
	if err != nil {
		return ""
	}
	return id.String()
}

// admit decides a request from src (a service name, "" for plaintext).
func (m *Mesh) admit(src string, req Request, plaintext bool) (Service, Response) {
	svc, ok := m.service(req.Service)
	if !ok {
		return svc, Response{Status: StatusError, Reason: fmt.Sprintf("no service %q on this node", req.Service)}
	}
	if req.Port != svc.Port {
		return svc, Response{Status: StatusError, Reason: fmt.Sprintf("service %q does not serve port %d", req.Service, req.Port)}
	}
	if plaintext {
		if m.peerMode(svc) != policy.Permissive {
			return svc, Response{Status: StatusError, Reason: fmt.Sprintf("service %q is strict: plaintext refused, use mutual TLS", req.Service)}
		}
		return svc, Response{Status: StatusAllow, Rule: RulePermissive, Reason: "plaintext accepted: service is permissive"}
	}
	pol := m.policy.Load()
	d := pol.Decide(src, req.Service, req.Port)
	switch {
	case d.Audit:
		return svc, Response{Status: StatusAudit, Rule: d.Rule, Reason: fmt.Sprintf("would deny %s → %s:%d; %s is in audit mode", orUnknown(src), req.Service, req.Port, req.Service)}
	case d.Allow:
		return svc, Response{Status: StatusAllow, Rule: d.Rule}
	}
	return svc, Response{Status: StatusDeny, Rule: d.Rule, Reason: fmt.Sprintf("%s → %s:%d denied by %s (policy %s)", orUnknown(src), req.Service, req.Port, d.Rule, short(pol.Version()))}
}

func orUnknown(s string) string {
	if s == "" {
		return "(no service identity)"
	}
	return s
}

func (m *Mesh) serveStream(t *inTunnel, st net.Conn) {
	start := m.now()
	m.stats.in.Add(1)
	_ = st.SetReadDeadline(time.Now().Add(m.cfg.DialTimeout))
	req, err := ReadRequest(st)
	_ = st.SetReadDeadline(time.Time{})
	rec := m.newRecord(start, inboundDir)
	rec.srcID, rec.srcSvc, rec.srcAddr = t.peer.String(), t.src, t.remote
	rec.tls = t.version
	if err == nil {
		// A stream opened on a tunnel whose peer was revoked or expired
		// after the handshake, before the sweep closed it, is refused here.
		leaf := t.peerChain[0]
		if m.cfg.Trust.Revoked(leaf, t.peer) {
			err = fmt.Errorf("peer no longer trusted: %w", identity.ErrRevoked)
		} else if verr := identity.CheckValidity(leaf, m.now()); verr != nil {
			err = fmt.Errorf("peer no longer trusted: %w", verr)
		}
	}
	if err != nil {
		m.stats.refused.Add(1)
		rec.verdict, rec.reason = "deny", err.Error()
		m.emit(rec)
		_ = st.Close()
		return
	}
	m.finishInbound(rec, st, t, req)
}

func (m *Mesh) servePlaintext(pc *peekConn) {
	start := m.now()
	m.stats.in.Add(1)
	rec := m.newRecord(start, inboundDir)
	rec.srcAddr = pc.RemoteAddr()
	req, err := ReadRequest(pc)
	if err != nil {
		m.stats.refused.Add(1)
		rec.verdict, rec.reason, rec.kind = "deny", "plaintext without a tunnel header: "+err.Error(), kindHandshake
		m.emit(rec)
		_ = pc.Close()
		return
	}
	_ = pc.SetDeadline(time.Time{})
	m.finishInbound(rec, pc, nil, req)
}

// finishInbound decides, answers, and joins an admitted connection to its app.
// t is the tunnel the stream came on, nil for a plaintext connection.
func (m *Mesh) finishInbound(rec *record, down net.Conn, t *inTunnel, req Request) {
	plaintext, src := t == nil, ""
	if t != nil {
		src = t.src
	}
	svc, resp := m.admit(src, req, plaintext)
	rec.dstSvc, rec.dstPort = req.Service, req.Port
	if id, err := identity.ServiceID(m.cfg.TrustDomain, req.Service); err == nil {
		rec.dstID = id.String()
	}
	if svc.Name != "" {
		rec.mode = string(m.peerMode(svc))
	}
	var app net.Conn
	if resp.Allowed() {
		var err error
		app, err = net.DialTimeout("tcp", svc.AppAddr, m.cfg.DialTimeout)
		if err != nil {
			resp = Response{Status: StatusError, Reason: fmt.Sprintf("app of %q unreachable", req.Service)}
			m.log.Warn("mesh: app unreachable", logService, req.Service, logAddr, svc.AppAddr, logErr, err.Error())
		} else {
			rec.dstAddr = app.RemoteAddr()
		}
	}
	rec.verdict, rec.rule, rec.reason = resp.Verdict(), resp.Rule, resp.Reason
	if plaintext && resp.Allowed() {
		m.stats.plain.Add(1)
	}
	if _, err := down.Write(AppendResponse(nil, resp)); err != nil || !resp.Allowed() {
		if !resp.Allowed() {
			m.stats.refused.Add(1)
			m.log.Info("mesh: refused", logSrc, orUnknown(src), logDst, req.Service, logPort, req.Port, logReason, resp.Reason)
		}
		if app != nil {
			_ = app.Close()
		}
		if err != nil && rec.reason == "" {
			rec.reason = err.Error()
		}
		_ = down.Close()
		m.emit(rec)
		return
	}
	s := &inStream{tun: t, src: src, dst: req.Service, port: req.Port, plaintext: plaintext, down: down, app: app}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = s.Close()
		return
	}
	m.inStreams[s] = struct{}{}
	m.mu.Unlock()
	// A policy change may have landed between admit and registration.
	if why := m.stillAllowed(m.policy.Load(), s); why != "" {
		s.cut(why)
	}
	rec.in, rec.out = pipe(down, app)
	m.mu.Lock()
	delete(m.inStreams, s)
	m.mu.Unlock()
	if why := s.reason(); why != "" {
		m.stats.cut.Add(1)
		rec.reason, rec.verdict, rec.activity = why, "deny", activityCut
	}
	m.emit(rec)
}
