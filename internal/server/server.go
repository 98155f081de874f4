// Package server is moat's control plane: it holds the CA, the registry of
// nodes and services, join tokens, the revocation list and the intentions,
// and serves them over mutual TLS to agents (join, SVID signing, a watch
// stream) and to administrators (role-checked calls). Every join and every
// admin call passes through one audit hook.
package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"moat/internal/audit"
	"moat/internal/ca"
	"moat/internal/flow/flowstore"
	"moat/internal/identity"
	"moat/internal/metrics"
	"moat/internal/store"
)

// Config configures a Server.
type Config struct {
	// Listen is the API address; empty means 127.0.0.1:7400.
	Listen string
	// Name names this server in its SVID (spiffe://<td>/server/<name>);
	// empty means "control". Servers of one cluster need distinct names.
	Name string
	// Advertise is the address other servers and clients reach this one
	// at, as listed among the cluster's members; empty means the listening
	// address unless that is a wildcard (the server is then not listed).
	Advertise string
	// Store holds all control-plane state; required.
	Store store.Store
	// Sealer encrypts the CA's private keys in the store; nil stores them
	// in the clear (only tests do that).
	Sealer ca.KeySealer
	// Audit receives every join and admin call; required. A call whose
	// audit entry cannot be recorded fails.
	Audit audit.Recorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// AuditLog, when set, is published over the API (checkpoints, entries,
	// proofs).
	AuditLog AuditLog
	// Flows stores the flow records agents and gateways send; nil refuses
	// them.
	Flows *flowstore.Store
	// Detect, when set, sees every stored record and every audit entry.
	Detect Detector
	// RecentEdges feeds "policy diff" with the pairs seen recently; nil
	// means none are known.
	RecentEdges RecentEdges
	// Metrics, when set, receives the control plane's metrics.
	Metrics *metrics.Registry
	// Heartbeat is the watch stream's keep-alive period; zero means 15s.
	Heartbeat time.Duration
	// Keys, when set, serves key rotation, key status and backups.
	Keys *Keys
	// MFA decides which admin calls need a fresh second factor; the zero
	// value requires one for the sensitive calls of every role.
	MFA MFAConfig
	// Access governs break-glass grants and their recordings.
	Access AccessConfig
	// FlowLimits bounds what each node sends as flow records; zero fields
	// take the defaults.
	FlowLimits FlowLimits
	// RefusalWindow is how often refused calls are summarised in one audit
	// entry; zero means DefaultRefusalWindow.
	RefusalWindow time.Duration
}

// Server is a running control plane.
type Server struct {
	cfg Config
	// shedCount counts API connections closed for the bound on pending
	// ones (pending.go).
	shedCount atomic.Int64
	st        store.Store
	log       *slog.Logger
	now       func() time.Time
	td        spiffeid.TrustDomain
	meta      Meta
	trust     *identity.Trust
	caMu      sync.Mutex // serializes CA changes (rotation, load)
	ca        *ca.CA
	hub       *hub
	m         *serverMetrics
	ln        net.Listener
	ready     chan struct{}
	certMu    sync.RWMutex // guards cert
	cert      *tls.Certificate
	// tags tags the revocation list (carried.go).
	tags revTags
	// settled is the restore epoch whose hold on credentials is over
	// (restorehold.go).
	settled atomic.Int64
	// store is what is known of the store's answers (storeup.go).
	store storeState
	// refused counts refused calls until the next summary entry.
	refused refusals
	// limits holds the per-node rate limiters.
	limits nodeLimits
	// failed holds each source's failed public calls (failgate.go).
	failed failGate
	// watches holds the watch streams of each node.
	watches nodeWatches
	// flowSlots bounds the flow batches decoded at once.
	flowSlots chan struct{}
	mfa       MFAConfig
	access    *accessState
	// rt is the route table (routes.go), built once.
	routesOnce sync.Once
	rt         *routeTable
	// peerBeforeAfter makes this server's peer follow streams answer as
	// a version before api.PeerAfter did (no positions sent, the
	// parameter refused). Only a test of this package sets it, on one
	// server of its cluster, to see how a relay meets such a member;
	// nothing else does.
	peerBeforeAfter atomic.Bool
	// followReplayTest, when above zero, lowers this server's replay
	// bound (followReplay); only a test of this package sets it.
	followReplayTest atomic.Int64
}

// New loads the control plane's state from cfg.Store (written by Init).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	if cfg.Audit == nil {
		return nil, errors.New("server: no audit recorder")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:7400"
	}
	if cfg.Name == "" {
		cfg.Name = defaultName
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	cfg.FlowLimits.defaults()
	if cfg.RefusalWindow <= 0 {
		cfg.RefusalWindow = DefaultRefusalWindow
	}
	if cfg.Detect != nil {
		cfg.Audit = observed{next: cfg.Audit, d: cfg.Detect}
	}
	cfg.MFA.defaults()
	cfg.Access.defaults()
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, now: cfg.Now, ready: make(chan struct{}),
		flowSlots: make(chan struct{}, cfg.FlowLimits.Concurrent), mfa: cfg.MFA}
	s.store.log, s.store.now = cfg.Logger, cfg.Now
	s.access = newAccessState(s)
	if err := getJSON(ctx, s.st, keyMeta, &s.meta); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errors.New("server: the store holds no control plane: run \"moat server init\" first")
		}
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := s.checkStoreNotOlder(ctx); err != nil {
		return nil, err
	}
	if err := s.auditRestore(ctx); err != nil {
		return nil, err
	}
	if err := s.loadTagKey(ctx); err != nil {
		return nil, err
	}
	td, err := identity.ParseTrustDomain(s.meta.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("server: stored meta: %w", err)
	}
	s.td = td
	if err := s.loadCA(ctx); err != nil {
		return nil, err
	}
	s.trust = identity.NewTrust(identity.TrustConfig{TrustDomain: td, Now: cfg.Now})
	var rev identity.Revocations
	if err := getJSON(ctx, s.st, keyRevocations, &rev); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.trust.Update(s.ca.Bundle(), rev)
	if err := s.renewIntermediate(ctx); err != nil {
		return nil, err
	}
	if err := s.renewOwnCert(); err != nil {
		return nil, err
	}
	s.hub = newHub(s)
	if s.m, err = newMetrics(cfg.Metrics); err != nil {
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	return s, nil
}

func (s *Server) loadCA(ctx context.Context) error {
	kv, err := s.st.Get(ctx, keyCA)
	if err != nil {
		return fmt.Errorf("server: load CA: %w", err)
	}
	c, err := ca.Unmarshal(s.caConfig(), kv.Value, s.cfg.Sealer)
	if err != nil {
		return fmt.Errorf("server: load CA: %w", err)
	}
	// Expiries of SVIDs signed since the state was last stored are not
	// known after a restart: assume one full SVID life from now, so a root
	// is never retired under a live SVID.
	st := c.State()
	for _, a := range st.Authorities {
		if floor := s.now().Add(max(s.meta.SVIDTTL, s.nodeTTL())); a.LastExpiry.Before(floor) {
			a.LastExpiry = floor
		}
	}
	if c, err = ca.FromState(s.caConfig(), st); err != nil {
		return fmt.Errorf("server: load CA: %w", err)
	}
	s.caMu.Lock()
	s.ca = c
	s.caMu.Unlock()
	return nil
}

// nodeTTL is the life of the node certificates this control plane signs.
func (s *Server) nodeTTL() time.Duration {
	if s.meta.NodeTTL == 0 {
		return max(ca.DefaultNodeTTL, s.meta.SVIDTTL)
	}
	return s.meta.NodeTTL
}

func (s *Server) caConfig() ca.Config {
	return ca.Config{TrustDomain: s.td, SVIDTTL: s.meta.SVIDTTL, Now: s.now}
}

// TrustDomain returns the control plane's trust domain.
func (s *Server) TrustDomain() spiffeid.TrustDomain { return s.td }

// CA returns the CA, for in-process callers (moat dev, tests).
func (s *Server) CA() *ca.CA {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	return s.ca
}

// Addr returns the listening address once Run has started listening.
func (s *Server) Addr() string {
	<-s.ready
	return s.ln.Addr().String()
}

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// renewOwnCert issues the server's SVID under the active authority.
func (s *Server) renewOwnCert() error {
	id, err := identity.ServerID(s.td, s.cfg.Name)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	cert, err := s.CA().Issue(id, 0)
	if err != nil {
		return fmt.Errorf("server: own certificate: %w", err)
	}
	s.certMu.Lock()
	s.cert = cert
	s.certMu.Unlock()
	return nil
}

// ownCert returns the server's SVID, renewing it first once it is past half
// its life: renewal happens on the handshake path, by the injected clock,
// so there is no timer to drift from it.
func (s *Server) ownCert() *tls.Certificate {
	s.certMu.RLock()
	c := s.cert
	s.certMu.RUnlock()
	half := c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 2)
	if s.now().Before(half) {
		return c
	}
	if err := s.renewOwnCert(); err != nil {
		s.log.Error("renew server certificate", "err", err)
		return c
	}
	s.certMu.RLock()
	defer s.certMu.RUnlock()
	return s.cert
}

func (s *Server) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.ownCert(), nil
		},
		// A client certificate is optional (joining agents and the bundle
		// fetch have none), but one that is presented must verify: a bad
		// certificate fails the handshake rather than reading as anonymous.
		// A revoked one, otherwise good, is let through the handshake:
		// identify refuses it on every call that reads the caller, with an
		// answer that says it is revoked (a TLS 1.3 client often sees a
		// refused handshake only as a closed connection), and the calls
		// that read none are the ones open to anonymous clients.
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil
			}
			_, err := s.trust.Verify(cs.PeerCertificates)
			if errors.Is(err, identity.ErrRevoked) {
				return nil
			}
			return err
		},
	}
}

// Run serves the API until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.ln = ln
	close(s.ready)
	var active activeRequests
	pl := newPendingListener(ln, s.connectionShed, func(cs tls.ConnectionState) (string, bool) {
		if len(cs.PeerCertificates) == 0 {
			return "", false
		}
		id, err := s.trust.Verify(cs.PeerCertificates)
		return id.String(), err == nil
	})
	hs := &http.Server{
		ConnState:         pl.connState,
		Handler:           active.wrap(s.routes()),
		TLSConfig:         s.tlsConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       apiIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// Frames of 16 KB, HTTP/2's least maximum, rather than Go's 1 MB:
		// a client streaming a request body of unknown length (every
		// agent's access tunnel, for as long as it is open) holds a
		// write buffer of the server's maximum frame size, up to 512 KB,
		// where 16 KB (one TLS record) carries the same.
		HTTP2: &http.HTTP2Config{MaxReadFrameSize: 16 << 10},
	}
	errc := make(chan error, 2)
	go func() {
		err := hs.ServeTLS(pl, "", "")
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	hubCtx, cancelHub := context.WithCancel(ctx)
	defer cancelHub()
	go func() { errc <- s.hub.run(hubCtx) }()
	go s.runAccess(hubCtx)
	go s.runLeftSweep(hubCtx)
	memberDone := make(chan struct{})
	go func() {
		defer close(memberDone)
		_ = s.membership(hubCtx)
	}()
	defer func() { <-memberDone }()
	refCtx, cancelRef := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRef()
	refDone := make(chan struct{})
	go func() { s.runRefusals(refCtx); close(refDone) }()
	s.log.Info("control plane listening", "addr", ln.Addr().String(), "trust_domain", s.td.Name())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancelHub()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Shutdown stops the listeners and tells HTTP/2 clients to go away,
	// then lets each connection linger until its client closes it (a
	// second per idle connection, in net/http): once no request is in
	// flight there is nothing left to wait for, and Close ends them.
	go func() {
		active.wait(shut)
		_ = hs.Close()
	}()
	_ = hs.Shutdown(shut)
	_ = hs.Close()
	// Shutdown closes only the listeners Serve has started tracking: one
	// stopped right after it started would stay bound.
	_ = ln.Close()
	cancelRef()
	<-refDone // the last refusals are summarised before Run returns
	return err
}

// activeRequests counts the requests being served, so a stopping server
// knows when the last one ended.
type activeRequests struct {
	mu   sync.Mutex // guards n and idle
	n    int
	idle chan struct{} // made by wait, closed when n drops to zero
}

func (a *activeRequests) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.n++
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			a.n--
			if a.n == 0 && a.idle != nil {
				close(a.idle)
				a.idle = nil
			}
			a.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

// wait returns once no request is in flight, or when ctx ends.
func (a *activeRequests) wait(ctx context.Context) {
	a.mu.Lock()
	if a.n == 0 {
		a.mu.Unlock()
		return
	}
	if a.idle == nil {
		a.idle = make(chan struct{})
	}
	idle := a.idle
	a.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// newKey makes a P-256 key.
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}
