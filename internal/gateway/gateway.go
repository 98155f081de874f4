// Package gateway is moat's edge: the only listener that faces the
// internet. It terminates TLS (1.2 minimum, AEAD suites only, HTTP/2 and
// HTTP/1.1), answers plain HTTP with a redirect, sets HSTS, refuses clients
// by IP list, rate limit, connection cap and CSRF origin check, runs the
// OWASP Core Rule Set through internal/waf, and forwards what is left to
// mesh services through a dialer the caller supplies. Every refusal is a
// security event (an OCSF record) and the client sees only a status and a
// request ID.
//
// Configuration comes from gateway.yaml; the file is watched, and a change
// is decoded, validated and built in full before it replaces the running
// one. A bad file leaves the old configuration serving.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"moat/internal/flow"
	"moat/internal/waf"
)

// Config is what the gateway needs besides its file.
type Config struct {
	// File is the path of gateway.yaml. Required.
	File string
	// Dial reaches port of a mesh service; the reverse proxy uses it for
	// every upstream connection. Required.
	Dial func(ctx context.Context, service string, port int) (net.Conn, error)
	// CredentialsChanged returns a channel closed at the next change of
	// what Dial's connections are made with (the SVID the gateway calls
	// as, the trust bundle), as agent.Agent.SVIDChanged does. At each,
	// new requests go over freshly dialed connections and the idle ones
	// dialed before are closed (requests in flight finish on theirs), so
	// that no keep-alive connection outlives the credentials it was made
	// with: a root retired by force would cut it. Nil: they never change.
	CredentialsChanged func() <-chan struct{}
	// Services returns the mesh services routes may name; nil means the
	// file's services list.
	Services func() []string
	// GetCertificate supplies certificates (for instance issued by moat's
	// CA). Nil means the PEM files named in the file, which are then
	// required.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Events receives security events; nil means none beyond the file's
	// events path.
	Events flow.Writer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now; nil means time.Now. Rate limits run on it.
	Now func() time.Time
	// WatchInterval is how often the config and certificate files are
	// checked for changes; 0 means 2s.
	WatchInterval time.Duration
	// ShutdownGrace is how long Run, once its context has ended, waits
	// for requests in flight and open WebSockets to finish; the
	// connections of requests and the WebSockets still open then are
	// closed. 0 means 10s.
	ShutdownGrace time.Duration
}

// Gateway serves HTTPS and the redirect port. Create with New, then Run.
type Gateway struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	dial   func(ctx context.Context, service string, port int) (net.Conn, error)
	events flow.Writer
	certs  certStore
	// eventGate bounds the security events written (see eventgate.go).
	eventGate eventGate
	// h2Errors counts the HTTP/2 refusals of Go's server (unserved.go).
	h2Errors h2Errors

	state     atomic.Pointer[state]
	bodies    bodyHolds // request bodies held for the WAF, across reloads
	proxy     http.Handler
	upstreams *upstreams
	// handover finishes the direct answers serveDirect does not write
	// itself; buffers are the proxies' and serveDirect's copy buffers.
	handover http.Handler
	buffers  copyBuffers
	// proxyAll sends every request through proxy, none through
	// serveDirect: the reference serveDirect's tests hold it to.
	proxyAll atomic.Bool
	tunnels  tunnels // open WebSockets, closed at the end of Run

	mu        sync.Mutex // guards fileStamp, eventsOut, closed
	fileStamp string
	eventsOut *os.File
	eventsJL  *flow.JSONLines
	closed    bool

	reloadMu sync.Mutex // serialises Reload

	ln, redirectLn net.Listener
}

// New loads and validates the file, builds the WAF, and opens the
// listeners (so Addr is known before Run).
func New(cfg Config) (*Gateway, error) {
	if cfg.File == "" {
		return nil, errors.New("gateway: Config.File is required")
	}
	if cfg.Dial == nil {
		return nil, errors.New("gateway: Config.Dial is required")
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, now: cfg.Now, dial: cfg.Dial}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.certs.log = g.log
	g.events = flow.WriterFunc(g.writeEvent)
	g.proxy = g.newProxy()
	st, stamp, err := g.build(nil)
	if err != nil {
		return nil, err
	}
	if err := g.openEvents(st.s.Events); err != nil {
		st.close()
		return nil, err
	}
	g.state.Store(st)
	g.fileStamp = stamp

	ln, err := net.Listen("tcp", st.s.Listen)
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("gateway: listen: %w", err)
	}
	limit := func() int { return g.state.Load().s.MaxConnsPerIP }
	g.ln = &connLimiter{Listener: ln, limit: limit, refuse: g.connRefused}
	if st.s.RedirectListen != "" {
		rln, err := net.Listen("tcp", st.s.RedirectListen)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("gateway: redirect listen: %w", err)
		}
		// The same cap per client, counted apart: the two listeners share
		// the process's file descriptors, so connections held open on
		// the plain port would otherwise starve the HTTPS one.
		g.redirectLn = &connLimiter{Listener: rln, limit: limit, refuse: g.connRefused}
	}
	return g, nil
}

// Addr is the HTTPS listener's address.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// RedirectAddr is the redirect listener's address, or nil when it is off.
func (g *Gateway) RedirectAddr() net.Addr {
	if g.redirectLn == nil {
		return nil
	}
	return g.redirectLn.Addr()
}

// build loads the file and builds a complete state. old, when not nil, is
// the running state: settings that need a restart may not change.
func (g *Gateway) build(old *state) (*state, string, error) {
	stamp := fileStamp(g.cfg.File)
	var services []string
	if g.cfg.Services != nil {
		services = g.cfg.Services()
		if services == nil {
			services = []string{}
		}
	}
	s, err := LoadFile(g.cfg.File, services)
	if err != nil {
		return nil, "", err
	}
	if old != nil {
		if s.Listen != old.s.Listen || s.RedirectListen != old.s.RedirectListen {
			return nil, "", fmt.Errorf("gateway: %s: listen: changing the listen addresses needs a restart", g.cfg.File)
		}
		if s.MinTLS != old.s.MinTLS || s.ReadHeader != old.s.ReadHeader || s.Read != old.s.Read ||
			s.Write != old.s.Write || s.Idle != old.s.Idle || s.MaxHeaderBytes != old.s.MaxHeaderBytes {
			return nil, "", fmt.Errorf("gateway: %s: changing tls.min_version or the limits' timeouts and header size needs a restart", g.cfg.File)
		}
		if s.Events != old.s.Events {
			return nil, "", fmt.Errorf("gateway: %s: events: changing the events file needs a restart", g.cfg.File)
		}
	}
	if g.cfg.GetCertificate == nil && s.CertFile == "" {
		return nil, "", fmt.Errorf("gateway: %s: tls.cert_file: required (no certificate source was given)", g.cfg.File)
	}
	rates := newRateStore
	if old != nil {
		rates = old.rates.carry
	}
	st := &state{s: s, rates: rates(s.MaxRateClients)}
	if old != nil && old.s.InspectBytes == s.InspectBytes && old.s.InspectClient == s.InspectClient &&
		old.s.InspectQueued == s.InspectQueued && old.s.InspectTimeout == s.InspectTimeout {
		// The bodies under evaluation and in the queue still count: a
		// fresh gate would admit another max_bytes beside them.
		st.gate = old.gate
	} else {
		st.gate = newInspectGate(s.InspectBytes, s.InspectClient, s.InspectQueued, s.InspectTimeout)
	}
	if s.WAFOn {
		if st.waf, err = waf.New(s.WAF); err != nil {
			return nil, "", fmt.Errorf("gateway: %s: waf: %w", g.cfg.File, err)
		}
		rx := st.waf.RegexStats()
		g.log.Debug("gateway: waf rules loaded", "rx_patterns", rx.Patterns, "rx_re2", rx.RE2,
			"rx_re2_refused", rx.RE2Refused, "rx_engines_disagreed", rx.Disagreed, "rx_binary", rx.Binary, "rx_prefiltered", rx.Prefiltered,
			"gated_rules", st.waf.GateStats().Rules)
		if err := st.waf.GateStats().Err; err != nil {
			// Every rule is still evaluated: slower, not weaker.
			g.log.Warn("gateway: waf rule gate off", "err", err)
		}
	}
	if g.cfg.GetCertificate == nil {
		if err := g.certs.set(s.CertFile, s.KeyFile); err != nil {
			st.close()
			return nil, "", err
		}
	}
	return st, stamp, nil
}

func (st *state) close() {
	if st.waf != nil {
		st.waf.Close()
	}
}

// Reload rebuilds from the file and swaps it in. On error the running
// configuration stays and the error says why.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.state.Load()
	st, stamp, err := g.build(old)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.fileStamp = fileStamp(g.cfg.File) // do not retry the same bad file every tick
		g.log.Error("gateway: reload failed, keeping the running configuration", "err", err)
		return err
	}
	g.fileStamp = stamp
	g.state.Store(st)
	// In-flight requests hold old until they finish; its WAF memory is
	// released by the collector. Closing it here could pull rules out from
	// under them.
	g.log.Info("gateway: configuration reloaded", "file", g.cfg.File, "routes", len(st.s.Routes))
	return nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (g *Gateway) Run(ctx context.Context) error {
	st := g.state.Load()
	get := g.cfg.GetCertificate
	if get == nil {
		get = g.certs.get
	}
	srv := &http.Server{
		Handler:           g,
		TLSConfig:         tlsConfig(st.s.MinTLS, get),
		ReadHeaderTimeout: st.s.ReadHeader,
		ReadTimeout:       st.s.Read,
		WriteTimeout:      st.s.Write,
		IdleTimeout:       st.s.Idle,
		MaxHeaderBytes:    st.s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		// "OPTIONS *" is the gateway's to answer (as a target that
		// names no path), with its headers and a record, not net/http's.
		DisableGeneralOptionsHandler: true,
	}
	g.unservedHooks(srv)
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(g.ln, "", "") }()
	if g.cfg.CredentialsChanged != nil {
		go g.followCredentials(ctx)
	}
	var rsrv *http.Server
	if g.redirectLn != nil {
		rsrv = &http.Server{
			Handler:           http.HandlerFunc(g.redirect),
			ReadHeaderTimeout: st.s.ReadHeader,
			ReadTimeout:       st.s.ReadHeader,
			WriteTimeout:      st.s.ReadHeader,
			IdleTimeout:       st.s.Idle,
			MaxHeaderBytes:    st.s.MaxHeaderBytes,
			ErrorLog:          srv.ErrorLog,
			// A target that is no path, "*" too, gets the redirect
			// handler's 400.
			DisableGeneralOptionsHandler: true,
		}
		g.unservedHooks(rsrv)
		go func() { errc <- rsrv.Serve(g.redirectLn) }()
	}
	interval := g.cfg.WatchInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errc:
			break loop
		case <-tick.C:
			g.mu.Lock()
			changed := fileStamp(g.cfg.File) != g.fileStamp
			g.mu.Unlock()
			if changed {
				_ = g.Reload()
			}
			g.certs.check()
			g.flushEvents()
			g.upstreams.closeStale()
		}
	}
	grace := g.cfg.ShutdownGrace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Requests still in flight at the end of the grace (a slow service, a
	// client that never finishes its body) have their connections closed:
	// Shutdown alone would return and leave them running.
	if srv.Shutdown(sctx) != nil {
		g.log.Warn("gateway: requests still in flight at the end of the shutdown grace: their connections are closed", "grace", grace)
		_ = srv.Close()
	}
	if rsrv != nil && rsrv.Shutdown(sctx) != nil {
		_ = rsrv.Close()
	}
	// Shutdown has waited, within the grace, for the handshakes in
	// flight, but forgets a connection once it is hijacked: the
	// WebSockets open get what is left of the grace, then are closed.
	if n := g.tunnels.drain(sctx); n > 0 {
		g.log.Info("gateway: websocket tunnels closed at shutdown: still open at the end of the grace",
			"closed", n, "grace", grace)
	}
	g.flushEvents()
	g.upstreams.closeIdle()
	g.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// Close stops listening and releases the WAF. It is idempotent.
func (g *Gateway) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	if g.ln != nil {
		g.ln.Close()
	}
	if g.redirectLn != nil {
		g.redirectLn.Close()
	}
	if g.eventsOut != nil {
		g.eventsOut.Close()
	}
	return nil
}

func (g *Gateway) openEvents(name string) error {
	if name == "" {
		return nil
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("gateway: events: %w", err)
	}
	g.eventsOut = f
	g.eventsJL = flow.NewJSONLines(f)
	return nil
}

func (g *Gateway) writeEvent(r flow.Record) error {
	var first error
	if g.cfg.Events != nil {
		first = g.cfg.Events.Write(r)
	}
	g.mu.Lock()
	jl := g.eventsJL
	g.mu.Unlock()
	if jl != nil {
		if err := jl.Write(r); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// connRefused records a connection refused by the per-IP cap.
func (g *Gateway) connRefused(ip netip.Addr, local net.Addr) {
	ev := event{kind: KindRateLimit, reason: "concurrent connection cap per IP reached", client: ip, blocked: true, local: addrPort(local)}
	g.emit(&ev)
}

// redirect answers plain HTTP with 308 to the same URL over HTTPS. A
// client the IP lists refuse gets 403 and a request ID, as on the HTTPS
// port, and the refusal is recorded: a redirect would tell it that the
// site is served, and where. The host must look like a host name and the
// target be a path; anything else
// gets 400 rather than a redirect built from attacker-chosen bytes (an
// opaque target, "http:.evil.example/x", would otherwise continue the
// host: https://shop.example.org.evil.example/x). A host no route serves
// gets 404: the gateway sends nobody to a name it does not answer for.
func (g *Gateway) redirect(w http.ResponseWriter, r *http.Request) {
	served(r)
	st := g.state.Load()
	client, _, known := clientIP(r, st.s.Trusted)
	if reason := st.ipRefusal(client, known); reason != "" {
		ev := event{kind: KindIPDeny, reason: reason, status: http.StatusForbidden, blocked: true,
			r: r, reqID: newRequestID(), client: client}
		setOwnHeaders(w.Header(), ev.reqID, st.s.HSTS)
		g.refuse(w, ev)
		return
	}
	host, ok := normalizeHost(r.Host)
	path := r.URL.EscapedPath()
	if !ok || host == "" || r.URL.Opaque != "" || !strings.HasPrefix(path, "/") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if !st.servesHost(host) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	port := st.s.RedirectPort
	if port == 0 {
		if _, p, err := net.SplitHostPort(g.ln.Addr().String()); err == nil {
			port, _ = strconv.Atoi(p)
		}
	}
	target := "https://" + host
	if strings.Contains(host, ":") {
		target = "https://[" + host + "]"
	}
	if port != 443 {
		target += ":" + strconv.Itoa(port)
	}
	target += path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	if st.s.HSTS != "" {
		// Browsers ignore HSTS over plain HTTP; this is harmless and helps
		// scanners that look for it on every answer.
		w.Header().Set("Strict-Transport-Security", st.s.HSTS)
	}
	http.Redirect(w, r, target, http.StatusPermanentRedirect)
}
