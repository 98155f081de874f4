package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
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
	return fmt.Sprintf("mesh: %s → %s:%d refused by the destination: %s (rule %q)", e.Src, e.Dst, e.Port, e.Response.Reason, e.Response.Rule)
}

// outListener is the loopback listener of one upstream.
type outListener struct {
	ln  net.Listener
	src string
	up  Upstream
}

func upstreamKey(src string, u Upstream) string {
	return src + "|" + u.Service + "|" + strconv.Itoa(u.Port) + "|" + u.LocalAddr
}

// LocalAddr returns the address of the outbound listener through which src
// reaches dst, once SetServices has bound it.
func (m *Mesh) LocalAddr(src, dst string) (net.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.outbound {
		if l.src == src && l.up.Service == dst {
			return l.ln.Addr(), true
		}
	}
	return nil, false
}

func (m *Mesh) reconcileOutbound(next map[string]Service) error {
	want := map[string]outListener{}
	for _, s := range next {
		for _, u := range s.Upstreams {
			want[upstreamKey(s.Name, u)] = outListener{src: s.Name, up: u}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("mesh: closed")
	}
	added := map[string]*outListener{}
	for k, l := range want {
		if _, ok := m.outbound[k]; ok {
			continue
		}
		addr := l.up.LocalAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, a := range added {
				_ = a.ln.Close()
			}
			return fmt.Errorf("mesh: service %q: upstream %q: listen %q: %w", l.src, l.up.Service, addr, err)
		}
		added[k] = &outListener{ln: ln, src: l.src, up: l.up}
	}
	for k, l := range m.outbound {
		if _, ok := want[k]; !ok {
			_ = l.ln.Close()
			delete(m.outbound, k)
		}
	}
	for k, l := range added {
		m.outbound[k] = l
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.serveOutbound(l)
		}()
	}
	return nil
}

func (m *Mesh) serveOutbound(l *outListener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.handleOutbound(l, c)
		}()
	}
}

func (m *Mesh) handleOutbound(l *outListener, app net.Conn) {
	start := m.now()
	m.stats.out.Add(1)
	rec := m.outRecord(start, l.src, l.up.Service, l.up.Port)
	rec.srcAddr = app.RemoteAddr()
	fail := func(err error) {
		if rec.reason == "" {
			rec.reason = err.Error()
		}
		m.log.Info("mesh: outbound connection refused", logSrc, l.src, logDst, l.up.Service, logPort, l.up.Port, logReason, rec.reason)
		_ = app.Close()
		m.emit(rec)
	}
	st, t, err := m.openStream(m.ctx, l.src, l.up.Service, l.up.Port)
	if t != nil {
		rec.dstAddr, rec.tls = t.remote, t.version
	}
	if err != nil {
		fail(err)
		return
	}
	// The app's first bytes travel right behind the request header; the
	// destination holds them until it has decided, and drops them if it
	// refuses. This saves a round trip for protocols where the client
	// speaks first.
	var fromApp int64
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		fromApp = copyHalf(st, app)
	}()
	resp, err := m.awaitResponse(st, l.src, l.up.Service, l.up.Port)
	rec.verdict, rec.rule, rec.reason = resp.Verdict(), resp.Rule, resp.Reason
	if err != nil {
		_ = app.Close()
		<-upDone
		fail(err)
		return
	}
	rec.in = copyHalf(app, st)
	<-upDone
	_ = app.Close()
	_ = st.Close()
	rec.out = fromApp
	m.emit(rec)
}

func (m *Mesh) outRecord(start time.Time, src, dst string, port int) *record {
	rec := m.newRecord(start, outboundDir)
	rec.srcSvc, rec.dstSvc, rec.dstPort = src, dst, port
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
func (m *Mesh) open(ctx context.Context, src, dst string, port int) (net.Conn, *tunnel, Response, error) {
	st, t, err := m.openStream(ctx, src, dst, port)
	if err != nil {
		return nil, t, Response{Status: StatusError}, err
	}
	resp, err := m.awaitResponse(st, src, dst, port)
	if err != nil {
		return nil, t, resp, err
	}
	return st, t, resp, nil
}

// openStream opens a stream on a pooled tunnel and writes the request
// header; the destination's answer is still to be read.
func (m *Mesh) openStream(ctx context.Context, src, dst string, port int) (net.Conn, *tunnel, error) {
	req, err := AppendRequest(nil, Request{Service: dst, Port: port})
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		t, err := m.tunnelFor(ctx, src, dst)
		if err != nil {
			return nil, nil, err
		}
		st, err := t.sess.OpenStream()
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

// awaitResponse reads the destination's answer; the stream is closed unless
// the answer admits it.
func (m *Mesh) awaitResponse(st net.Conn, src, dst string, port int) (Response, error) {
	_ = st.SetReadDeadline(time.Now().Add(m.cfg.DialTimeout))
	resp, err := ReadResponse(st)
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
	st, t, resp, err := m.open(ctx, src, dst, port)
	if t != nil {
		rec.dstAddr, rec.tls = t.remote, t.version
	}
	rec.verdict, rec.rule, rec.reason = resp.Verdict(), resp.Rule, resp.Reason
	if err != nil {
		if rec.reason == "" {
			rec.reason = err.Error()
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
	in, out  atomic.Int64
	closeOne sync.Once
}

func (c *dialedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c *dialedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// CloseWrite half-closes: the peer sees EOF and may still answer.
func (c *dialedConn) CloseWrite() error { return c.Conn.Close() }

func (c *dialedConn) Close() error {
	c.closeOne.Do(func() {
		_ = c.Conn.Close()
		c.rec.in, c.rec.out = c.in.Load(), c.out.Load()
		c.m.emit(c.rec)
	})
	return nil
}
