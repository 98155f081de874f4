package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"moat/internal/flow"
	"moat/internal/waf"
)

// state is everything a reload replaces at once. Requests load it once and
// use that one throughout, so a reload never mixes two configs in a request.
type state struct {
	s     *Settings
	waf   *waf.WAF // nil when the WAF is disabled
	rates *rateStore
	gate  *inspectGate
}

// match returns the route for host (normalised) and path: an exact host
// beats any host, then the longest path prefix wins.
func (st *state) match(host, path string) *Route {
	var best *Route
	for i := range st.s.Routes {
		r := &st.s.Routes[i]
		if r.Host != "" && r.Host != host {
			continue
		}
		if !pathHasPrefix(path, r.Path) {
			continue
		}
		if best == nil || r.beats(best) {
			best = r
		}
	}
	return best
}

// beats reports whether r is the better match of the two, both matching.
func (r *Route) beats(other *Route) bool {
	return (r.Host != "" && other.Host == "") ||
		((r.Host == "") == (other.Host == "") && len(r.Path) > len(other.Path))
}

// foldRival reports whether another route than route would take path if
// letter case were ignored, as IIS, ASP.NET and Express (by default) route:
// "/ADMIN/users" is /admin/users to them.
func (st *state) foldRival(host, path string, route *Route) bool {
	for i := range st.s.Routes {
		r := &st.s.Routes[i]
		if r == route || (r.Host != "" && r.Host != host) || !pathHasPrefixFold(path, r.Path) {
			continue
		}
		if route == nil || r.beats(route) {
			return true
		}
	}
	return false
}

// ipRefusal says why the IP lists refuse client (clientIP's answer for a
// request), or "" when they admit it.
func (st *state) ipRefusal(client netip.Addr, known bool) string {
	s := st.s
	if !known && (!s.Deny.empty() || !s.Allow.empty()) {
		// A trusted proxy named a client the gateway cannot read: the
		// lists cannot be asked about it, and the proxy's own address
		// stands for nobody.
		return "client IP unreadable in X-Forwarded-For from a trusted proxy; the IP lists cannot judge it"
	}
	if s.Deny.contains(client) || (!s.Allow.empty() && !s.Allow.contains(client)) {
		return "client IP refused by the IP lists"
	}
	return ""
}

// localAddr is the gateway address r reached.
func localAddr(r *http.Request) netip.AddrPort {
	la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return addrPort(la)
}

// servesHost reports whether a route may answer host (normalised).
func (st *state) servesHost(host string) bool {
	for i := range st.s.Routes {
		if h := st.s.Routes[i].Host; h == "" || h == host {
			return true
		}
	}
	return false
}

// errPathAmbiguous: the path as sent and its normal form pick different
// routes, so some reader of it would take the request elsewhere.
var errPathAmbiguous = errors.New("the path as sent and its normal form pick different routes")

// route finds the route for r and the escaped path to forward. Every way
// the path may be read (as sent, decoded, normalised, and as forwarded)
// must pick the same route, or the request is refused: a backend that
// resolves what the gateway did not must not land on another route's
// checks. A nil route with a nil error is "no route".
func (st *state) route(host string, r *http.Request) (*Route, string, error) {
	raw := r.URL.EscapedPath()
	norm, err := normalizePath(raw, slashDecode)
	if err != nil {
		return nil, "", err
	}
	route := st.match(host, norm)
	// The readings to agree: as sent, decoded, normalised, without
	// parameters, and the last two with their segments' ends trimmed (an
	// array on the stack: no request's reading allocates).
	var buf [6]string
	forms := append(buf[:0], raw, r.URL.Path, norm)
	if strings.Contains(norm, ";") {
		// Tomcat, Jetty and Spring route on the path without its segments'
		// parameters ("/admin;x=1/users" is /admin/users to them).
		bare, err := normalizePath(stripParams(norm), slashDecode)
		if err != nil {
			return nil, "", err
		}
		forms = append(forms, bare)
	}
	for _, p := range forms[2:] {
		if t := trimSegmentEnds(p); t != p {
			// IIS and older Spring read "/admin./users" and
			// "/admin%20/users" as /admin/users.
			trimmed, err := normalizePath(t, slashDecode)
			if err != nil {
				return nil, "", err
			}
			forms = append(forms, trimmed)
		}
	}
	for _, p := range forms {
		if st.match(host, p) != route || st.foldRival(host, p, route) {
			return nil, "", errPathAmbiguous
		}
	}
	if route == nil || route.EncodedSlashes == slashDecode {
		return route, norm, nil
	}
	fwd, err := normalizePath(raw, route.EncodedSlashes)
	if err != nil {
		return nil, "", err
	}
	if st.match(host, fwd) != route {
		return nil, "", errPathAmbiguous
	}
	return route, fwd, nil
}

// setTarget rewrites r to the normal forms of its host and path, which the
// WAF then inspects and the proxy forwards.
func setTarget(r *http.Request, host, path string) {
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" && host != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	r.Host = host
	if p, err := url.PathUnescape(path); err == nil {
		r.URL.Path, r.URL.RawPath = p, path
	}
	r.RequestURI = path
	if r.URL.RawQuery != "" {
		r.RequestURI += "?" + r.URL.RawQuery
	}
}

// stripParams removes each segment's parameters (RFC 2396's ";" and what
// follows it up to the next "/") from a path in normal form.
func stripParams(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

// pathHasPrefix matches "/api" against "/api" and "/api/x", not "/apix".
func pathHasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// pathHasPrefixFold is pathHasPrefix ignoring letter case.
func pathHasPrefixFold(path, prefix string) bool {
	if len(path) < len(prefix) || !strings.EqualFold(path[:len(prefix)], prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type ctxKey struct{}

// forward is what the handler decided about a request, for the proxy. It
// is also the context the proxy's request carries, the request's own with
// the forward at ctxKey, and holds the answer's writer and the values of
// the fields the proxy sets, so that a forwarded request allocates them
// once, together.
type forward struct {
	context.Context // the request's
	route           *Route
	client          netip.Addr // the client, after trusted proxies
	ip              string     // client in text, for X-Real-IP
	xff             string     // the X-Forwarded-For chain to send
	reqID           string
	check           *respCheck // nil when the response is not inspected
	// flagged is a request the WAF flagged in detection-only mode; it is
	// recorded once the answer's status is known.
	flagged *event
	out     ownHeaders
	fields  [5]string // the values of the fields Rewrite sets
	// What serveDirect's request is made of: its URL, its body as the
	// transport closes it (not at all), and the answer it hands to the
	// reverse proxy to finish (handedOver).
	url    url.URL
	body   keptBody
	answer *http.Response
}

// Value answers ctxKey with f, and any other key as the request's context.
func (f *forward) Value(key any) any {
	if _, ok := key.(ctxKey); ok {
		return f
	}
	return f.Context.Value(key)
}

// errBlocked marks a response the WAF refused.
var errBlocked = errors.New("gateway: response blocked by the WAF")

// ServeHTTP runs one request through the gateway: request ID, client IP,
// IP lists, route, rate limit, CSRF, WAF, then the service.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	served(r)
	st := g.state.Load()
	reqID := newRequestID()
	h := w.Header()
	setOwnHeaders(h, reqID, st.s.HSTS)
	client, xff, known := clientIP(r, st.s.Trusted)
	ev := event{r: r, reqID: reqID, client: client}
	var flagged *event // a request let through in detection-only mode

	if reason := st.ipRefusal(client, known); reason != "" {
		ev.kind, ev.reason, ev.status, ev.blocked = KindIPDeny, reason, http.StatusForbidden, true
		g.refuse(w, ev)
		return
	}
	if r.Method == http.MethodConnect {
		// A reverse proxy has no tunnel to open: forwarded, CONNECT
		// would carry its body to a backend that reads it as requests
		// (RFC 9110 gives CONNECT content no meaning).
		http.Error(w, "CONNECT is not supported\nrequest id: "+reqID, http.StatusNotImplemented)
		return
	}
	if strings.EqualFold(r.Method, http.MethodTrace) {
		// TRACE has the service echo the request as it arrived: the
		// client's cookies and credentials, and what the gateway adds
		// (cross-site tracing). Frameworks that upper-case methods take
		// "trace" for it.
		http.Error(w, "TRACE is not supported\nrequest id: "+reqID, http.StatusNotImplemented)
		return
	}
	if err := checkH2Target(r); err != nil {
		ev.kind, ev.reason, ev.status, ev.blocked = KindPath, "target refused: "+err.Error(), http.StatusBadRequest, true
		g.refuse(w, ev)
		return
	}
	host, ok := normalizeHost(r.Host)
	if !ok || host == "" {
		// No host (HTTP/1.0 allows it): the service would get its own
		// mesh name and port ("frontend:8080") as Host, a name the
		// gateway never routed, in the links and redirects it builds.
		http.Error(w, "bad request\nrequest id: "+reqID, http.StatusBadRequest)
		return
	}
	route, path, err := st.route(host, r)
	if err != nil {
		// A path that is not one (no leading "/", a broken escape) is a
		// bad request; every other refusal is of what a backend would
		// read as another path, which only an attack sends: forbidden.
		status := http.StatusForbidden
		if errors.Is(err, errPathForm) {
			status = http.StatusBadRequest
		}
		ev.kind, ev.reason, ev.status, ev.blocked = KindPath, "path refused: "+err.Error(), status, true
		g.refuse(w, ev)
		return
	}
	if route == nil {
		http.Error(w, "not found\nrequest id: "+reqID, http.StatusNotFound)
		return
	}
	setTarget(r, host, path)
	onlyWebSocketUpgrade(r)
	if !answeredExpect(r) {
		http.Error(w, "expectation not supported\nrequest id: "+reqID, http.StatusExpectationFailed)
		return
	}
	ev.route = route.Name
	if ok, wait := st.rates.allow(route.Name, client, route.RPS, route.Burst, g.now()); !ok {
		h.Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		ev.kind, ev.reason, ev.status, ev.blocked = KindRateLimit, "rate limit exceeded", http.StatusTooManyRequests, true
		g.refuse(w, ev)
		return
	}
	if reason := csrfCheck(r, route); reason != "" {
		ev.kind, ev.reason, ev.status, ev.blocked = KindCSRF, reason, http.StatusForbidden, true
		g.refuse(w, ev)
		return
	}
	if r.ContentLength > route.MaxBodyBytes {
		http.Error(w, "request body too large\nrequest id: "+reqID, http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, route.MaxBodyBytes)
	}
	ip := client.String() // for the WAF and X-Real-IP
	var tx *waf.Tx
	if st.waf != nil && !route.WAFOff {
		if r.Body != nil && r.Body != http.NoBody {
			// Held until the request ends: the WAF forwards the body
			// from its buffer.
			done, err := g.bodies.hold(flow.SourceKey(client), st.s.InspectBodies)
			if err != nil {
				h.Set("Retry-After", "1")
				ev.kind, ev.reason, ev.status, ev.blocked = KindOverload, "as many request bodies held for WAF inspection as waf.body_inspection.max_bodies allows; refused uninspected", http.StatusServiceUnavailable, true
				if errors.Is(err, errClientShare) {
					ev.kind, ev.reason, ev.status = KindRateLimit, "the client's share of the request bodies held for WAF inspection is in use", http.StatusTooManyRequests
				}
				g.refuse(w, ev)
				return
			}
			defer done()
		}
		tx = st.waf.Begin(route.Exclusions)
		defer tx.Close()
		v, err := g.inspect(st, tx, r, route, client, ip)
		if err != nil {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				http.Error(w, "request body too large\nrequest id: "+reqID, http.StatusRequestEntityTooLarge)
			case errors.Is(err, errClientShare):
				h.Set("Retry-After", "1")
				ev.kind, ev.reason, ev.status, ev.blocked = KindRateLimit, "the client's share of WAF body inspection is in use", http.StatusTooManyRequests, true
				g.refuse(w, ev)
			case r.Context().Err() != nil:
				// The client went away while its body waited or was read.
			case errors.Is(err, errInspectBusy):
				h.Set("Retry-After", "1")
				ev.kind, ev.reason, ev.status, ev.blocked = KindOverload, "no room for WAF body inspection within the queue timeout, or the queue full; refused uninspected", http.StatusServiceUnavailable, true
				g.refuse(w, ev)
			default:
				g.log.Warn("gateway: WAF could not inspect a request; refusing it", "request_id", reqID, "err", err)
				http.Error(w, "bad request\nrequest id: "+reqID, http.StatusBadRequest)
			}
			return
		}
		if v.Detected {
			verdict := v // on the heap only when recorded
			ev.kind, ev.reason, ev.verdict = KindWAF, "request matched WAF rules", &verdict
			if v.Block {
				ev.status, ev.blocked = http.StatusForbidden, true
				if v.Status == http.StatusRequestEntityTooLarge || v.Status == http.StatusBadRequest || v.Status == http.StatusServiceUnavailable {
					ev.status = v.Status
				}
				g.refuse(w, ev)
				return
			}
			ev.reason = "request matched WAF rules (detection only)"
			f := ev
			flagged = &f // recorded with the answer the service gives
		}
	}
	fw := &forward{Context: r.Context(), route: route, client: client, ip: ip, xff: xff, reqID: reqID, flagged: flagged}
	if tx != nil && tx.ResponseInspected() {
		fw.check = &respCheck{tx: tx, ev: ev}
	}
	var ctx context.Context = fw
	fw.out = ownHeaders{ResponseWriter: w, reqID: reqID, hsts: st.s.HSTS}
	oh := &fw.out
	var out http.ResponseWriter = oh
	if r.Header.Get("Upgrade") != "" {
		// A WebSocket handshake (onlyWebSocketUpgrade left no other).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		out = &tunnelWriter{ownHeaders: oh, g: g, fw: fw, endRequest: cancel}
	}
	if out == oh && !g.proxyAll.Load() && plainForward(r) {
		g.serveDirect(oh, r, fw)
		return
	}
	g.proxy.ServeHTTP(out, r.WithContext(ctx))
}

// inspect runs the WAF's request phases over r, the body's evaluation
// within the state's inspection gate. A compressed body is decompressed as
// it is read, so its size when evaluated is unknown until then: it takes
// the gate for the route's limit before anything is read.
func (g *Gateway) inspect(st *state, tx *waf.Tx, r *http.Request, route *Route, client netip.Addr, ip string) (waf.Verdict, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return tx.Request(r, ip)
	}
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		release, err := st.gate.acquire(r.Context(), flow.SourceKey(client), route.MaxBodyBytes)
		if err != nil {
			return waf.Verdict{}, err
		}
		defer release()
		return tx.Request(r, ip)
	}
	body := &gatedBody{ReadCloser: r.Body, ctx: r.Context(), gate: st.gate, client: flow.SourceKey(client)}
	r.Body = body
	defer body.done()
	return tx.Request(r, ip)
}

// refuse answers with ev.status and the request ID, nothing more, and
// records the event. It takes ev by value, so that a request's event is
// on the heap only when one is recorded.
func (g *Gateway) refuse(w http.ResponseWriter, ev event) {
	g.emit(&ev)
	body := http.StatusText(ev.status)
	http.Error(w, strings.ToLower(body)+"\nrequest id: "+ev.reqID, ev.status)
}

// emit records ev, unless the event gate holds it back for a summary. The
// gateway address a request's event names is read here, not for every
// request.
func (g *Gateway) emit(ev *event) {
	if ev.r != nil && !ev.local.IsValid() {
		ev.local = localAddr(ev.r)
	}
	now := g.now()
	if !g.eventGate.allow(ev, now) {
		return
	}
	g.write(ev, now)
}

func (g *Gateway) write(ev *event, now time.Time) {
	if err := g.events.Write(ev.record(now)); err != nil {
		g.log.Warn("gateway: security event lost", "request_id", ev.reqID, "err", err)
	}
}

// flushEvents writes the summaries of the events the gate held back.
func (g *Gateway) flushEvents() {
	now := g.now()
	for _, ev := range g.eventGate.flush() {
		g.write(&ev, now)
	}
	if ev := g.h2Errors.flush(); ev != nil {
		g.write(ev, now)
	}
}

// csrfCheck returns why a request that may change state is refused, or "".
// Only the methods RFC 9110 calls safe pass unchecked: any other, also one
// the gateway does not know or spelt in lower case ("post", which some
// frameworks take for POST), is checked, and so is a WebSocket handshake
// (a GET that onlyWebSocketUpgrade left its Upgrade): it opens a channel
// that reads and writes with the user's cookies, which a page on another
// site would otherwise hold (cross-site WebSocket hijacking). Browsers
// send Origin on every handshake.
func csrfCheck(r *http.Request, route *Route) string {
	if route.CSRFOff {
		return ""
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		if r.Header.Get("Upgrade") == "" {
			return ""
		}
	}
	if len(r.Header.Values("Origin")) > 1 {
		return "more than one Origin"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		// Without an Origin to judge, the browser's own word on where the
		// request comes from decides: a sandboxed page of this site
		// (Origin "null", Referer this site) is another site.
		switch site := r.Header.Get("Sec-Fetch-Site"); site {
		case "", "same-origin", "none":
		default:
			return fmt.Sprintf("Sec-Fetch-Site %q without an Origin to allow", site)
		}
		if ref := r.Header.Get("Referer"); ref != "" {
			if u, err := url.Parse(ref); err == nil && u.Host != "" {
				origin = u.Scheme + "://" + u.Host
			} else {
				return "unreadable Referer"
			}
		} else if origin == "null" {
			return "opaque Origin"
		}
	}
	if origin == "" {
		switch route.CSRFMissing {
		case csrfAllow:
			return ""
		case csrfRefuseWithCookies:
			if r.Header.Get("Cookie") == "" {
				return ""
			}
			return "no Origin or Referer on a request with cookies"
		}
		return "no Origin or Referer"
	}
	if n, err := normOrigin(origin); err == nil {
		origin = n
	}
	allowed := route.AllowedOrigins
	if len(allowed) == 0 {
		// Browsers leave the default port out of Origin.
		allowed = []string{strings.TrimSuffix("https://"+strings.ToLower(r.Host), ":443")}
	}
	for _, a := range allowed {
		if origin == a {
			return ""
		}
	}
	return fmt.Sprintf("origin %q not allowed", origin)
}

// respCheck carries the WAF transaction to the response phase.
type respCheck struct {
	tx *waf.Tx
	ev event
}

// proxyHeaders are the request headers that carry what a proxy decided
// about the client's address, the scheme, host, port or URL, or the
// certificate the client presented. Backends and their frameworks believe
// them (X-Original-URL rewrites the path in IIS and Symfony,
// True-Client-IP and X-Real-IP name the client to nginx's realip, Rails,
// Spring; Tomcat's SSLValve takes ssl_client_cert, IIS's ARR
// X-ARR-ClientCert, for the client's certificate), so a client's own are
// dropped; the gateway sets X-Forwarded-For, -Proto, -Host, X-Real-IP and
// X-Request-ID itself, and asks for no client certificate.
var proxyHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range []string{
		"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-IP", "X-Request-ID",
		"True-Client-IP", "X-Client-IP", "Client-IP", "X-Cluster-Client-IP", "CF-Connecting-IP",
		"Fastly-Client-IP", "X-Originating-IP", "X-Remote-IP", "X-Remote-Addr", "X-ProxyUser-IP",
		"X-Original-Forwarded-For", "X-Envoy-External-Address",
		"X-Original-URL", "X-Rewrite-URL", "X-Original-URI", "X-Forwarded-URI", "X-Forwarded-Path",
		"X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Server", "X-Forwarded-Scheme",
		"X-Forwarded-SSL", "Front-End-HTTPS", "X-URL-Scheme", "X-Original-Host", "X-Host",
		"X-Forwarded-Client-Cert", "X-ARR-ClientCert", "X-Forwarded-TLS-Client-Cert", "X-Forwarded-TLS-Client-Cert-Info",
		"X-SSL-Client-Cert", "X-SSL-Cert", "X-Client-Cert", "SSL-Client-Cert", "X-SSL-Client-Verify", "X-Client-Verify",
		"SSL-Client-Verify", "X-SSL-Client-S-DN", "X-SSL-Client-DN", "X-Client-DN", "X-Amzn-Mtls-Clientcert",
		"X-Amzn-Mtls-Clientcert-Leaf",
	} {
		m[http.CanonicalHeaderKey(h)] = true
	}
	return m
}()

// stripClientHeaders drops the client's proxyHeaders (clientProxyHeader).
func stripClientHeaders(h http.Header) {
	for name := range h {
		if clientProxyHeader(name) {
			delete(h, name)
		}
	}
}

// clientProxyHeader reports whether a client's field is one of
// proxyHeaders, also when spelt with underscores, which CGI, PHP, WSGI
// and Rack read as dashes.
func clientProxyHeader(name string) bool {
	return proxyHeaders[http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))]
}

// newProxy builds the reverse proxy into the mesh: the URL host is
// "service:port", which the transport hands to dial. It also builds the
// proxy that finishes the direct answers serveDirect hands over (see
// proxy.go).
func (g *Gateway) newProxy() *httputil.ReverseProxy {
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, err
		}
		return g.dial(ctx, host, p)
	}
	g.upstreams = newUpstreams(func() *http.Transport {
		return &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dial(ctx, addr)
			},
			MaxIdleConnsPerHost:   directIdlePerHost,
			IdleConnTimeout:       directIdleTimeout,
			ResponseHeaderTimeout: directHeaderTimeout,
			ForceAttemptHTTP2:     false,
		}
	}, &directPool{dial: dial, now: g.now})
	g.handover = g.reverseProxy(handedOver{})
	return g.reverseProxy(g.upstreams)
}

// reverseProxy is a reverse proxy into the mesh over t.
func (g *Gateway) reverseProxy(t http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport:      t,
		BufferPool:     &g.buffers,
		Rewrite:        rewrite,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
	}
}

// rewrite sets what the proxy's request carries beyond the client's: the
// upstream, the forwarded fields; forwardHeader is its twin for the
// requests serveDirect sends.
func rewrite(pr *httputil.ProxyRequest) {
	fw := pr.In.Context().Value(ctxKey{}).(*forward)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = fw.route.upstream
	pr.Out.Host = pr.In.Host
	// Trailers arrive after the body, once the WAF has judged the
	// request and its headers were stripped: a backend that merges
	// them into its headers would read "X-Forwarded-For" or
	// "X-Original-URL" the gateway never saw. None is forwarded.
	pr.Out.Trailer = nil
	if fw.check != nil {
		// The response rules read text: the service may answer
		// in gzip alone, which the transport asks for and
		// decodes itself when the request names no coding (a
		// client's "br, zstd" would be answered in codings
		// the WAF cannot read, and refused).
		pr.Out.Header.Del("Accept-Encoding")
	}
	stripClientHeaders(pr.Out.Header)
	fw.setForwarded(pr.Out.Header, pr.In.Host)
}

// setForwarded sets the fields the gateway adds to a forwarded request,
// each the one value of its field, spelt as the header map holds them (a
// name in another case is canonicalised, a new string, on every request),
// the values in the forward's array (each field's slice its own, full: an
// Add copies it).
func (fw *forward) setForwarded(h http.Header, host string) {
	f := &fw.fields
	f[0], f[1], f[2], f[3], f[4] = fw.xff, "https", host, fw.ip, fw.reqID
	h["X-Forwarded-For"] = f[0:1:1]
	h["X-Forwarded-Proto"] = f[1:2:2]
	h["X-Forwarded-Host"] = f[2:3:3]
	h["X-Real-Ip"] = f[3:4:4]
	h["X-Request-Id"] = f[4:5:5]
}

// modifyResponse checks a 101's handshake, records a request flagged in
// detection-only mode with its answer's status, and runs the WAF's
// response phase.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := checkWebSocketAccept(resp); err != nil {
			return err
		}
	}
	fw, _ := resp.Request.Context().Value(ctxKey{}).(*forward)
	if fw != nil && fw.flagged != nil {
		fw.flagged.status = resp.StatusCode
		g.emit(fw.flagged)
		fw.flagged = nil
	}
	if fw == nil || fw.check == nil {
		return nil
	}
	rc := fw.check
	v, err := rc.tx.Response(resp)
	if err != nil {
		return err
	}
	if v.Detected {
		ev := rc.ev
		ev.kind, ev.verdict = KindWAF, &v
		if v.Block {
			ev.reason, ev.status, ev.blocked = "response matched WAF rules", http.StatusForbidden, true
			g.emit(&ev)
			return errBlocked
		}
		ev.reason, ev.status = "response matched WAF rules (detection only)", resp.StatusCode
		g.emit(&ev)
	}
	return nil
}

// proxyError answers a request the service did not answer, or whose
// answer the WAF refused.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	id := w.Header().Get("X-Request-ID")
	fw, _ := r.Context().Value(ctxKey{}).(*forward)
	if fw != nil {
		id = fw.reqID // the header may have gone with a 1xx
	}
	if fw != nil && fw.flagged != nil {
		fw.flagged.status = errorStatus(err)
		g.emit(fw.flagged)
		fw.flagged = nil
	}
	if errors.Is(err, errBlocked) {
		http.Error(w, "forbidden\nrequest id: "+id, http.StatusForbidden)
		return
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		http.Error(w, "request body too large\nrequest id: "+id, http.StatusRequestEntityTooLarge)
		return
	}
	g.log.Warn("gateway: upstream failed", "request_id", id, "err", err)
	http.Error(w, "bad gateway\nrequest id: "+id, http.StatusBadGateway)
}

// setOwnHeaders sets the fields the gateway puts on every answer: the
// request ID, and its HSTS policy when it has one.
func setOwnHeaders(h http.Header, reqID, hsts string) {
	setOnly(h, "X-Request-Id", reqID)
	if hsts != "" {
		setOnly(h, "Strict-Transport-Security", hsts)
	}
}

// setOnly is h.Set(name, v) for a name in canonical form, which leaves a
// field that already holds v alone as it is: the answer's headers are set
// when the handler starts and again as the proxy writes them.
func setOnly(h http.Header, name, v string) {
	if cur := h[name]; len(cur) == 1 && cur[0] == v {
		return
	}
	h[name] = []string{v}
}

// ownHeaders writes the headers the gateway sets on every answer into
// each header block the proxy writes, 1xx ones included. The proxy adds a
// service's fields beside the gateway's, so a second
// Strict-Transport-Security ("max-age=0") would stand beside the gateway's
// policy (a user agent takes the first, RFC 6797 section 8.1, but a cache
// or CDN that joins repeated fields makes the policy invalid, and a client
// that reads the last takes the service's), and a second X-Request-ID
// beside the ID the gateway's records carry; and the proxy clears the
// answer's headers once it has forwarded a service's 1xx (103 Early
// Hints), which took the gateway's own off the final answer. With the
// gateway's HSTS off, the service's passes.
type ownHeaders struct {
	http.ResponseWriter
	reqID, hsts string
	final       bool // a final status was written
}

func (w *ownHeaders) WriteHeader(code int) {
	setOwnHeaders(w.ResponseWriter.Header(), w.reqID, w.hsts)
	w.final = w.final || code >= 200 || code == http.StatusSwitchingProtocols
	w.ResponseWriter.WriteHeader(code)
}

func (w *ownHeaders) Write(b []byte) (int, error) {
	if !w.final {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// WebSocket hijacks).
func (w *ownHeaders) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// onlyWebSocketUpgrade drops an Upgrade other than a WebSocket handshake
// (RFC 6455 section 4.1: GET, "Upgrade: websocket", a key, version 13), so
// the backend answers it as a plain request. After a 101 the connection is
// a tunnel the gateway no longer reads: an "h2c" upgrade a backend accepts
// would carry HTTP/2 requests to any path, past routes, limits and WAF.
func onlyWebSocketUpgrade(r *http.Request) {
	up := r.Header.Values("Upgrade")
	if len(up) == 0 {
		return
	}
	if len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") && r.Method == http.MethodGet &&
		r.Header.Get("Sec-WebSocket-Key") != "" && r.Header.Get("Sec-WebSocket-Version") == "13" {
		return
	}
	r.Header.Del("Upgrade")
	r.Header.Del("HTTP2-Settings")
}

// answeredExpect takes the Expect field off a request whose expectation
// the gateway meets itself: "100-continue" (RFC 9110 section 10.1.1),
// answered by the server when the body is first read, that is when the
// WAF or the service reads it. A service thus never sees an expectation
// another hop has answered (CRS refuses the field, 920450, for what a
// forwarded one can do to a backend that answers it differently). Any
// other expectation is one the gateway cannot meet: false, for 417.
func answeredExpect(r *http.Request) bool {
	e := r.Header.Values("Expect")
	if len(e) == 0 {
		return true
	}
	if len(e) > 1 || !strings.EqualFold(strings.TrimSpace(e[0]), "100-continue") {
		return false
	}
	r.Header.Del("Expect")
	return true
}

// errUpgradeRefused: the backend switched protocols without completing
// the client's WebSocket handshake.
var errUpgradeRefused = errors.New("gateway: backend answered 101 without a WebSocket handshake for the request's key")

// checkWebSocketAccept lets a 101 through only when it completes the
// request's WebSocket handshake: "Upgrade: websocket" and the
// Sec-WebSocket-Accept derived from the request's key (RFC 6455 section
// 4.2.2). A backend whose status an attacker can choose (a health check
// that echoes one) thus opens no tunnel for requests the gateway never
// sees.
func checkWebSocketAccept(resp *http.Response) error {
	key := resp.Request.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return errUpgradeRefused
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(h[:]) {
		return errUpgradeRefused
	}
	return nil
}

// copyBuffers lends the reverse proxy its buffers for copying response
// bodies: without them it allocates 32 KiB a request, which was most of
// the WAF-off gateway's garbage.
type copyBuffers struct{ p sync.Pool }

func (b *copyBuffers) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

// Put keeps a buffer of Get's as the array it is, which the pool holds
// without allocating (a slice would go to the heap behind a pointer).
func (b *copyBuffers) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}

const copyBufferSize = 32 << 10

// errorStatus is the status ErrorHandler answers err with.
func errorStatus(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errBlocked):
		return http.StatusForbidden
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadGateway
}
