package mesh

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"

	"moat/internal/policy"
)

// A node's local listeners: one on loopback for each upstream a local
// service calls, and one plaintext port for each permissive service that
// names one. SetServices and SetPolicy reconcile them; a listener that
// cannot be bound is retried with backoff while the others serve.

type listenerKind string

const (
	kindUpstream  listenerKind = "upstream"
	kindPlaintext listenerKind = "plaintext"
)

type listenerSpec struct {
	kind listenerKind
	svc  string   // upstream: the calling service; plaintext: the service served
	up   Upstream // upstream only
	addr string
	uid  *int // upstream only: the one uid admitted
}

func (s listenerSpec) key() string {
	k := string(s.kind) + "|" + s.svc + "|" + s.up.Service + "|" + strconv.Itoa(s.up.Port) + "|" + s.addr
	if s.uid != nil {
		k += "|uid=" + strconv.Itoa(*s.uid)
	}
	return k
}

// localListener is one listener and the connections it accepted. Mesh.mu
// guards every field but spec.
type localListener struct {
	spec     listenerSpec
	ln       net.Listener // nil while not bound
	err      error        // why it is not bound
	failures int          // consecutive failed binds
	since    time.Time    // when the current state began
	bo       *backoff.ExponentialBackOff
	retryAt  time.Time
	conns    map[net.Conn]io.Closer // what closes each: nil, the connection itself
	removed  bool
}

// closersLocked marks l removed and returns what to close: the listener and
// every connection it accepted. Mesh.mu is held.
func (l *localListener) closersLocked() []io.Closer {
	l.removed = true
	var out []io.Closer
	if l.ln != nil {
		out = append(out, l.ln)
	}
	for c, closer := range l.conns {
		if closer == nil {
			closer = c
		}
		out = append(out, closer)
	}
	return out
}

// ListenerHealth is the state of one local listener.
type ListenerHealth struct {
	Service  string // the service the listener belongs to
	Kind     string // "upstream" or "plaintext"
	Upstream string // the service called, for an upstream listener
	Addr     string // the address asked for (bound: the address held)
	OK       bool
	Error    string    // why it is not bound
	Failures int       // consecutive failed binds
	Since    time.Time // when the current state began
}

// Health lists the local listeners, sorted by service, kind and upstream.
func (m *Mesh) Health() []ListenerHealth {
	m.mu.Lock()
	out := make([]ListenerHealth, 0, len(m.listeners))
	for _, l := range m.listeners {
		h := ListenerHealth{Service: l.spec.svc, Kind: string(l.spec.kind), Upstream: l.spec.up.Service, Addr: l.spec.addr,
			OK: l.ln != nil, Failures: l.failures, Since: l.since}
		if l.ln != nil {
			h.Addr = l.ln.Addr().String()
		} else if l.err != nil {
			h.Error = l.err.Error()
		}
		out = append(out, h)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Upstream < b.Upstream
	})
	return out
}

func (m *Mesh) failingListeners() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int64(0)
	for _, l := range m.listeners {
		if l.ln == nil {
			n++
		}
	}
	return n
}

// LocalAddr returns the address of the outbound listener through which src
// reaches dst, once it is bound.
func (m *Mesh) LocalAddr(src, dst string) (net.Addr, bool) {
	return m.boundAddr(kindUpstream, src, dst)
}

// PlaintextAddr returns the address of a permissive service's plaintext
// listener, once it is bound.
func (m *Mesh) PlaintextAddr(service string) (net.Addr, bool) {
	return m.boundAddr(kindPlaintext, service, "")
}

func (m *Mesh) boundAddr(kind listenerKind, svc, up string) (net.Addr, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.listeners {
		if l.spec.kind == kind && l.spec.svc == svc && l.spec.up.Service == up && l.ln != nil {
			return l.ln.Addr(), true
		}
	}
	return nil, false
}

// wantListeners lists the listeners the services and the current policy
// call for.
func (m *Mesh) wantListeners(svcs map[string]Service) map[string]listenerSpec {
	want := map[string]listenerSpec{}
	for _, s := range svcs {
		for _, u := range s.Upstreams {
			addr := u.LocalAddr
			if addr == "" {
				addr = "127.0.0.1:0"
			}
			sp := listenerSpec{kind: kindUpstream, svc: s.Name, up: u, addr: addr, uid: s.UID}
			want[sp.key()] = sp
		}
		if s.PlaintextAddr != "" && m.peerMode(s) == policy.Permissive {
			sp := listenerSpec{kind: kindPlaintext, svc: s.Name, addr: s.PlaintextAddr}
			want[sp.key()] = sp
		}
	}
	return want
}

// reconcileListeners makes the local listeners match svcs: it first closes
// those no longer wanted (with their connections), so that a listener moving
// to an address an old one held can bind it, then binds the new ones. It
// returns an error for each listener left unbound; those are retried.
func (m *Mesh) reconcileListeners(svcs map[string]Service) []error {
	want := m.wantListeners(svcs)
	var closers []io.Closer
	changed := false
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return []error{errors.New("mesh: closed")}
	}
	for k, l := range m.listeners {
		if _, ok := want[k]; !ok {
			closers = append(closers, l.closersLocked()...)
			delete(m.listeners, k)
			changed = changed || l.ln == nil
		}
	}
	m.mu.Unlock()
	// Closed before binding: a port change may reuse the address.
	for _, c := range closers {
		_ = c.Close()
	}
	var errs []error
	m.mu.Lock()
	for k, sp := range want {
		l, ok := m.listeners[k]
		if !ok {
			l = &localListener{spec: sp, conns: map[net.Conn]io.Closer{}, since: time.Now()}
			m.listeners[k] = l
			if !m.bindLocked(l) {
				changed = true
			}
		}
		if l.ln == nil {
			errs = append(errs, fmt.Errorf("mesh: service %q: %s: %w (retrying)", sp.svc, sp.describe(), l.err))
		}
	}
	m.mu.Unlock()
	if len(errs) > 0 {
		m.wakeRetry()
	}
	if changed {
		m.healthChanged()
	}
	return errs
}

func (s listenerSpec) describe() string {
	if s.kind == kindPlaintext {
		return fmt.Sprintf("plaintext listener %q", s.addr)
	}
	return fmt.Sprintf("upstream %q: listener %q", s.up.Service, s.addr)
}

// bindLocked tries to bind l and reports whether it is bound. Mesh.mu is
// held.
func (m *Mesh) bindLocked(l *localListener) bool {
	listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	if l.spec.kind == kindUpstream {
		listen = ListenLoopback
	}
	ln, err := listen(l.spec.addr)
	if err != nil {
		m.stats.listenFail.Add(1)
		if l.ln == nil && l.err == nil || l.failures == 0 {
			l.since = time.Now()
		}
		l.err = err
		l.failures++
		if l.bo == nil {
			l.bo = &backoff.ExponentialBackOff{InitialInterval: 200 * time.Millisecond, RandomizationFactor: 0.2, Multiplier: 2, MaxInterval: 30 * time.Second}
			l.bo.Reset()
		}
		l.retryAt = time.Now().Add(l.bo.NextBackOff())
		if l.failures == 1 {
			m.log.Warn("mesh: local listener cannot bind; retrying", logService, l.spec.svc, logAddr, l.spec.addr, logErr, err.Error())
		}
		return false
	}
	if l.failures > 0 {
		m.log.Info("mesh: local listener bound after failures", logService, l.spec.svc, logAddr, l.spec.addr, "failures", l.failures)
	}
	l.ln, l.err, l.failures, l.since = ln, nil, 0, time.Now()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.serveLocal(l, ln)
	}()
	return true
}

func (m *Mesh) wakeRetry() {
	select {
	case m.retry <- struct{}{}:
	default:
	}
}

func (m *Mesh) healthChanged() {
	if m.cfg.HealthChanged != nil {
		m.cfg.HealthChanged()
	}
}

// retryListeners binds failed listeners when their backoff is due.
func (m *Mesh) retryListeners() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		next := time.Time{}
		recovered := false
		now := time.Now()
		for _, l := range m.listeners {
			if l.ln != nil {
				continue
			}
			if !now.Before(l.retryAt) && m.bindLocked(l) {
				recovered = true
				continue
			}
			if next.IsZero() || l.retryAt.Before(next) {
				next = l.retryAt
			}
		}
		m.mu.Unlock()
		if recovered {
			m.healthChanged()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-m.ctx.Done():
			return
		case <-m.retry:
		case <-timer.C:
		}
	}
}

// serveLocal accepts on one local listener until it is closed.
func (m *Mesh) serveLocal(l *localListener, ln net.Listener) {
	for {
		c, err := AcceptRetrying(ln, m.acceptFailed)
		if err != nil {
			return
		}
		m.mu.Lock()
		if l.removed || m.closed {
			m.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.conns[c] = nil
		m.mu.Unlock()
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer func() {
				m.mu.Lock()
				delete(l.conns, c)
				m.mu.Unlock()
			}()
			if l.spec.kind == kindPlaintext {
				m.handlePlaintext(l, c)
				return
			}
			m.handleOutbound(l, c)
		}()
	}
}
