package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"moat/internal/api"
	"moat/internal/store"
)

// A store that does not answer (an etcd cluster without quorum, during a
// rolling restart or a network cut) is an outage to wait out, not a reason
// to exit: the server keeps its listener, answers what it can, retries its
// watch of the store with a growing wait (storeBackoff), and says on its
// health endpoint that it is not serving until the store answers again.
// The log has one warning when an outage begins and one line when it ends,
// whatever the number of tries between (each try is logged at debug
// level). What a store that answers says wrong (no control plane in it,
// keys that do not open under the KEK) is found by New, and fails it.

// storeBackoff is the wait between tries of a store that does not answer:
// from 200ms, doubling to 30s, with ±20% jitter so that the servers of a
// cluster do not all try at once.
func storeBackoff() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 30 * time.Second}
}

// storeState is what the server knows of its store's answers.
type storeState struct {
	log   *slog.Logger
	now   func() time.Time
	mu    sync.Mutex // guards the fields below
	read  bool       // the store has answered since the server started
	since time.Time  // when the current outage began; zero while it answers
	tries int        // failed tries in the current outage
}

// answered notes that the store answered, ending any outage.
func (st *storeState) answered() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.since.IsZero() {
		st.log.Info("control-plane store answers again; serving", "unavailable_for", st.now().Sub(st.since).Round(time.Millisecond), "tries", st.tries)
	}
	st.read, st.since, st.tries = true, time.Time{}, 0
}

// failed notes a failed try of the store: the first of an outage is
// logged as a warning, the others at debug level.
func (st *storeState) failed(err error, wait time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.tries++
	if st.since.IsZero() {
		st.since = st.now()
		st.log.Warn("control-plane store unavailable; not serving until it answers, retrying with backoff", "err", err)
		return
	}
	st.log.Debug("control-plane store still unavailable", "err", err, "tries", st.tries, "retry_in", wait.Round(time.Millisecond))
}

// transient says whether err is the store not answering, to retry, rather
// than an error that retrying does not mend.
func transient(err error) bool {
	return errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrClosed)
}

// retry waits out a failed try of the store before the next one. It
// returns false, at once, when err is not transient or ctx has ended.
func (st *storeState) retry(ctx context.Context, bo *backoff.ExponentialBackOff, err error) bool {
	if ctx.Err() != nil || !transient(err) {
		return false
	}
	wait := bo.NextBackOff()
	st.failed(err, wait)
	return pause(ctx, wait)
}

// pause waits d, or until ctx ends; it says whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// handleHealth answers whether the server follows its store.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	st := &s.store
	st.mu.Lock()
	read, down := st.read, !st.since.IsZero()
	st.mu.Unlock()
	switch {
	case !read:
		writeStarting(w, r)
	case down:
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: store.ErrUnavailable.Error()})
	default:
		writeJSON(w, http.StatusOK, api.Health{Status: "serving"})
	}
}

// StartConfig configures WaitStore.
type StartConfig struct {
	// Listen is the API address the server will serve on; empty means
	// DefaultListen.
	Listen string
	// Logger; nil means slog.Default(). Now is the clock; nil means
	// time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// WaitStore runs open, the start-up of a server (opening its store and
// reading its keyring and state), until it succeeds. A try that fails
// because the store does not answer (a whole cluster restarting, moat
// started before etcd) is tried again with storeBackoff and logged as an
// outage is; meanwhile the API address answers every request, /v1/health
// included, 503 "starting". The server's certificate comes from the CA in
// the store, so until then the answer is made under a throwaway
// self-signed one: a health check that does not verify it reads the 503,
// a client that verifies fails its handshake, as it would on a server not
// listening. WaitStore returns at once open's first error that retrying
// does not mend (a wrong KEK, a store that answers but holds no control
// plane, bad TLS files), or ctx's.
func WaitStore(ctx context.Context, cfg StartConfig, open func(context.Context) error) error {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	err := open(ctx)
	if err == nil || !transient(err) {
		return err
	}
	st := &storeState{log: cfg.Logger, now: cfg.Now}
	stop, lerr := serveStarting(cfg)
	if lerr != nil {
		return lerr
	}
	defer stop()
	bo := storeBackoff()
	for st.retry(ctx, bo, err) {
		if err = open(ctx); err == nil {
			stop()
			st.answered()
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// serveStarting answers every request on cfg.Listen with 503 "starting"
// until stop is called; stop returns once the address is free again.
func serveStarting(cfg StartConfig) (stop func(), _ error) {
	cert, err := startingCert(cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	hs := &http.Server{
		Handler:           http.HandlerFunc(writeStarting),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       apiIdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.ServeTLS(ln, "", "")
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = hs.Close()
			<-done
		})
	}, nil
}

// writeStarting answers that the server has not read its store yet.
func writeStarting(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: "starting: the control-plane store has not answered yet"})
}

// startingCert is the throwaway certificate serveStarting answers under.
func startingCert(now time.Time) (tls.Certificate, error) {
	key, err := newKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "moat server starting"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
