package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"moat/internal/waf"
)

// state is everything a reload replaces at once. Requests load it once and
// use that one throughout, so a reload never mixes two configs in a request.
type state struct {
	s     *Settings
	waf   *waf.WAF // nil when the WAF is disabled
	rates *rateStore
}

// match returns the route for host and path: an exact host beats any host,
// then the longest path prefix wins.
func (st *state) match(host, path string) *Route {
	host = strings.ToLower(hostOnly(host))
	var best *Route
	for i := range st.s.Routes {
		r := &st.s.Routes[i]
		if r.Host != "" && r.Host != host {
			continue
		}
		if !pathHasPrefix(path, r.Path) {
			continue
		}
		if best == nil || (r.Host != "" && best.Host == "") ||
			((r.Host == "") == (best.Host == "") && len(r.Path) > len(best.Path)) {
			best = r
		}
	}
	return best
}

// pathHasPrefix matches "/api" against "/api" and "/api/x", not "/apix".
func pathHasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type ctxKey int

const (
	keyRoute ctxKey = iota
	keyTx
	keyClient
	keyReqID
)

// errBlocked marks a response the WAF refused.
var errBlocked = errors.New("gateway: response blocked by the WAF")

// ServeHTTP runs one request through the gateway: request ID, client IP,
// IP lists, route, rate limit, CSRF, WAF, then the service.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	reqID := newRequestID()
	h := w.Header()
	h.Set("X-Request-ID", reqID)
	if st.s.HSTS != "" {
		h.Set("Strict-Transport-Security", st.s.HSTS)
	}
	client, xff := clientIP(r, st.s.Trusted)
	ev := event{r: r, reqID: reqID, client: client}

	if st.s.Deny.contains(client) || (!st.s.Allow.empty() && !st.s.Allow.contains(client)) {
		ev.kind, ev.reason, ev.status, ev.blocked = KindIPDeny, "client IP refused by the IP lists", http.StatusForbidden, true
		g.refuse(w, &ev)
		return
	}
	route := st.match(r.Host, r.URL.Path)
	if route == nil {
		http.Error(w, "not found\nrequest id: "+reqID, http.StatusNotFound)
		return
	}
	ev.route = route.Name
	if ok, wait := st.rates.allow(route.Name, client, route.RPS, route.Burst, g.now()); !ok {
		h.Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		ev.kind, ev.reason, ev.status, ev.blocked = KindRateLimit, "rate limit exceeded", http.StatusTooManyRequests, true
		g.refuse(w, &ev)
		return
	}
	if reason := csrfCheck(r, route); reason != "" {
		ev.kind, ev.reason, ev.status, ev.blocked = KindCSRF, reason, http.StatusForbidden, true
		g.refuse(w, &ev)
		return
	}
	if r.ContentLength > st.s.MaxBodyBytes {
		http.Error(w, "request body too large\nrequest id: "+reqID, http.StatusRequestEntityTooLarge)
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, st.s.MaxBodyBytes)
	}
	var tx *waf.Tx
	if st.waf != nil && !route.WAFOff {
		tx = st.waf.Begin(route.Exclusions)
		defer tx.Close()
		v, err := tx.Request(r, client.String())
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "request body too large\nrequest id: "+reqID, http.StatusRequestEntityTooLarge)
				return
			}
			g.log.Warn("gateway: WAF could not inspect a request; refusing it", "request_id", reqID, "err", err)
			http.Error(w, "bad request\nrequest id: "+reqID, http.StatusBadRequest)
			return
		}
		if v.Detected {
			ev.kind, ev.reason, ev.verdict = KindWAF, "request matched WAF rules", &v
			if v.Block {
				ev.status, ev.blocked = http.StatusForbidden, true
				if v.Status == http.StatusRequestEntityTooLarge || v.Status == http.StatusBadRequest || v.Status == http.StatusServiceUnavailable {
					ev.status = v.Status
				}
				g.refuse(w, &ev)
				return
			}
			ev.reason = "request matched WAF rules (detection only)"
			g.emit(&ev)
		}
	}
	ctx := context.WithValue(r.Context(), keyRoute, route)
	ctx = context.WithValue(ctx, keyClient, xff)
	ctx = context.WithValue(ctx, keyReqID, reqID)
	if tx != nil && tx.ResponseInspected() {
		ctx = context.WithValue(ctx, keyTx, &respCheck{tx: tx, ev: ev})
	}
	g.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// refuse answers with ev.status and the request ID, nothing more, and
// records the event.
func (g *Gateway) refuse(w http.ResponseWriter, ev *event) {
	g.emit(ev)
	body := http.StatusText(ev.status)
	http.Error(w, strings.ToLower(body)+"\nrequest id: "+ev.reqID, ev.status)
}

func (g *Gateway) emit(ev *event) {
	if err := g.events.Write(ev.record(g.now())); err != nil {
		g.log.Warn("gateway: security event lost", "request_id", ev.reqID, "err", err)
	}
}

// csrfCheck returns why an unsafe request is refused, or "".
func csrfCheck(r *http.Request, route *Route) string {
	if route.CSRFOff {
		return ""
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return ""
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
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
	origin = strings.ToLower(origin)
	allowed := route.AllowedOrigins
	if len(allowed) == 0 {
		allowed = []string{"https://" + strings.ToLower(r.Host)}
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

// newProxy builds the reverse proxy into the mesh: the URL host is
// "service:port", which the transport hands to dial.
func (g *Gateway) newProxy() *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			p, err := strconv.Atoi(port)
			if err != nil {
				return nil, err
			}
			return g.dial(ctx, host, p)
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	return &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			route := pr.In.Context().Value(keyRoute).(*Route)
			xff, _ := pr.In.Context().Value(keyClient).(string)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = net.JoinHostPort(route.Service, strconv.Itoa(route.Port))
			pr.Out.Host = pr.In.Host
			// The client's own Forwarded header is not to be believed;
			// the X-Forwarded-* set here are.
			pr.Out.Header.Del("Forwarded")
			pr.Out.Header.Set("X-Forwarded-For", xff)
			pr.Out.Header.Set("X-Forwarded-Proto", "https")
			pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
			id, _ := pr.In.Context().Value(keyReqID).(string)
			pr.Out.Header.Set("X-Request-ID", id)
		},
		ModifyResponse: func(resp *http.Response) error {
			rc, _ := resp.Request.Context().Value(keyTx).(*respCheck)
			if rc == nil {
				return nil
			}
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
				ev.reason = "response matched WAF rules (detection only)"
				g.emit(&ev)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			id := w.Header().Get("X-Request-ID")
			if errors.Is(err, errBlocked) {
				http.Error(w, "forbidden\nrequest id: "+id, http.StatusForbidden)
				return
			}
			g.log.Warn("gateway: upstream failed", "request_id", id, "err", err)
			http.Error(w, "bad gateway\nrequest id: "+id, http.StatusBadGateway)
		},
	}
}
