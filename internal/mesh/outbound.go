package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"moat/internal/flow"
	"moat/internal/identity"
)

// RefusedError is returned by Dial (and logged for outbound listeners) when
// the destination agent refuses a connection; Response says why.
type RefusedError struct {
	Src, Dst string
	Port     int
	Response Response
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("mesh: %s → %s:%d refused by the destination (%s): %s (rule %q)", e.Src, e.Dst, e.Port, responseCode(e.Response), e.Response.Reason, e.Response.Rule)
}

// handleOutbound carries one app connection accepted on an upstream
// listener to the destination.
func (m *Mesh) handleOutbound(l *localListener, app net.Conn) {
	start := m.now()
	m.stats.out.Add(1)
	src, up := l.spec.svc, l.spec.up
	rec := m.outRecord(start, src, up.Service, up.Port)
	rec.srcAddr = app.RemoteAddr()
	fail := func(code string, err error) {
		if errors.Is(err, errNotReady) {
			code = flow.ReasonNotReady
		}
		if rec.reason == "" {
			rec.reason = err.Error()
		}
		if rec.code == "" {
			rec.code = code
		}
		m.log.Info("mesh: outbound connection refused", logSrc, src, logDst, up.Service, logPort, up.Port, logCode, rec.code, logReason, rec.reason)
		_ = app.Close()
		m.emit(rec)
	}
	if l.spec.uid != nil {
		if err := m.checkUID(app, *l.spec.uid); err != nil {
			m.stats.uidRefused.Add(1)
			fail(flow.ReasonUIDMismatch, fmt.Errorf("%s's upstream port admits only uid %d: %w", src, *l.spec.uid, err))
			return
		}
	}
	st, t, err := m.openStream(m.ctx, src, up.Service, up.Port, rec.connID)
	if t != nil {
		rec.dstAddr, rec.tls = t.remote, t.version
		rec.connID = t.recordedID(rec)
	}
	if err != nil {
		fail(flow.ReasonUnavailable, err)
		return
	}
	if !m.closeStreamFirst(l, app, st) {
		// The listener went, or the agent is stopping: the copies below
		// end at once.
		_ = st.Close()
		_ = app.Close()
	}
	// The app's first bytes travel right behind the request header; the
	// destination holds them until it has decided, and drops them if it
	// refuses. This saves a round trip for protocols where the client
	// speaks first.
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		copyHalf(st, app, &rec.out)
	}()
	resp, err := m.awaitResponse(st, t.hdr, src, up.Service, up.Port)
	rec.verdict, rec.rule, rec.reason, rec.code = resp.Verdict(), resp.Rule, resp.Reason, responseCode(resp)
	if err != nil {
		// The stream first: the copy into it may be waiting for window
		// with app's socket held (fromSocket).
		_ = st.Close()
		_ = app.Close()
		<-upDone
		fail(flow.ReasonUnavailable, err)
		return
	}
	copyHalf(app, st, &rec.in)
	<-upDone
	_ = app.Close()
	_ = st.Close()
	m.mu.Lock()
	removed, closed := l.removed, m.closed
	m.mu.Unlock()
	switch {
	case closed:
		rec.code, rec.activity = flow.ReasonShutdown, activityCut
	case removed:
		rec.code, rec.activity = flow.ReasonServiceRemoved, activityCut
	}
	m.emit(rec)
}

// closeStreamFirst has the listener's closing of app (the listener
// going, the agent stopping) close st before it: the copy from app into st
// waits for app's socket with the socket held (fromSocket), and a write
// of it blocked for want of window would keep app's Close waiting until
// the destination reads. It reports false when the listener's connections
// were closed already.
func (m *Mesh) closeStreamFirst(l *localListener, app, st net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l.removed || m.closed {
		return false
	}
	l.conns[app] = closerFunc(func() error {
		_ = st.Close()
		return app.Close()
	})
	return true
}

// responseCode is the reason code of a refusal: the destination's (one of
// those ReadResponse keeps), or else (from an agent that sends none, or
// one ReadResponse dropped) one told by the status.
func responseCode(r Response) string {
	switch {
	case r.Allowed():
		return ""
	case r.Code != "":
		return r.Code
	case r.Status == StatusDeny:
		return flow.ReasonPolicyDenied
	}
	return flow.ReasonUnavailable
}

// checkUID admits a local connection only from a process of uid.
func (m *Mesh) checkUID(c net.Conn, uid int) error {
	got, err := m.cfg.PeerUID(c)
	if err != nil {
		return fmt.Errorf("the caller's uid cannot be told: %w", err)
	}
	if got != uid {
		return fmt.Errorf("the caller runs as uid %d", got)
	}
	return nil
}

// recordedID is the ID the source's record of a connection on t carries,
// rec.connID being what it sent: the ID derived from it (connIDOf) when t
// speaks version 3, as the destination records, or else what was sent,
// as an agent from before version 3 records.
func (t *tunnel) recordedID(rec *record) string {
	if t.hdr >= headerV3 && rec.connID != "" {
		return connIDOf(rec.srcID, rec.connID)
	}
	return rec.connID
}

func (m *Mesh) outRecord(start time.Time, src, dst string, port int) *record {
	rec := m.newRecord(start, outboundDir)
	rec.srcSvc, rec.dstSvc, rec.dstPort, rec.connID = src, dst, port, flow.NewID()
	if id, err := identity.ServiceID(m.cfg.TrustDomain, src); err == nil {
		rec.srcID = id.String()
	}
	if id, err := identity.ServiceID(m.cfg.TrustDomain, dst); err == nil {
		rec.dstID = id.String()
	}
	rec.verdict = flow.VerdictDeny
	return rec
}

// open returns a stream to dst:port admitted by the destination, on a pooled
// tunnel presenting src's SVID. A stream refused by the destination is a
// *RefusedError; Response is filled whenever the destination answered.
func (m *Mesh) open(ctx context.Context, src, dst string, port int, connID string) (net.Conn, *tunnel, Response, error) {
	st, t, err := m.openStream(ctx, src, dst, port, connID)
	if err != nil {
		return nil, t, Response{Status: StatusError}, err
	}
	resp, err := m.awaitResponse(st, t.hdr, src, dst, port)
	if err != nil {
		return nil, t, resp, err
	}
	return st, t, resp, nil
}

// openStream opens a stream on a pooled tunnel and writes the request
// header; the destination's answer is still to be read.
func (m *Mesh) openStream(ctx context.Context, src, dst string, port int, connID string) (net.Conn, *tunnel, error) {
	for attempt := 0; ; attempt++ {
		t, err := m.tunnelFor(ctx, src, dst)
		if err != nil {
			return nil, nil, err
		}
		req, err := AppendRequest(nil, Request{Service: dst, Port: port, ConnID: connID}, t.hdr)
		if err != nil {
			return nil, t, err
		}
		st, err := t.openStream(ctx)
		if err == nil {
			_ = st.SetWriteDeadline(time.Now().Add(m.cfg.DialTimeout))
			_, err = st.Write(req)
			_ = st.SetWriteDeadline(time.Time{})
			if err == nil {
				return st, t, nil
			}
			_ = st.Close()
		}
		// The tunnel died under us (peer restart, revocation sweep): one
		// fresh tunnel is worth a try.
		t.close()
		if attempt > 0 {
			return nil, t, fmt.Errorf("mesh: open stream to %q: %w", dst, err)
		}
	}
}

// openStream opens a stream on t. Its ledger (m.outLedger, which bounds
// nothing) follows the frames the stream holds, as an inbound stream's
// does, so that the copy into the app learns what a read returns at once
// and waits for the destination's data holding no buffer (fromStream).
// The stream is in the ledger before its request header leaves: the
// destination sends nothing before it has read it.
func (t *tunnel) openStream(ctx context.Context) (*meteredStream, error) {
	ys, err := t.sess.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	t.ledger.opened(ys.StreamID())
	st := t.ledger.attach(ys)
	if st == nil {
		return nil, errors.New("stream reset as it opened")
	}
	return st, nil
}

// awaitResponse reads the destination's answer; the stream is closed unless
// the answer admits it.
func (m *Mesh) awaitResponse(st net.Conn, hdr int, src, dst string, port int) (Response, error) {
	_ = st.SetReadDeadline(time.Now().Add(m.cfg.DialTimeout))
	resp, err := ReadResponse(st, hdr)
	_ = st.SetReadDeadline(time.Time{})
	if err != nil {
		_ = st.Close()
		return Response{Status: StatusError}, fmt.Errorf("mesh: %s → %s:%d: no answer from the destination: %w", src, dst, port, err)
	}
	if !resp.Allowed() {
		_ = st.Close()
		return resp, &RefusedError{Src: src, Dst: dst, Port: port, Response: resp}
	}
	return resp, nil
}

// Dial opens a connection from local service src to dst:port through the
// mesh, as the gateway does for routed requests. The connection's flow
// record is written when it is closed.
func (m *Mesh) Dial(ctx context.Context, src, dst string, port int) (net.Conn, error) {
	start := m.now()
	m.stats.out.Add(1)
	rec := m.outRecord(start, src, dst, port)
	st, t, resp, err := m.open(ctx, src, dst, port, rec.connID)
	if t != nil {
		rec.dstAddr, rec.tls = t.remote, t.version
		rec.connID = t.recordedID(rec)
	}
	rec.verdict, rec.rule, rec.reason, rec.code = resp.Verdict(), resp.Rule, resp.Reason, responseCode(resp)
	if err != nil {
		if rec.reason == "" {
			rec.reason = err.Error()
		}
		if errors.Is(err, errNotReady) {
			rec.code = flow.ReasonNotReady
		}
		m.emit(rec)
		return nil, err
	}
	return &dialedConn{Conn: st, m: m, rec: rec}, nil
}

// dialedConn counts bytes and writes the flow record on Close.
type dialedConn struct {
	net.Conn
	m        *Mesh
	rec      *record
	closeOne sync.Once
}

func (c *dialedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.in.Add(int64(n))
	return n, err
}

func (c *dialedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.rec.out.Add(int64(n))
	return n, err
}

// CloseWrite half-closes: the peer sees EOF and may still answer.
func (c *dialedConn) CloseWrite() error {
	closeWrite(c.Conn)
	return nil
}

func (c *dialedConn) Close() error {
	c.closeOne.Do(func() {
		_ = c.Conn.Close()
		c.m.emit(c.rec)
	})
	return nil
}
