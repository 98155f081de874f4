package mesh

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-yamux/v5"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/identity"
	"moat/internal/mtls"
)

// poolKey names the tunnels of one (source service, destination service,
// agent) triple. Keying by destination service lets the client insist on
// that service's identity at the handshake.
type poolKey struct{ src, dst, addr string }

// poolEntry holds the tunnel new streams use and the ones draining.
// Mesh.mu guards cur and old; dial serializes dials of the key.
type poolEntry struct {
	dial sync.Mutex
	cur  *tunnel
	old  []*tunnel
}

func (e *poolEntry) all() []*tunnel {
	out := append([]*tunnel(nil), e.old...)
	if e.cur != nil {
		out = append(out, e.cur)
	}
	return out
}

// tunnel is an outbound mTLS tunnel.
type tunnel struct {
	conn      *tls.Conn
	sess      *yamux.Session
	ledger    *tunnelLedger // of m.outLedger
	leafDER   []byte        // the SVID we presented
	peer      spiffeid.ID
	peerChain []*x509.Certificate
	remote    net.Addr
	version   uint16 // TLS
	hdr       int    // tunnel header version, from ALPN
	// recycleAt is when new streams stop using this tunnel: before the
	// earlier of our SVID's and the peer's expiry.
	recycleAt time.Time
	closeOne  sync.Once
}

func (t *tunnel) close() { t.closeOne.Do(func() { _ = t.sess.Close() }) }

func (t *tunnel) usable(cert *tls.Certificate, now time.Time) bool {
	return t != nil && !t.sess.IsClosed() && now.Before(t.recycleAt) &&
		len(cert.Certificate) > 0 && bytes.Equal(t.leafDER, cert.Certificate[0])
}

// tunnelFor returns a usable tunnel from src to dst's agent, dialing one if
// the pooled tunnel is gone, near its expiry, or opened with an SVID that
// has since rotated.
func (m *Mesh) tunnelFor(ctx context.Context, src, dst string) (*tunnel, error) {
	if m.cfg.Resolve == nil {
		return nil, errors.New("mesh: no Resolve function: outbound traffic is impossible")
	}
	addr, err := m.cfg.Resolve(dst)
	if err != nil {
		return nil, fmt.Errorf("mesh: resolve %q: %w", dst, err)
	}
	cert, err := m.cfg.Identities.Certificate(src)
	if err != nil {
		return nil, fmt.Errorf("%w: no SVID of %q yet: %w", errNotReady, src, err)
	}
	key := poolKey{src, dst, addr}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("mesh: closed")
	}
	e := m.pool[key]
	if e == nil {
		e = &poolEntry{}
		m.pool[key] = e
		m.retireMovedLocked(key)
	}
	t := e.cur
	m.mu.Unlock()
	if t.usable(cert, m.now()) {
		return t, nil
	}
	e.dial.Lock()
	defer e.dial.Unlock()
	m.mu.Lock()
	t = e.cur
	m.mu.Unlock()
	if t.usable(cert, m.now()) {
		return t, nil
	}
	nt, err := m.dialTunnel(ctx, src, dst, addr, cert)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		nt.close()
		return nil, errors.New("mesh: closed")
	}
	if t != nil {
		e.old = append(e.old, t)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.drain(key, t)
		}()
	}
	e.cur = nt
	if _, ok := m.pool[key]; !ok {
		m.pool[key] = e // drain dropped the entry while we dialed
	}
	m.mu.Unlock()
	return nt, nil
}

// retireMovedLocked drains the tunnels of key's source and destination to
// other agent addresses: the destination has moved. Mesh.mu is held.
func (m *Mesh) retireMovedLocked(key poolKey) {
	for k, e := range m.pool {
		if k.src != key.src || k.dst != key.dst || k.addr == key.addr || e.cur == nil {
			continue
		}
		t := e.cur
		e.cur = nil
		e.old = append(e.old, t)
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.drain(k, t)
		}()
	}
}

// drain closes a retired tunnel once its last stream ends, then forgets it.
// Its SVID expiring does not end it: streams live on until they end, or
// until a revocation or a policy change cuts them.
func (m *Mesh) drain(key poolKey, t *tunnel) {
	drainSession(m.ctx, t.sess)
	t.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.pool[key]; e != nil {
		for i, o := range e.old {
			if o == t {
				e.old = append(e.old[:i], e.old[i+1:]...)
				break
			}
		}
		if e.cur == nil && len(e.old) == 0 {
			delete(m.pool, key)
		}
	}
}

func (m *Mesh) dialTunnel(ctx context.Context, src, dst, addr string, cert *tls.Certificate) (*tunnel, error) {
	start := m.now()
	srcID, err := identity.ServiceID(m.cfg.TrustDomain, src)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	dstID, err := identity.ServiceID(m.cfg.TrustDomain, dst)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	cfg, err := mtls.Client(mtls.ClientConfig{
		Verifier:             m.cfg.Trust,
		GetClientCertificate: mtls.Static(cert),
		ServerName:           dst,
		Expect:               []spiffeid.ID{dstID},
		NextProtos:           m.protocols,
		Now:                  m.now,
	})
	if err != nil {
		return nil, err
	}
	cfg.DynamicRecordSizingDisabled = true // full records: the tunnel carries many streams
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mesh: dial agent of %q at %q: %w", dst, addr, err)
	}
	bc := &batchConn{Conn: raw}
	tc := tls.Client(bc, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil {
		// The destination writes one byte once it has accepted us; a
		// refusal arrives here as its TLS alert.
		if dl, ok := ctx.Deadline(); ok {
			_ = tc.SetReadDeadline(dl)
		}
		var b [1]byte
		if _, err = tc.Read(b[:]); err == nil && b[0] != tunnelReady {
			err = fmt.Errorf("unexpected first byte %#x", b[0])
		}
		if err == nil && headerVersionOf(tc.ConnectionState().NegotiatedProtocol) == 0 {
			err = fmt.Errorf("the destination agreed to no tunnel protocol (ALPN %q)", tc.ConnectionState().NegotiatedProtocol)
		}
		_ = tc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		_ = raw.Close()
		m.stats.hsFail.Add(1)
		err = fmt.Errorf("mesh: tunnel %s → %s at %q: %w", src, dst, addr, err)
		m.handshakeRecord(start, outboundDir, raw.LocalAddr(), raw.RemoteAddr(), srcID.String(), dstID.String(), claimedID(tc), err)
		return nil, err
	}
	m.stats.clientHS.Add(1)
	cs := tc.ConnectionState()
	fc := newFrameConn(tc, bc)
	peer, _ := identity.LeafID(cs.PeerCertificates[0])
	// The session reads through mc, which follows what each stream
	// holds (see openStream).
	ledger := m.outLedger.tunnel(bufSourceKey{peer: peer.String(), addr: addrOf(raw.RemoteAddr())})
	mc := &meteredConn{frameConn: fc, t: ledger}
	sess, err := yamux.Client(mc, m.mux, nil)
	if err != nil {
		ledger.close()
		_ = fc.Close()
		return nil, fmt.Errorf("mesh: tunnel to %q: %w", dst, err)
	}
	fc.follow(sess)
	t := &tunnel{
		conn: tc, sess: sess, ledger: ledger, peer: peer, leafDER: cert.Certificate[0], peerChain: cs.PeerCertificates,
		remote: raw.RemoteAddr(), version: cs.Version, hdr: headerVersionOf(cs.NegotiatedProtocol), recycleAt: recycleTime(cert, cs.PeerCertificates[0], m.now()),
	}
	m.stats.tunnels.Add(1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		keepAlive(sess, &bc.reads, keepAliveEvery)
		ledger.close()
		m.stats.tunnels.Add(-1)
	}()
	return t, nil
}

// recycleTime is when a tunnel stops taking new streams: a fifth of our
// SVID's lifetime before the earlier expiry of the two SVIDs. An SVID already
// inside that margin (renewal failing) is used until it expires.
func recycleTime(cert *tls.Certificate, peer *x509.Certificate, now time.Time) time.Time {
	leaf := cert.Leaf
	if leaf == nil {
		if l, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
			leaf = l
		}
	}
	end := peer.NotAfter
	margin := time.Duration(0)
	if leaf != nil {
		if leaf.NotAfter.Before(end) {
			end = leaf.NotAfter
		}
		margin = leaf.NotAfter.Sub(leaf.NotBefore) / 5
	}
	if at := end.Add(-margin); at.After(now) {
		return at
	}
	return end
}
