package server

import (
	"context"
	"errors"
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
	mu    sync.Mutex // guards the fields below
	read  bool       // the store has answered since the server started
	since time.Time  // when the current outage began; zero while it answers
	tries int        // failed tries in the current outage
}

// storeAnswered notes that the store answered, ending any outage.
func (s *Server) storeAnswered() {
	st := &s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.since.IsZero() {
		s.log.Info("control-plane store answers again; serving", "unavailable_for", s.now().Sub(st.since).Round(time.Millisecond), "tries", st.tries)
	}
	st.read, st.since, st.tries = true, time.Time{}, 0
}

// storeFailed notes a failed try of the store: the first of an outage is
// logged as a warning, the others at debug level.
func (s *Server) storeFailed(err error, wait time.Duration) {
	st := &s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	st.tries++
	if st.since.IsZero() {
		st.since = s.now()
		s.log.Warn("control-plane store unavailable; not serving until it answers, retrying with backoff", "err", err)
		return
	}
	s.log.Debug("control-plane store still unavailable", "err", err, "tries", st.tries, "retry_in", wait.Round(time.Millisecond))
}

// transient says whether err is the store not answering, to retry, rather
// than an error that retrying does not mend.
func transient(err error) bool {
	return errors.Is(err, store.ErrUnavailable) && !errors.Is(err, store.ErrClosed)
}

// storeRetry waits out a failed try of the store before the next one. It
// returns false, at once, when err is not transient or ctx has ended.
func (s *Server) storeRetry(ctx context.Context, bo *backoff.ExponentialBackOff, err error) bool {
	if ctx.Err() != nil || !transient(err) {
		return false
	}
	wait := bo.NextBackOff()
	s.storeFailed(err, wait)
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
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: "starting: the control-plane store has not answered yet"})
	case down:
		writeJSON(w, http.StatusServiceUnavailable, api.Error{Error: store.ErrUnavailable.Error()})
	default:
		writeJSON(w, http.StatusOK, api.Health{Status: "serving"})
	}
}
