package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The SPIFFE Workload API is a gRPC service. The agent serves it with
// net/http's HTTP/2 server (cleartext, prior knowledge, as gRPC clients speak
// on a Unix socket) and encodes its few messages by hand, rather than
// linking gRPC and protobuf's reflection for two streaming calls: those
// take more than a megabyte of code and tables that every agent would map
// and initialise (bench/mesh, "Where the agent's memory goes"). The wire
// format is gRPC's over HTTP/2: a POST to /SpiffeWorkloadAPI/<method> with
// content-type application/grpc, each message prefixed by a compression
// flag byte and a four-byte big-endian length, the status in the
// grpc-status and grpc-message trailers.

// gRPC status codes the Workload API answers with.
const (
	rpcOK                = 0
	rpcInvalidArgument   = 3
	rpcResourceExhausted = 8
	rpcPermissionDenied  = 7
	rpcUnimplemented     = 12
	rpcInternal          = 13
)

// rpcError is a call's failure: a gRPC status code and its message.
type rpcError struct {
	code int
	msg  string
}

func (e *rpcError) Error() string { return fmt.Sprintf("rpc error: code %d: %s", e.code, e.msg) }

func rpcErrorf(code int, format string, args ...any) error {
	return &rpcError{code: code, msg: fmt.Sprintf(format, args...)}
}

// maxRPCRequest bounds a request message. The Workload API's requests the
// agent answers are empty messages; anything larger is not one of them.
const maxRPCRequest = 16 << 10

// rpcStream is a server-streaming call: its caller, and Send for each
// response message.
type rpcStream struct {
	ctx    context.Context
	caller callerInfo
	header http.Header // the request's headers: gRPC's metadata
	w      http.ResponseWriter
	rc     *http.ResponseController
}

// Send writes one message (already encoded) and flushes it to the client.
func (s *rpcStream) Send(msg []byte) error {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	if _, err := s.w.Write(append(b, msg...)); err != nil {
		return err
	}
	return s.rc.Flush()
}

// rpcMethod serves one method once its request was read. It returns when
// the call ends; its error, an *rpcError or not, becomes the call's status.
type rpcMethod func(s *rpcStream, req []byte) error

// callerKey is the context key of a connection's peer credentials (or the
// error reading them), read when the connection is accepted.
type callerKey struct{}

type callerResult struct {
	info callerInfo
	err  error
}

// Bounds on the Workload API. Any local user may connect, and a
// connection and its calls are held for as long as the client wishes (a
// workload keeps a call open to hear of rotations): without a bound one
// user's connections would take the agent's descriptors, and their calls
// its memory (some 15 KB each), and with them every other workload's
// identity and the mesh. One uid holds at most a quarter of the places
// of each; a connection past a bound is closed at once, a call past one
// is answered ResourceExhausted. A connection carries at most
// maxRPCStreams calls at once (a workload makes two: SVIDs and bundles).
const (
	maxRPCConns       = 1024
	maxRPCConnsPerUID = maxRPCConns / 4
	maxRPCCalls       = 1024
	maxRPCCallsPerUID = maxRPCCalls / 4
	maxRPCStreams     = 16
)

// uidBound counts places held by uid, at most perUID of one uid and total
// in all.
type uidBound struct {
	perUID, total int

	mu    sync.Mutex // guards n and byUID
	n     int
	byUID map[int]int
}

// take holds a place for uid, or reports false when a bound is reached.
func (b *uidBound) take(uid int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n >= b.total || b.byUID[uid] >= b.perUID {
		return false
	}
	if b.byUID == nil {
		b.byUID = map[int]int{}
	}
	b.n++
	b.byUID[uid]++
	return true
}

// release gives back a place take held for uid.
func (b *uidBound) release(uid int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n--
	if b.byUID[uid]--; b.byUID[uid] == 0 {
		delete(b.byUID, uid)
	}
}

// rpcListener accepts Unix socket connections, reads each one's peer
// credentials, and closes at once one past a bound (those whose
// credentials cannot be read count as one uid, -1).
type rpcListener struct {
	net.Listener
	conns uidBound
	shed  func(uid int)
}

// rpcConn is an accepted connection with its caller; closing it gives its
// place back.
type rpcConn struct {
	net.Conn
	caller  callerResult
	release sync.Once
	conns   *uidBound
}

func (c *rpcConn) Close() error {
	err := c.Conn.Close()
	c.release.Do(func() { c.conns.release(c.caller.info.UID) })
	return err
}

func (l *rpcListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		res := peerOf(c)
		if res.err != nil {
			res.info.UID = -1
		}
		if !l.conns.take(res.info.UID) {
			_ = c.Close()
			if l.shed != nil {
				l.shed(res.info.UID)
			}
			continue
		}
		return &rpcConn{Conn: c, caller: res, conns: &l.conns}, nil
	}
}

// peerOf reads the peer credentials of a Unix socket connection.
func peerOf(c net.Conn) callerResult {
	var res callerResult
	uc, ok := c.(*net.UnixConn)
	if !ok {
		res.err = errors.New("the Workload API accepts Unix sockets only")
	} else if raw, err := uc.SyscallConn(); err != nil {
		res.err = err
	} else if err := raw.Control(func(fd uintptr) { res.info, res.err = peerCredentials(int(fd)) }); err != nil {
		res.err = err
	}
	return res
}

// connCaller hands a connection's caller, read at accept, to its calls; it
// is the http.Server's ConnContext.
func connCaller(ctx context.Context, c net.Conn) context.Context {
	res := callerResult{err: errors.New("the Workload API accepts Unix sockets only")}
	if rc, ok := c.(*rpcConn); ok {
		res = rc.caller
	}
	return context.WithValue(ctx, callerKey{}, res)
}

// rpcServer routes gRPC calls of one service to its methods.
type rpcServer struct {
	service string // the service's full name: paths are /<service>/<method>
	methods map[string]rpcMethod
	calls   uidBound // the calls being served, by the caller's uid
}

func (s *rpcServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ProtoMajor != 2 || !isGRPCContentType(r.Header.Get("Content-Type")) {
		http.Error(w, "this socket serves the SPIFFE Workload API (gRPC) only", http.StatusUnsupportedMediaType)
		return
	}
	w.Header().Set("Content-Type", "application/grpc")
	w.WriteHeader(http.StatusOK)
	err := s.call(w, r)
	code, msg := rpcOK, ""
	if err != nil {
		var re *rpcError
		if errors.As(err, &re) {
			code, msg = re.code, re.msg
		} else {
			code, msg = rpcInternal, err.Error()
		}
	}
	w.Header().Set(http.TrailerPrefix+"Grpc-Status", fmt.Sprint(code))
	if msg != "" {
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", percentEncode(msg))
	}
}

func (s *rpcServer) call(w http.ResponseWriter, r *http.Request) error {
	svc, name, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	m := s.methods[name]
	if !ok || svc != s.service || m == nil {
		return rpcErrorf(rpcUnimplemented, "unknown method %.64q", r.URL.Path)
	}
	cr, _ := r.Context().Value(callerKey{}).(callerResult)
	if cr.err != nil {
		return rpcErrorf(rpcPermissionDenied, "unknown caller: %v", cr.err)
	}
	if !s.calls.take(cr.info.UID) {
		return rpcErrorf(rpcResourceExhausted, "uid %d holds %d calls to the Workload API already, or %d are held in all", cr.info.UID, s.calls.perUID, s.calls.total)
	}
	defer s.calls.release(cr.info.UID)
	req, err := readRPCMessage(r.Body)
	if err != nil {
		return err
	}
	return m(&rpcStream{ctx: r.Context(), caller: cr.info, header: r.Header, w: w, rc: http.NewResponseController(w)}, req)
}

// readRPCMessage reads a call's one request message.
func readRPCMessage(body io.Reader) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(body, hdr[:]); err != nil {
		return nil, rpcErrorf(rpcInvalidArgument, "reading the request message: %v", err)
	}
	if hdr[0] != 0 {
		return nil, rpcErrorf(rpcUnimplemented, "compressed request messages are not accepted")
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxRPCRequest {
		return nil, rpcErrorf(rpcResourceExhausted, "request message of %d bytes, more than %d", n, maxRPCRequest)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(body, msg); err != nil {
		return nil, rpcErrorf(rpcInvalidArgument, "reading the request message: %v", err)
	}
	return msg, nil
}

// isGRPCContentType reports whether ct is application/grpc, with the
// protobuf codec (gRPC's default) if it names one.
func isGRPCContentType(ct string) bool {
	rest, ok := strings.CutPrefix(ct, "application/grpc")
	return ok && (rest == "" || rest == "+proto" || strings.HasPrefix(rest, ";"))
}

// percentEncode encodes a grpc-message as gRPC asks: bytes outside
// printable ASCII, and '%', as %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// serveRPC serves s on ln (cleartext HTTP/2 only) until ctx ends. shed,
// when not nil, hears of each connection closed at accept for a bound.
func serveRPC(ctx context.Context, ln net.Listener, s *rpcServer, shed func(uid int)) error {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           s,
		Protocols:         &protos,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxRPCStreams},
		ConnContext:       connCaller,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	s.calls.perUID, s.calls.total = maxRPCCallsPerUID, maxRPCCalls
	go func() {
		errc <- srv.Serve(&rpcListener{Listener: ln, conns: uidBound{perUID: maxRPCConnsPerUID, total: maxRPCConns}, shed: shed})
	}()
	select {
	case <-ctx.Done():
		srv.Close()
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// The Workload API's messages the agent sends (workload.proto of the SPIFFE
// specification), encoded as protobuf: proto3, so fields holding their zero
// value are left out.

// x509SVID is the X509SVID message.
type x509SVID struct {
	ID     string // spiffe_id = 1
	Chain  []byte // x509_svid = 2: the certificates' DER, concatenated
	Key    []byte // x509_svid_key = 3: PKCS #8 DER
	Bundle []byte // bundle = 4: the trust domain's CA certificates' DER
	Hint   string // hint = 5
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func (s x509SVID) appendTo(b []byte) []byte {
	b = appendStringField(b, 1, s.ID)
	b = appendBytesField(b, 2, s.Chain)
	b = appendBytesField(b, 3, s.Key)
	b = appendBytesField(b, 4, s.Bundle)
	return appendStringField(b, 5, s.Hint)
}

// encodeX509SVIDResponse encodes X509SVIDResponse{svids = 1}.
func encodeX509SVIDResponse(svids []x509SVID) []byte {
	var b []byte
	for _, s := range svids {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, s.appendTo(nil))
	}
	return b
}

// encodeX509BundlesResponse encodes X509BundlesResponse{bundles = 2}, a map
// from trust domain to its CA certificates' DER.
func encodeX509BundlesResponse(bundles map[string][]byte) []byte {
	var b []byte
	for td, der := range bundles {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, td)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, der)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b
}
