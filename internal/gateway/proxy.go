package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The plain forward: a request the gateway sends as a direct request
// (isDirect) and whose answer it writes itself, on the handler's
// goroutine, without httputil.ReverseProxy, which clones the request and
// its header, strips and sets fields in several passes, puts a client
// trace in a new context for the 1xx answers, and reaches the pool
// through the transport. What the client and the service receive is
// ReverseProxy's, byte for byte (TestServeDirectAsProxy, FuzzServeDirect):
// the same header handling in one pass (forwardHeader), the same 1xx
// forwarding, the same hop-by-hop removal, response phase and errors, the
// same copy. What is outside the plain case goes to the reverse proxy: a
// request, before anything is sent (plainForward); an answer, once read,
// handed over as it came (handedOver).

// plainForward reports whether serveDirect sends r: no protocol upgrade
// (the caller's), a body, if any, of known length up to directMaxBody,
// and a query ReverseProxy sends as it is (plainQuery).
func plainForward(r *http.Request) bool {
	if r.ContentLength < 0 || r.ContentLength > directMaxBody || (r.ContentLength > 0 && r.Body == nil) {
		return false
	}
	return plainQuery(r.URL.RawQuery)
}

// queryReencoded is GODEBUG's urlmaxqueryparams, set: ReverseProxy then
// sends every query encoded again.
var queryReencoded = strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams")

// plainQuery reports whether ReverseProxy forwards the query q as it is:
// no ";", every "%" the start of an escape, at most 10,000 parameters
// (its cleanQueryParams encodes any other again).
func plainQuery(q string) bool {
	if q == "" {
		return true
	}
	if queryReencoded || strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
			i += 3
		default:
			i++
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hopByHop reports whether a field is one ReverseProxy drops as
// hop-by-hop in either direction (RFC 9110 section 7.6.1, and those
// RFC 2616 named).
func hopByHop(name string) bool {
	switch name {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// dropConnectionListed deletes from h the fields that src's Connection
// fields name.
func dropConnectionListed(h http.Header, src http.Header) {
	for _, f := range src["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				delete(h, http.CanonicalHeaderKey(sf))
			}
		}
	}
}

// removeHopByHop removes an answer's hop-by-hop fields, as ReverseProxy
// does.
func removeHopByHop(h http.Header) {
	dropConnectionListed(h, h)
	for name := range h {
		if hopByHop(name) {
			delete(h, name)
		}
	}
}

// Values of fields serveDirect sets, shared by every request: a header
// map's slices are replaced, never written into.
var (
	teTrailers = []string{"trailers"}
	noValue    = []string{""}
)

// forwardHeader is the header serveDirect sends for r: the client's
// fields less the hop-by-hop ones (also those its Connection fields name),
// the client's proxyHeaders and, when the response is inspected, its
// Accept-Encoding; then "Te: trailers" when the client's Te asks for
// trailers, the fields the gateway sets (setForwarded), and an empty
// User-Agent for a client that sent none (Request.Write would send its
// own). The client's values are shared, not copied.
func forwardHeader(r *http.Request, fw *forward) http.Header {
	in := r.Header
	h := make(http.Header, len(in)+6)
	for name, vv := range in {
		if hopByHop(name) || clientProxyHeader(name) || (fw.check != nil && name == "Accept-Encoding") {
			continue
		}
		h[name] = vv
	}
	dropConnectionListed(h, in)
	if httpguts.HeaderValuesContainsToken(in["Te"], "trailers") {
		h["Te"] = teTrailers
	}
	fw.setForwarded(h, r.Host)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noValue
	}
	return h
}

// keptBody is a request body the transport reads but does not close: the
// client's, which the server closes, and which closed early would have
// the server answer the client's "100-continue" no more.
type keptBody struct{ rc io.ReadCloser }

func (b *keptBody) Read(p []byte) (int, error) { return b.rc.Read(p) }
func (b *keptBody) Close() error               { return nil }

// serveDirect forwards r (plainForward) as a direct request and writes
// its answer to w, as the reverse proxy would.
func (g *Gateway) serveDirect(w http.ResponseWriter, r *http.Request, fw *forward) {
	out := r.WithContext(fw)
	fw.url = *r.URL
	fw.url.Scheme, fw.url.Host = "http", fw.route.upstream
	out.URL = &fw.url
	out.Header = forwardHeader(r, fw)
	out.Trailer = nil
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil
	} else {
		fw.body.rc = r.Body
		out.Body = &fw.body
	}
	res, err := g.upstreams.direct.send(out, func(code int, header textproto.MIMEHeader) error {
		h := w.Header()
		copyHeader(h, http.Header(header))
		w.WriteHeader(code)
		clear(h) // a 1xx's fields are its own
		return nil
	})
	if err != nil {
		g.proxyError(w, out, err)
		return
	}
	if !plainAnswer(res) {
		fw.answer = res
		g.handover.ServeHTTP(w, r.WithContext(fw))
		return
	}
	removeHopByHop(res.Header)
	if err := g.modifyResponse(res); err != nil {
		res.Body.Close()
		g.proxyError(w, out, err)
		return
	}
	copyHeader(w.Header(), res.Header)
	w.WriteHeader(res.StatusCode)
	buf := g.buffers.Get()
	err = g.copyAnswer(w, res.Body, buf, fw.reqID)
	g.buffers.Put(buf)
	res.Body.Close()
	if err != nil {
		// The answer is cut short: all the server can do is end the
		// connection (or stream) unfinished, as the reverse proxy does.
		panic(http.ErrAbortHandler)
	}
}

// plainAnswer reports whether serveDirect writes res itself: a body of
// known length, no trailers, not a stream of server-sent events (which
// the reverse proxy flushes as it comes). The test of the media type is
// looser than the proxy's, which sends the answers it takes on to it.
func plainAnswer(res *http.Response) bool {
	if res.ContentLength < 0 || len(res.Trailer) > 0 {
		return false
	}
	ct := res.Header.Get("Content-Type")
	for i := 0; i+len("event-stream") <= len(ct); i++ {
		if strings.EqualFold(ct[i:i+len("event-stream")], "event-stream") {
			return false
		}
	}
	return true
}

// copyAnswer copies an answer's body to the client as the reverse proxy
// does: a failed read of the service is logged and ends the copy, a
// failed write to the client ends it.
func (g *Gateway) copyAnswer(dst io.Writer, src io.Reader, buf []byte, reqID string) error {
	for {
		nr, rerr := src.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			g.log.Warn("gateway: the service's answer failed mid-body", "request_id", reqID, "err", rerr)
		}
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// copyHeader adds src's fields to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// handedOver is the transport of the proxy that finishes what serveDirect
// began: it answers with the answer serveDirect read (forward.answer).
type handedOver struct{}

func (handedOver) RoundTrip(r *http.Request) (*http.Response, error) {
	fw, _ := r.Context().Value(ctxKey{}).(*forward)
	if fw == nil || fw.answer == nil {
		return nil, errors.New("gateway: no answer handed over")
	}
	res := fw.answer
	fw.answer = nil
	return res, nil
}
