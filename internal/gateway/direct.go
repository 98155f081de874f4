package gateway

import (
	"bufio"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The upstream connections of direct requests: an http.Transport hands
// each request between three goroutines (the handler's, its connection's
// writer and its reader, which then waits for the body's end to take the
// next response), a wake-up each; a direct request is written, and its
// answer read, on the handler's goroutine, which returns the connection
// to the pool when the body ends.
const (
	// directIdlePerHost is the most idle connections kept per upstream,
	// as http.Transport's MaxIdleConnsPerHost.
	directIdlePerHost = 64
	// directIdleTimeout closes a connection idle longer.
	directIdleTimeout = 90 * time.Second
	// directHeaderTimeout bounds the wait for an answer's header.
	directHeaderTimeout = 60 * time.Second
	// directMaxHeader bounds an answer's header, its 1xx answers'
	// included unless forwarded (http.Transport's default).
	directMaxHeader = 10 << 20
	// directMaxBody is the largest body a direct request carries.
	directMaxBody = 64 << 10
)

// isDirect reports whether r is sent as a direct request: one without a
// protocol upgrade, whose body, if any, is of a known length up to
// directMaxBody. Such a body is written whole before the answer is read
// (it fits the stream's window whether or not the service reads it);
// a larger or chunked one needs http.Transport's writer, which goes on
// writing while the answer is read.
func isDirect(r *http.Request) bool {
	if r.URL.Scheme != "http" || r.Header.Get("Upgrade") != "" {
		return false
	}
	return r.Body == nil || r.Body == http.NoBody || (r.ContentLength > 0 && r.ContentLength <= directMaxBody)
}

// replayable reports whether r may be sent again on a fresh connection
// when a pooled one fails before any answer: http.Transport's rule, a
// GET, HEAD or OPTIONS without a body, or a request carrying an
// idempotency key.
func replayable(r *http.Request) bool {
	if r.Body != nil && r.Body != http.NoBody {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// directPool holds the idle connections of direct requests, per upstream.
type directPool struct {
	dial func(ctx context.Context, addr string) (net.Conn, error)
	now  func() time.Time

	mu   sync.Mutex // guards the fields below
	idle map[string][]*directConn
	gen  uint64 // connections of an older generation are not reused
}

// directConn is one upstream connection.
type directConn struct {
	pool  *directPool
	addr  string
	gen   uint64
	conn  net.Conn
	lr    limitReader
	br    *bufio.Reader
	bw    *bufio.Writer
	since time.Time // idle since
	used  bool      // has carried a request
}

// limitReader bounds what an answer's header reads; the body reads on.
type limitReader struct {
	r    io.Reader
	left int64 // < 0: no bound
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return l.r.Read(p)
	}
	if l.left == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

var errHeaderTooLarge = fmt.Errorf("gateway: the service's answer header exceeds %d bytes", directMaxHeader)

// get takes an idle connection to addr, or dials one.
func (p *directPool) get(ctx context.Context, addr string) (*directConn, error) {
	now := p.now()
	p.mu.Lock()
	for {
		cs := p.idle[addr]
		if len(cs) == 0 {
			break
		}
		c := cs[len(cs)-1]
		cs[len(cs)-1] = nil
		p.idle[addr] = cs[:len(cs)-1]
		if c.gen == p.gen && now.Sub(c.since) < directIdleTimeout {
			p.mu.Unlock()
			if c.alive() {
				return c, nil
			}
			_ = c.conn.Close()
			p.mu.Lock()
			continue
		}
		_ = c.conn.Close()
	}
	gen := p.gen
	p.mu.Unlock()
	nc, err := p.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &directConn{pool: p, addr: addr, gen: gen, conn: nc}
	c.lr = limitReader{r: nc, left: -1}
	c.br = bufio.NewReader(&c.lr)
	c.bw = bufio.NewWriter(nc)
	return c, nil
}

// alive reports whether an idle connection may carry a request: the
// service has neither closed it nor sent anything unasked (which
// http.Transport's reader, waiting on every idle connection, notices as it
// comes). A socket is asked of the kernel; a mesh stream is read with a
// deadline in the past, which answers from what the stream holds without
// waiting. A request that finds its pooled connection closed before any
// answer anyway is sent again on a fresh one (roundTrip).
func (c *directConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if sc, ok := c.conn.(syscall.Conn); ok {
		if alive, ok := socketAlive(sc); ok {
			return alive
		}
	}
	if c.conn.SetReadDeadline(time.Unix(1, 0)) != nil {
		return false
	}
	_, err := c.br.Peek(1)
	if err == nil {
		return false // an answer nobody asked for
	}
	return isTimeout(err)
}

// isTimeout reports whether err is a deadline's, as a connection's read
// returns it: asked of err itself first, without errors.As's reflection,
// which every request's check of its pooled connection would pay.
func isTimeout(err error) bool {
	if te, ok := err.(interface{ Timeout() bool }); ok {
		return te.Timeout()
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// put returns c to the pool, or closes it.
func (p *directPool) put(c *directConn) {
	c.since = p.now()
	p.mu.Lock()
	if c.gen != p.gen || len(p.idle[c.addr]) >= directIdlePerHost {
		p.mu.Unlock()
		_ = c.conn.Close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]*directConn{}
	}
	p.idle[c.addr] = append(p.idle[c.addr], c)
	p.mu.Unlock()
}

// renew starts a generation: the idle connections are closed, and those
// carrying a request are closed when it ends.
func (p *directPool) renew() {
	p.mu.Lock()
	p.gen++
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	closeAll(idle)
}

// closeIdle closes the idle connections; with stale set, only those idle
// for directIdleTimeout or longer.
func (p *directPool) closeIdle(stale bool) {
	now := p.now()
	var gone map[string][]*directConn
	p.mu.Lock()
	for addr, cs := range p.idle {
		keep := cs[:0]
		for _, c := range cs {
			if stale && now.Sub(c.since) < directIdleTimeout {
				keep = append(keep, c)
				continue
			}
			if gone == nil {
				gone = map[string][]*directConn{}
			}
			gone[addr] = append(gone[addr], c)
		}
		clear(cs[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = keep
		}
	}
	p.mu.Unlock()
	closeAll(gone)
}

func closeAll(m map[string][]*directConn) {
	for _, cs := range m {
		for _, c := range cs {
			_ = c.conn.Close()
		}
	}
}

// roundTrip sends a direct request (isDirect). A pooled connection that
// fails before the first byte of an answer (the service closed it while
// it was idle) is given up, and a replayable request sent again on a
// fresh one.
func (p *directPool) roundTrip(r *http.Request) (*http.Response, error) {
	var got1xx func(int, textproto.MIMEHeader) error
	if trace := httptrace.ContextClientTrace(r.Context()); trace != nil {
		got1xx = trace.Got1xxResponse
	}
	return p.send(r, got1xx)
}

// send is roundTrip with the 1xx answers handed to got1xx, if not nil
// (and otherwise skipped), rather than to the request's client trace.
func (p *directPool) send(r *http.Request, got1xx func(int, textproto.MIMEHeader) error) (*http.Response, error) {
	if err := validHeaders(r.Header); err != nil {
		return nil, err
	}
	// Asked for gzip and decoded as http.Transport does, when the request
	// names no coding (the response rules read text); decided once, for
	// every connection the request is sent on.
	gz := r.Header.Get("Accept-Encoding") == "" && r.Header.Get("Range") == "" && r.Method != http.MethodHead
	if gz {
		r.Header["Accept-Encoding"] = []string{"gzip"}
	}
	ctx := r.Context()
	for {
		c, err := p.get(ctx, r.URL.Host)
		if err != nil {
			return nil, err
		}
		reused := c.used
		c.used = true
		resp, answered, err := c.roundTrip(r, gz, got1xx)
		if err == nil {
			return resp, nil
		}
		_ = c.conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !reused || answered || !replayable(r) {
			return nil, err
		}
	}
}

// validHeaders refuses what http.Transport refuses to send: a field name
// or value that is not one.
func validHeaders(h http.Header) error {
	for k, vv := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("net/http: invalid header field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("net/http: invalid header field value for %q", k)
			}
		}
	}
	return nil
}

// roundTrip writes r and reads its answer's header, decoding a gzip body
// when gz (the pool asked for it), handing 1xx answers to got1xx;
// answered reports whether any of the answer had arrived when it failed.
func (c *directConn) roundTrip(r *http.Request, gz bool, got1xx func(int, textproto.MIMEHeader) error) (resp *http.Response, answered bool, err error) {
	ctx := r.Context()
	stop := context.AfterFunc(ctx, func() { _ = c.conn.Close() })
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if err = writeRequest(c.bw, r); err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		return nil, false, err
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(directHeaderTimeout)) // the socket's clock
	c.lr.left = directMaxHeader
	for {
		if _, err = c.br.Peek(1); err != nil {
			return nil, false, c.headerErr(err)
		}
		var plain bool
		if resp, plain = readPlainHead(c.br, r); !plain {
			resp, err = http.ReadResponse(c.br, r)
			if err != nil {
				return nil, true, c.headerErr(err)
			}
		}
		code := resp.StatusCode
		if code == http.StatusSwitchingProtocols {
			// isDirect asked for no upgrade.
			return nil, true, errors.New("gateway: the service switched protocols on a request that asked for none")
		}
		if code < 100 || code > 199 {
			break
		}
		if got1xx != nil {
			if err = got1xx(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, true, err
			}
			c.lr.left = directMaxHeader
		}
	}
	c.lr.left = -1
	_ = c.conn.SetReadDeadline(time.Time{})
	keep := !resp.Close && !r.Close
	b := &directBody{rc: resp.Body, c: c, keep: keep, stop: stop}
	resp.Body = b
	if gz && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		resp.Body = &gunzipBody{body: b}
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
	}
	return resp, true, nil
}

// bodyBehind is a connection's writer as Request.Write sees it: not a
// *bufio.Writer, which it would flush after the header when the body is
// not in memory, so that the header and a direct request's body (small,
// known length) leave in one write, one frame of the mesh stream and one
// write of the destination agent to the service, not two.
type bodyBehind struct{ *bufio.Writer }

// writeRequest writes r to w as Request.Write does, byte for byte, for the
// requests the gateway sends directly: its header straight into w,
// without Request.Write's formatting, transfer bookkeeping and pooled
// sorter (a twentieth of the WAF-off gateway's CPU). Anything outside
// the plain case (a method, host or target Request.Write would refuse,
// clean or convert; a field value holding CR or LF; a body of unknown
// length, chunked or with trailers; "Connection: close"; a client trace
// that watches the writing) goes to Request.Write itself.
func writeRequest(w *bufio.Writer, r *http.Request) (err error) {
	if r.URL == nil {
		return r.Write(bodyBehind{w})
	}
	body := r.Body != nil && r.Body != http.NoBody
	host := cmp.Or(r.Host, r.URL.Host)
	ruri := r.URL.RequestURI()
	if !plainRequest(r, body, host, ruri) {
		return r.Write(bodyBehind{w})
	}
	// The fields to write, sorted by name as Request.Write sorts them
	// (most requests' on the stack).
	var buf [32]field
	fields := buf[:0]
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written below, or not at all
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // dropped, as Request.Write drops it
		}
		for _, v := range vv {
			if hasCRLF(v) {
				return r.Write(bodyBehind{w}) // which sends CR and LF as spaces
			}
		}
		fields = append(fields, field{k, vv})
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	ua := "Go-http-client/1.1" // Request.Write's, unless the header has the field
	if vv, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
		if hasCRLF(ua) {
			return r.Write(bodyBehind{w})
		}
	}

	closed := !body
	defer func() {
		if !closed {
			if cerr := r.Body.Close(); err == nil {
				err = cerr
			}
		}
	}()
	w.WriteString(r.Method)
	w.WriteByte(' ')
	w.WriteString(ruri)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if ua != "" { // (before trimming: a value of spaces is sent empty)
		w.WriteString("User-Agent: ")
		w.WriteString(textproto.TrimString(ua))
		w.WriteString("\r\n")
	}
	if r.ContentLength > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		var n [20]byte
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(n[:0], r.ContentLength, 10))
		w.WriteString("\r\n")
	}
	for _, f := range fields {
		for _, v := range f.values {
			w.WriteString(f.name)
			w.WriteString(": ")
			w.WriteString(textproto.TrimString(v))
			w.WriteString("\r\n")
		}
	}
	if _, err := w.WriteString("\r\n"); err != nil {
		return err
	}
	if !body {
		return nil
	}
	n, err := io.Copy(w, io.LimitReader(r.Body, r.ContentLength))
	if err != nil {
		return err
	}
	extra, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		return err
	}
	closed = true
	if err := r.Body.Close(); err != nil {
		return err
	}
	if n+extra != r.ContentLength {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", r.ContentLength, n+extra)
	}
	return nil
}

// plainRequest reports whether writeRequest writes r itself: what
// Request.Write would send as it is, with a body, if any, of known length.
func plainRequest(r *http.Request, body bool, host, ruri string) bool {
	if t := httptrace.ContextClientTrace(r.Context()); t != nil &&
		(t.WroteHeaderField != nil || t.WroteHeaders != nil || t.WroteRequest != nil || t.Wait100Continue != nil) {
		return false
	}
	if r.Method == "" || r.Method == http.MethodConnect || r.Close || len(r.TransferEncoding) > 0 || len(r.Trailer) > 0 {
		return false
	}
	if body != (r.ContentLength > 0) || r.ContentLength < 0 {
		return false
	}
	if !plainText(host) || strings.IndexByte(host, '%') >= 0 || !httpguts.ValidHostHeader(host) || !plainText(ruri) {
		return false
	}
	return true
}

// field is a header field's name and values.
type field struct {
	name   string
	values []string
}

func hasCRLF(s string) bool {
	return strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0
}

// plainText reports whether s is printable ASCII (no control byte, no
// byte past 0x7e).
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// headerErr names an answer's header that was too large or too slow.
func (c *directConn) headerErr(err error) error {
	if c.lr.left == 0 {
		return errHeaderTooLarge
	}
	if isTimeout(err) {
		return fmt.Errorf("gateway: no answer header from the service within %v", directHeaderTimeout)
	}
	return err
}

// directBody is a direct answer's body: its end returns the connection to
// the pool, a Close before it closes the connection.
type directBody struct {
	rc     io.ReadCloser
	c      *directConn
	keep   bool
	stop   func() bool
	done   bool  // the connection is given up
	err    error // what Read returns once done
	closed bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.done {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.err = err
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *directBody) Close() error {
	b.closed = true
	if !b.done {
		b.err = http.ErrBodyReadAfterClose
		b.finish(false)
	}
	return nil
}

// finish ends the body's use of the connection: back to the pool after
// the whole body, when both sides keep it and the request was not
// cancelled meanwhile; closed otherwise.
func (b *directBody) finish(eof bool) {
	b.done = true
	cancelled := !b.stop()
	if eof && b.keep && !cancelled {
		b.c.pool.put(b.c)
		return
	}
	_ = b.c.conn.Close()
}

// gunzipBody decodes a body the transport asked for in gzip.
type gunzipBody struct {
	body *directBody
	zr   *gzip.Reader
	err  error
}

func (g *gunzipBody) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.zr == nil {
		if g.zr, g.err = gzip.NewReader(g.body); g.err != nil {
			return 0, g.err
		}
	}
	return g.zr.Read(p)
}

func (g *gunzipBody) Close() error { return g.body.Close() }
