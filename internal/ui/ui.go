// Package ui is moat's dashboard: a small web server on the loopback
// interface of an administrator's own machine that serves a page written
// in this package (HTML, CSS and JavaScript, embedded; no build step, no
// third-party front-end code) and answers it by calling the control plane
// with the administrator's own credentials, as "kubectl proxy" and
// "linkerd viz dashboard" do. The control plane gets no new listener and
// keeps no password: the dashboard can do what the credentials can, and
// every call it makes is authorized and audited as the CLI's are.
//
// No other page or local process can drive it. The address it prints
// carries a one-time token that the first visit trades for a session
// cookie (HttpOnly, SameSite=Strict) holding a secret made at start; every
// change also carries a CSRF token the page reads over the session; the
// Host and Origin of each request must name the loopback listener (DNS
// rebinding finds nothing); and the page runs under a Content-Security-
// Policy that admits only its own scripts and styles (no inline script, no
// eval).
package ui

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/api"
	"moat/internal/flow"
)

//go:embed static
var static embed.FS

// Control is the control plane as the dashboard calls it: an admin client
// (api.Client, or a session that asks for a second factor) holding the
// administrator's credentials.
type Control interface {
	Call(ctx context.Context, method, path string, in, out any) error
	FollowFlows(ctx context.Context, query url.Values, fn func(api.FlowFrame) error) error
}

// AuditStatus is the outcome of verifying the audit log against its
// latest signed checkpoint.
type AuditStatus struct {
	// OK says the checkpoint's signature holds, it extends every
	// checkpoint checked before, and the entries recompute its tree.
	OK bool `json:"ok"`
	// Size, Origin and Root describe the checkpoint verified.
	Size   int64  `json:"size"`
	Origin string `json:"origin,omitempty"`
	Root   string `json:"root,omitempty"`
	// Error says what failed when OK is false.
	Error string    `json:"error,omitempty"`
	At    time.Time `json:"at"`
}

// Config configures a Server.
type Config struct {
	// Control is the control plane; required.
	Control Control
	// Admin is who the credentials are (from whoami); required. Its
	// SPIFFE ID names the trust domain the services live in.
	Admin api.Whoami
	// Server is the control plane's address, shown on the page.
	Server string
	// Listen is where to serve: a loopback address. Empty means
	// 127.0.0.1:0 (a port the kernel picks).
	Listen string
	// VerifyAudit checks the audit log against its latest checkpoint with
	// the verifier key pinned beside the credentials; nil leaves the audit
	// view without verification (and says so).
	VerifyAudit func(ctx context.Context) (AuditStatus, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand makes the start's secrets; nil means crypto/rand.
	Rand io.Reader
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server is a running dashboard.
type Server struct {
	cfg   Config
	log   *slog.Logger
	td    spiffeid.TrustDomain
	ln    net.Listener
	ready chan struct{}

	// login is the one-time token of the printed address; session the
	// cookie's secret; csrf what every change carries.
	login, session, csrf secret

	mu        sync.Mutex // guards loginUsed and audit
	loginUsed bool
	loggedIn  chan struct{} // closed when the login token is spent
	audit     *AuditStatus
}

// secret is a value compared in constant time and never printed by %v.
type secret struct{ b []byte }

func (s secret) String() string { return "[secret]" }

func (s secret) text() string { return base64.RawURLEncoding.EncodeToString(s.b) }

func newSecret(r io.Reader) (secret, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return secret{}, fmt.Errorf("ui: random: %w", err)
	}
	return secret{b: b}, nil
}

// New checks cfg, makes the start's secrets and listens.
func New(cfg Config) (*Server, error) {
	if cfg.Control == nil {
		return nil, errors.New("ui: no control plane client")
	}
	id, err := spiffeid.FromString(cfg.Admin.ID)
	if err != nil {
		return nil, fmt.Errorf("ui: admin identity %q: %w", cfg.Admin.ID, err)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("ui: listen %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("ui: listen %q: the dashboard serves on a loopback address only", cfg.Listen)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, td: id.TrustDomain(), ready: make(chan struct{}), loggedIn: make(chan struct{})}
	for _, p := range []*secret{&s.login, &s.session, &s.csrf} {
		if *p, err = newSecret(cfg.Rand); err != nil {
			return nil, err
		}
	}
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	close(s.ready)
	return s, nil
}

// Addr is the address the dashboard listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the address to open: it carries the one-time login token.
func (s *Server) URL() string {
	return "http://" + s.Addr() + "/login?token=" + s.login.text()
}

// LoggedIn is closed once the login address has been used: whatever
// carried it to the browser is no longer needed.
func (s *Server) LoggedIn() <-chan struct{} { return s.loggedIn }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	hs := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(s.ln) }()
	s.log.Info("dashboard serving", "addr", s.Addr())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shut)
	_ = s.ln.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// serviceName returns the service a flow endpoint key names
// (flow.KeyService), or "" for anything else.
func (s *Server) serviceName(key string) string { return flow.KeyService(key, s.td) }
