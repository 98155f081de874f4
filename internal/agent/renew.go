package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"moat/internal/api"
	"moat/internal/ca"
	"moat/internal/identity"
)

// svidDir holds cached service SVIDs, one directory per service, so a
// restart while the server is away still serves them.
const svidDir = "svids"

// renewAt returns when a certificate should be renewed: at 40-60% of the
// life it has from now (or from its NotBefore, if later), spread by jitter
// so a fleet does not renew in step. The CA backdates NotBefore for clock
// skew, which must not count as life already spent: with a short TTL it
// would make a fresh certificate due at once. Call it when the
// certificate is received or loaded, and keep the answer.
func (a *Agent) renewAt(c *tls.Certificate) time.Time {
	start := c.Leaf.NotBefore
	if now := a.cfg.Now(); now.After(start) {
		start = now
	}
	life := c.Leaf.NotAfter.Sub(start)
	frac := 0.4 + 0.2*a.cfg.Jitter()
	return start.Add(time.Duration(float64(life) * frac))
}

// renewLoop renews the node SVID and every service SVID when due. A failed
// renewal is retried with backoff; the current SVID keeps serving until it
// expires.
func (a *Agent) renewLoop(ctx context.Context) error {
	nodeFails := 0
	var nodeRetry time.Time
	for ctx.Err() == nil {
		now := a.cfg.Now()
		next := now.Add(time.Hour)

		a.mu.RLock()
		due := a.nodeRenewAt
		a.mu.RUnlock()
		if !nodeRetry.IsZero() {
			due = nodeRetry
		}
		if nodeRetry.IsZero() && a.checkNode.Swap(false) {
			due = now // a call failed as if the node certificate were refused: find out
		}
		if !now.Before(due) {
			err := a.renewNode(ctx)
			if err != nil && ctx.Err() == nil {
				if reason, refused := a.nodeRefused(ctx, err); refused {
					if err = a.reattest(ctx, reason); err != nil {
						a.log.Error("the node cannot re-attest; it keeps serving with what it holds", "err", err)
					}
				}
			}
			if err != nil {
				nodeFails++
				nodeRetry = now.Add(a.backoff(nodeFails))
				a.log.Warn("node certificate renewal failed", "err", err, "retry_in", nodeRetry.Sub(now))
			} else {
				nodeFails, nodeRetry = 0, time.Time{}
			}
			continue
		}
		next = minTime(next, due)

		for _, name := range a.dueServices(now) {
			if ctx.Err() != nil {
				return nil
			}
			a.renewService(ctx, name, now)
		}
		a.mu.RLock()
		for _, s := range a.svids {
			next = minTime(next, s.renewAt)
		}
		a.mu.RUnlock()
		wait := next.Sub(a.cfg.Now())
		if wait <= 0 {
			continue
		}
		tick := a.cfg.After(wait)
		// The timer counts wait from when it is armed: a clock that moved
		// between reading it and arming the timer (a stepped clock; the
		// tests' fake one) would push the renewal past next. Look again.
		if !a.cfg.Now().Before(next) {
			continue
		}
		select {
		case <-ctx.Done():
		case <-a.wake:
		case <-tick:
		}
	}
	return nil
}

// suspectNode notes a failed call that a refused node certificate would
// explain (the connection failed, or the server answered 401), so the
// renewal loop checks the node certificate at once instead of at its
// renewal time: after a root is retired under it, say.
func (a *Agent) suspectNode(err error) {
	var se *api.StatusError
	if errors.As(err, &se) && se.Code != http.StatusUnauthorized {
		return
	}
	if !a.checkNode.Swap(true) {
		a.nudge()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (a *Agent) dueServices(now time.Time) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []string
	for name, s := range a.svids {
		if !now.Before(s.renewAt) {
			out = append(out, name)
		}
	}
	return out
}

func (a *Agent) renewNode(ctx context.Context) error {
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return err
	}
	pub, err := a.attestPublic()
	if err != nil {
		return err
	}
	var resp api.CertResponse
	if err := a.api().Call(ctx, http.MethodPost, api.PathNodeRenew, api.RenewRequest{CSR: csr, MeshAddr: a.cfg.MeshAddr, NodeKey: pub}, &resp); err != nil {
		return err
	}
	cert, roots, err := a.certFrom(resp, key)
	if err != nil {
		return err
	}
	if err := a.writeCreds(filepath.Join(a.cfg.DataDir, nodeDir), cert, roots); err != nil {
		return err
	}
	a.pinAuditKey(resp.AuditKey)
	a.log.Info("node certificate renewed", "expires", cert.Leaf.NotAfter)
	a.renewals.Add(1)
	if err := a.adopt(cert, roots); err != nil {
		return err
	}
	a.renewClient()
	return nil
}

func (a *Agent) renewService(ctx context.Context, name string, now time.Time) {
	cert, err := a.fetchSVID(ctx, name)
	a.mu.Lock()
	s, ok := a.svids[name]
	if !ok { // deregistered meanwhile
		a.mu.Unlock()
		return
	}
	if err != nil {
		s.failing++
		s.renewAt = now.Add(a.backoff(s.failing))
		a.mu.Unlock()
		a.suspectNode(err)
		if errors.Is(err, api.ErrPermissionDenied) {
			a.log.Error("the control plane refuses this service's SVID", "service", name, "err", err)
		} else {
			a.log.Warn("SVID renewal failed", "service", name, "err", err)
		}
		return
	}
	s.cert, s.failing, s.renewAt = cert, 0, a.renewAt(cert)
	a.mu.Unlock()
	a.renewals.Add(1)
	if err := a.writeCreds(filepath.Join(a.cfg.DataDir, svidDir, name), cert, a.trust.Bundle().X509Authorities()); err != nil {
		a.log.Warn("cache SVID", "service", name, "err", err)
	}
	a.log.Info("SVID renewed", "service", name, "expires", cert.Leaf.NotAfter)
	a.changed.Notify()
}

func (a *Agent) fetchSVID(ctx context.Context, name string) (*tls.Certificate, error) {
	key, csr, err := ca.NewKeyCSR()
	if err != nil {
		return nil, err
	}
	var resp api.CertResponse
	if err := a.api().Call(ctx, http.MethodPost, api.PathSVID, api.SVIDRequest{Service: name, CSR: csr}, &resp); err != nil {
		return nil, err
	}
	cert, _, err := a.certFrom(resp, key)
	if err != nil {
		return nil, err
	}
	if id, _ := identity.LeafID(cert.Leaf); id.String() != identity.MustServiceID(a.td, name) {
		return nil, fmt.Errorf("agent: asked for %q, got %q", name, id)
	}
	return cert, nil
}

// loadCachedSVIDs restores still-valid SVIDs from disk, so an agent that
// restarts while the server is away serves at once.
func (a *Agent) loadCachedSVIDs() {
	entries, err := os.ReadDir(filepath.Join(a.cfg.DataDir, svidDir))
	if err != nil {
		return
	}
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range entries {
		name := e.Name()
		if identity.ValidName(name) != nil {
			continue
		}
		cert, _, err := a.loadCreds(filepath.Join(a.cfg.DataDir, svidDir, name))
		if err != nil || identity.CheckValidity(cert.Leaf, now) != nil {
			continue
		}
		if _, ok := cert.PrivateKey.(*ecdsa.PrivateKey); !ok {
			continue
		}
		id, err := identity.LeafID(cert.Leaf)
		if err != nil {
			continue
		}
		if s, ok := a.svids[name]; !ok || s.cert == nil {
			a.svids[name] = &svid{id: id, cert: cert, renewAt: a.renewAt(cert)}
		}
	}
}

// Certificate returns the current SVID of a local service.
func (a *Agent) Certificate(service string) (*tls.Certificate, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	s, ok := a.svids[service]
	if !ok || s.cert == nil {
		return nil, fmt.Errorf("agent: no SVID for service %q on this node", service)
	}
	return s.cert, nil
}

// SVIDChanged returns a channel closed at the next SVID or bundle change.
func (a *Agent) SVIDChanged() <-chan struct{} { return a.changed.C() }
