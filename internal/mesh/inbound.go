package mesh

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/mtls"
	"moat/internal/policy"
)

// tunnelReady is the byte the destination writes right after a successful
// handshake, so that a source refused in VerifyConnection learns why from
// the TLS alert before it opens streams.
const tunnelReady = 0x01

// inTunnel is an accepted mTLS tunnel.
type inTunnel struct {
	conn      *tls.Conn
	sess      *yamux.Session
	peer      spiffeid.ID
	src       string // peer's service name, "" when the peer is not a service
	peerChain []*x509.Certificate
	remote    net.Addr
	version   uint16 // TLS
	hdr       int    // tunnel header version, from ALPN
}

// expired reports whether the peer's SVID has expired: the tunnel then
// takes no new stream and closes once the last one ends.
func (t *inTunnel) expired(now time.Time) bool { return now.After(t.peerChain[0].NotAfter) }

// inStream is one live inbound connection to an app.
type inStream struct {
	tun       *inTunnel // nil for plaintext
	src, dst  string
	srcIP     netip.Addr // plaintext callers only
	port      int
	plaintext bool
	down, app net.Conn
	rec       *record

	mu       sync.Mutex // guards cutWhy and cutCode
	cutWhy   string
	cutCode  string
	closeOne sync.Once
}

func (s *inStream) cut(code, reason string) {
	s.mu.Lock()
	if s.cutWhy == "" {
		s.cutWhy, s.cutCode = reason, code
	}
	s.mu.Unlock()
	_ = s.Close()
}

// shedForBuffer cuts s for the stream buffer (streamBudget): its stream
// is reset, so that its source's writes fail at once rather than wait for
// a window that will not come.
func (s *inStream) shedForBuffer() {
	s.mu.Lock()
	if s.cutWhy == "" {
		s.cutWhy, s.cutCode = errShed, flow.ReasonOverloaded
	}
	s.mu.Unlock()
	if r, ok := s.down.(interface{ Reset() error }); ok {
		_ = r.Reset()
	}
	_ = s.Close()
}

func (s *inStream) reason() (code, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cutCode, s.cutWhy
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
	cfg, err := mtls.Server(mtls.ServerConfig{
		Verifier:   m.cfg.Trust,
		Now:        m.now,
		NextProtos: m.protocols,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if !m.servicesSet.Load() {
				return nil, fmt.Errorf("%w: this node has not received its services from the control plane yet (asked for %q)", errNotReady, hello.ServerName)
			}
			if _, ok := m.service(hello.ServerName); !ok {
				return nil, fmt.Errorf("%w: no service %q on this node", errUnknownService, hello.ServerName)
			}
			cert, err := m.cfg.Identities.Certificate(hello.ServerName)
			if err != nil {
				return nil, fmt.Errorf("%w: service %q has no SVID yet: %w", errNotReady, hello.ServerName, err)
			}
			return cert, nil
		},
		Authorize: func(peer spiffeid.ID, cs tls.ConnectionState) error {
			if _, ok := identity.ServiceName(peer); !ok {
				return errNotService
			}
			// The ALPN name keeps a mesh port and another mTLS endpoint
			// of moat from being mistaken for each other.
			if !slices.Contains(m.protocols, cs.NegotiatedProtocol) {
				return fmt.Errorf("mesh: client offered none of the tunnel protocols %q", m.protocols)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	cfg.DynamicRecordSizingDisabled = true // full records: the tunnel carries many streams
	return cfg, nil
}

// peekConn replays the bytes read to tell TLS from anything else.
type peekConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// serveConn serves one connection to the mesh port; release gives back
// its place among the pending handshakes once its handshake has ended.
func (m *Mesh) serveConn(c net.Conn, release func()) {
	defer release()
	_ = c.SetDeadline(time.Now().Add(m.cfg.DialTimeout))
	pc := &peekConn{Conn: c, r: bufio.NewReaderSize(c, 512)}
	first, err := pc.r.Peek(1)
	if err != nil {
		_ = c.Close()
		return
	}
	start := m.now()
	if first[0] != 0x16 { // not a TLS handshake record
		m.stats.refused.Add(1)
		r := m.newRecord(start, inboundDir)
		r.srcAddr, r.dstAddr, r.kind, r.verdict, r.code = c.RemoteAddr(), c.LocalAddr(), kindHandshake, flow.VerdictDeny, flow.ReasonPlaintext
		r.reason = "plaintext on the mesh port, which speaks mutual TLS only (a permissive service takes plaintext on its own plaintext port)"
		m.emitRefusal(r)
		_ = c.Close()
		return
	}
	bc := &batchConn{Conn: pc}
	tc := tls.Server(bc, m.srvTLS)
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.DialTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err == nil {
		// Closed before the ready byte, so the peer learns it at once.
		held, ok := m.tunnels.Take(c.RemoteAddr())
		if !ok {
			m.shed(&m.stats.tunnelsShed, "mesh: too many tunnels held; closing new ones", logRemote, c.RemoteAddr().String(),
				logPeer, claimedID(tc), "per_source", maxTunnelsPerSource, "in_all", maxInboundTunnels)
			_ = c.Close()
			return
		}
		defer held()
		_, err = tc.Write([]byte{tunnelReady})
	}
	if err != nil {
		m.stats.hsFail.Add(1)
		// Anyone may fail handshake after handshake: the log line, as the
		// record, passes the gate.
		if m.handshakeRecord(start, inboundDir, c.RemoteAddr(), c.LocalAddr(), "", "", claimedID(tc), err) {
			m.log.Info("mesh: inbound handshake refused", logRemote, c.RemoteAddr().String(), logReason, err.Error())
		}
		_ = c.Close()
		return
	}
	m.stats.serverHS.Add(1)
	release()
	_ = c.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	peer, _ := identity.LeafID(cs.PeerCertificates[0]) // verified in VerifyConnection
	src, _ := identity.ServiceName(peer)
	fc := newFrameConn(tc, bc)
	// The session reads and writes through mc, which charges what its
	// streams receive to the stream buffer.
	ledger := m.budget.tunnel(bufSourceKey{peer: peer.String(), addr: addrOf(c.RemoteAddr())})
	defer ledger.close()
	mc := &meteredConn{frameConn: fc, t: ledger}
	sess, err := yamux.Server(mc, m.mux, nil)
	if err != nil {
		_ = fc.Close()
		return
	}
	fc.follow(sess)
	t := &inTunnel{conn: tc, sess: sess, peer: peer, src: src, peerChain: cs.PeerCertificates, remote: c.RemoteAddr(),
		version: cs.Version, hdr: headerVersionOf(cs.NegotiatedProtocol)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = tc.Close()
		return
	}
	m.inbound[t] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		keepAlive(sess, &bc.reads, keepAliveEvery)
	}()
	// A tunnel takes streams no longer than the SVID that opened it lives
	// (serveStream refuses them after); the streams it carries then finish,
	// and it closes after the last.
	expiry := time.AfterFunc(cs.PeerCertificates[0].NotAfter.Sub(m.now()), func() {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			drainSession(m.ctx, sess)
			_ = tc.Close()
		}()
	})
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
		ys, err := sess.AcceptStream()
		if err != nil {
			return
		}
		st := ledger.attach(ys)
		if st == nil {
			continue // shed for the stream buffer before it was taken
		}
		headerRead, ok := m.headers.Take(t.remote)
		if !ok {
			m.shed(&m.stats.streamsShed, "mesh: too many streams waiting for their tunnel header; resetting new ones", logRemote, t.remote.String(),
				logPeer, t.peer.String(), "per_source", maxHeaderWaitsPerSource, "in_all", maxHeaderWaits)
			_ = st.Reset()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.serveStream(t, st, headerRead)
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

// admit decides a request on a tunnel from service src.
func (m *Mesh) admit(src string, req Request) (Service, Response) {
	svc, resp, ok := m.target(req)
	if !ok {
		return svc, resp
	}
	pol := m.policy.Load()
	return svc, m.answer(pol, m.decide(pol, svc, src, req.Port), orUnknown(src), req)
}

// decide asks the service's Handler, or else the intentions.
func (m *Mesh) decide(pol *policy.Table, svc Service, src string, port int) policy.Decision {
	if svc.Handler != nil {
		if src == "" {
			return policy.Decision{Rule: policy.DefaultDeny}
		}
		return svc.Handler.Decide(src)
	}
	return pol.Decide(src, svc.Name, port)
}

// admitPlaintext decides a plaintext caller at addr.
func (m *Mesh) admitPlaintext(addr netip.Addr, req Request) (Service, Response) {
	svc, resp, ok := m.target(req)
	if !ok {
		return svc, resp
	}
	if m.peerMode(svc) != policy.Permissive {
		return svc, Response{Status: StatusError, Code: flow.ReasonPlaintext, Reason: fmt.Sprintf("service %q is strict: plaintext refused, use mutual TLS", req.Service)}
	}
	pol := m.policy.Load()
	return svc, m.answer(pol, pol.DecidePlaintext(addr, req.Service, req.Port), "plaintext "+addr.String(), req)
}

// target finds the service a request names.
func (m *Mesh) target(req Request) (Service, Response, bool) {
	svc, ok := m.service(req.Service)
	if !ok {
		return svc, Response{Status: StatusError, Code: flow.ReasonUnknownService, Reason: fmt.Sprintf("no service %q on this node", req.Service)}, false
	}
	if req.Port != svc.Port {
		return svc, Response{Status: StatusError, Code: flow.ReasonWrongPort, Reason: fmt.Sprintf("service %q does not serve port %d", req.Service, req.Port)}, false
	}
	return svc, Response{}, true
}

func (m *Mesh) answer(pol *policy.Table, d policy.Decision, who string, req Request) Response {
	switch {
	case d.Audit:
		return Response{Status: StatusAudit, Rule: d.Rule, Reason: fmt.Sprintf("would deny %s → %s:%d; %s is in audit mode", who, req.Service, req.Port, req.Service)}
	case d.Allow:
		return Response{Status: StatusAllow, Rule: d.Rule}
	}
	return Response{Status: StatusDeny, Code: flow.ReasonPolicyDenied, Rule: d.Rule, Reason: fmt.Sprintf("%s → %s:%d denied by %s (policy %s)", who, req.Service, req.Port, d.Rule, short(pol.Version()))}
}

func orUnknown(s string) string {
	if s == "" {
		return "(no service identity)"
	}
	return s
}

// serveStream serves one stream of t; headerRead gives back its place
// among the streams waiting for their header once it is read.
func (m *Mesh) serveStream(t *inTunnel, st net.Conn, headerRead func()) {
	start := m.now()
	m.stats.in.Add(1)
	_ = st.SetReadDeadline(time.Now().Add(m.cfg.DialTimeout))
	req, err := ReadRequest(st, t.hdr)
	headerRead()
	_ = st.SetReadDeadline(time.Time{})
	rec := m.newRecord(start, inboundDir)
	rec.srcID, rec.srcSvc, rec.srcAddr = t.peer.String(), t.src, t.remote
	rec.tls = t.version
	if rec.connID = req.ConnID; rec.connID != "" && m.derivesIDs {
		rec.connID = connIDOf(t.peer.String(), req.ConnID)
	}
	code := flow.ReasonBadHeader
	if err != nil && wasShed(st) {
		err, code = fmt.Errorf("shed before its header was read: %s", errShed), flow.ReasonOverloaded
	}
	if ms, ok := st.(*meteredStream); ok && err == nil && ms.callerStreams() > m.cfg.callerStreams {
		err, code = fmt.Errorf("too many streams open from this caller (%d)", m.cfg.callerStreams), flow.ReasonOverloaded
		m.shed(&m.stats.callerShed, "mesh: too many streams open from one caller; refusing new ones", logRemote, t.remote.String(),
			logPeer, t.peer.String(), "per_source", m.cfg.callerStreams)
	}
	if err == nil {
		// A stream opened on a tunnel whose peer was revoked or expired
		// after the handshake, before the sweep closed it, is refused here.
		leaf := t.peerChain[0]
		if m.cfg.Trust.Revoked(leaf, t.peer) {
			err, code = fmt.Errorf("peer no longer trusted: %w", identity.ErrRevoked), flow.ReasonRevoked
		} else if verr := identity.CheckValidity(leaf, m.now()); verr != nil {
			err, code = fmt.Errorf("peer no longer trusted: %w", verr), flow.ReasonExpired
		}
	}
	if err != nil {
		m.stats.refused.Add(1)
		rec.verdict, rec.reason, rec.code = flow.VerdictDeny, err.Error(), code
		if req.Service != "" {
			rec.dstSvc, rec.dstPort = req.Service, req.Port
		}
		m.emitRefusal(rec)
		// The peer authenticated: it is told why, by code, as a refusal
		// by policy is, rather than left to guess from the close.
		_ = st.SetWriteDeadline(time.Now().Add(m.cfg.DialTimeout))
		_, _ = st.Write(AppendResponse(nil, Response{Status: StatusError, Code: code, Reason: rec.reason}, t.hdr))
		_ = st.Close()
		return
	}
	svc, resp := m.admit(t.src, req)
	m.finishInbound(rec, st, t, svc, req, resp)
}

// finishInbound answers, and joins an admitted connection to its app. t is
// the tunnel the stream came on, nil for a plaintext connection.
func (m *Mesh) finishInbound(rec *record, down net.Conn, t *inTunnel, svc Service, req Request, resp Response) {
	plaintext, src := t == nil, ""
	if t != nil {
		src = t.src
	}
	if rec.connID == "" {
		rec.connID = flow.NewID()
	}
	rec.dstSvc, rec.dstPort, rec.plaintext = req.Service, req.Port, plaintext
	if id, err := identity.ServiceID(m.cfg.TrustDomain, req.Service); err == nil {
		rec.dstID = id.String()
	}
	if svc.Name != "" {
		rec.mode = string(m.peerMode(svc))
	}
	var app net.Conn
	if resp.Allowed() && svc.Handler != nil {
		// In-process: the handler reads the other end of a pipe, so the
		// stream is counted and cut like any other.
		var inner net.Conn
		app, inner = net.Pipe()
		go svc.Handler.Serve(inner, src, rec.connID)
	} else if resp.Allowed() {
		dialed, ok := m.dials.TakeAs(down.RemoteAddr(), rec.srcID)
		var err error
		if ok {
			d := net.Dialer{Timeout: m.cfg.DialTimeout}
			app, err = d.DialContext(m.ctx, "tcp", svc.AppAddr)
			dialed()
		}
		if !ok {
			resp = Response{Status: StatusError, Code: flow.ReasonOverloaded, Reason: fmt.Sprintf("too many connections to apps being made for this caller (%d) or in all (%d)", maxDialsPerSource, maxDials)}
			m.shed(&m.stats.dialsShed, "mesh: too many connections to apps being made; refusing new streams", logRemote, down.RemoteAddr().String(),
				logSrc, orUnknown(src), "per_source", maxDialsPerSource, "in_all", maxDials)
		} else if err != nil {
			resp = Response{Status: StatusError, Code: flow.ReasonAppUnreachable, Reason: fmt.Sprintf("app of %q unreachable", req.Service)}
			m.appUnreachable(svc, err)
		} else {
			rec.dstAddr = app.RemoteAddr()
		}
	}
	rec.verdict, rec.rule, rec.reason, rec.code = resp.Verdict(), resp.Rule, resp.Reason, resp.Code
	if plaintext && resp.Allowed() {
		m.stats.plain.Add(1)
	}
	var err error
	if !plaintext { // a plaintext caller speaks its own protocol: no answer header
		_, err = down.Write(AppendResponse(nil, resp, t.hdr))
	}
	if err != nil || !resp.Allowed() {
		if app != nil {
			_ = app.Close()
		}
		if err != nil && rec.reason == "" {
			rec.reason, rec.code = err.Error(), flow.ReasonUnavailable
			if wasShed(down) {
				rec.reason, rec.code = "shed while its app was being reached: "+errShed, flow.ReasonOverloaded
			}
		}
		_ = down.Close()
		if resp.Allowed() {
			m.emit(rec)
			return
		}
		// A refusal: the peer chose to ask, and may ask as fast as it
		// opens streams; its record, and the log line, pass the gate.
		m.stats.refused.Add(1)
		if m.emitRefusal(rec) {
			m.log.Info("mesh: refused", logSrc, orUnknown(src), logDst, req.Service, logPort, req.Port, logCode, resp.Code, logReason, resp.Reason)
		}
		return
	}
	s := &inStream{tun: t, src: src, dst: req.Service, port: req.Port, plaintext: plaintext, down: down, app: app, rec: rec}
	if plaintext {
		s.srcIP = addrOf(down.RemoteAddr())
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = s.Close()
		return
	}
	m.inStreams[s] = struct{}{}
	m.mu.Unlock()
	if ms, ok := down.(*meteredStream); ok {
		ms.setShed(func() { s.shedForBuffer() })
	}
	m.emitOpen(rec)
	// A policy change may have landed between admit and registration.
	if code, why := m.stillAllowed(m.policy.Load(), s); why != "" {
		s.cut(code, why)
	}
	pipe(down, app, &rec.in, &rec.out)
	m.mu.Lock()
	delete(m.inStreams, s)
	m.mu.Unlock()
	if code, why := s.reason(); why != "" {
		if code != flow.ReasonOverloaded { // counted in BufferShed
			m.stats.cut.Add(1)
		}
		rec.reason, rec.code, rec.activity = why, code, activityCut
		if code != flow.ReasonShutdown && code != flow.ReasonOverloaded {
			rec.verdict = flow.VerdictDeny
		}
	}
	m.emit(rec)
}

// addrOf is the IP of a TCP address (unmapped), or the zero Addr.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// drainSession waits until sess carries no stream (or closes, or ctx ends).
func drainSession(ctx context.Context, sess *yamux.Session) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for sess.NumStreams() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-sess.CloseChan():
			return
		case <-tick.C:
		}
	}
}
