package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ParseServers splits a control-plane address list: host:port entries
// separated by commas ("a:7400,b:7400,c:7400"). A host that is a DNS name
// may resolve to several addresses; each is a server to fail over to.
func ParseServers(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		host, port, err := net.SplitHostPort(part)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("%q: want host:port", part)
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		return nil, errors.New("no server address: want host:port[,host:port...]")
	}
	return out, nil
}

// resolveEvery is how long a DNS answer for a server name is used.
const resolveEvery = 30 * time.Second

// servers is the failover list of a Client: the configured addresses,
// names resolved to every address they have, the one that answered last
// tried first.
type servers struct {
	given []string

	mu       sync.Mutex // guards resolved, at and current
	resolved []string
	at       time.Time
	current  string
}

func newServers(addrs string) *servers {
	given, err := ParseServers(addrs)
	if err != nil {
		// Callers validate addresses first; one that slips through is
		// dialled as given and fails with the dialler's own error.
		given = []string{addrs}
	}
	return &servers{given: given}
}

// order returns the addresses to try, the last good one first.
func (s *servers) order(ctx context.Context) []string {
	s.mu.Lock()
	stale := s.resolved == nil || time.Since(s.at) > resolveEvery
	s.mu.Unlock()
	if stale {
		var all []string
		for _, g := range s.given {
			host, port, err := net.SplitHostPort(g)
			if err != nil || net.ParseIP(host) != nil {
				all = append(all, g)
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ips, err := net.DefaultResolver.LookupHost(rctx, host)
			cancel()
			if err != nil || len(ips) == 0 {
				all = append(all, g) // the dial reports the failure
				continue
			}
			for _, ip := range ips {
				all = append(all, net.JoinHostPort(ip, port))
			}
		}
		s.mu.Lock()
		s.resolved, s.at = dedupe(all), time.Now()
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.resolved))
	for _, a := range s.resolved {
		if a == s.current {
			out = append([]string{a}, out...)
		} else {
			out = append(out, a)
		}
	}
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range in {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// good records that addr answered.
func (s *servers) good(addr string) {
	s.mu.Lock()
	s.current = addr
	s.mu.Unlock()
}

// bad moves the preference from the server that answered last to the
// next one in the list (a server that went silent may be hung, not gone).
func (s *servers) bad() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, a := range s.resolved {
		if a == s.current {
			s.current = s.resolved[(i+1)%len(s.resolved)]
			return
		}
	}
}

// Current returns the server that answered last ("" before any answer).
func (c *Client) Current() string {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.srv.current
}

// failoverMode says when a failed attempt moves on to the next server.
type failoverMode int

const (
	// failoverAny moves on when the server could not be reached, the
	// connection broke, or it answered that it cannot serve now (503):
	// for calls that are safe to repeat (see Client).
	failoverAny failoverMode = iota
	// failoverUnsent moves on only when the request never left: its
	// headers were not written to any connection. It is for a call that
	// spends something (a one-time code) and so is never sent twice: a
	// server that may have taken it ends the attempt, answer or not.
	failoverUnsent
)

// failover reports whether a failed attempt should move on to the next
// server (see failoverMode); sent says whether the request's headers were
// written.
func failover(ctx context.Context, mode failoverMode, sent bool, resp *http.Response, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if mode == failoverUnsent {
		return err != nil && !sent
	}
	if err != nil {
		return true
	}
	return resp.StatusCode == http.StatusServiceUnavailable
}

// do sends the request mk builds to each server in turn until one answers
// with something other than a failover reason. The last answer or error is
// returned; errors name every server tried.
func (c *Client) do(ctx context.Context, mode failoverMode, mk func(base string) (*http.Request, error)) (*http.Response, error) {
	var errs []string
	var last *http.Response
	refused := false
	for _, addr := range c.srv.order(ctx) {
		req, err := mk("https://" + addr)
		if err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		var sent atomic.Bool
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteHeaders: func() { sent.Store(true) },
		}))
		resp, err := c.httpClient().Do(req)
		if !failover(ctx, mode, sent.Load(), resp, err) {
			if err == nil {
				c.srv.good(addr)
			}
			if last != nil {
				last.Body.Close()
			}
			if err != nil && mode == failoverUnsent && sent.Load() && ctx.Err() == nil {
				err = fmt.Errorf("%w (%s took the request but its answer was lost; it is not sent again)", err, addr)
			}
			return resp, err
		}
		if err != nil {
			if certRefused(err) {
				refused = true
				err = fmt.Errorf("%s refused this client's certificate at the handshake: it is revoked, expired, or not issued by this control plane (%w)", addr, err)
			}
			errs = append(errs, err.Error())
			continue
		}
		if last != nil {
			last.Body.Close()
		}
		last = resp
		errs = append(errs, addr+": 503")
	}
	if last != nil {
		return last, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if refused {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, strings.Join(errs, "; "))
	}
	return nil, fmt.Errorf("%w: no server answered: %s", ErrUnavailable, strings.Join(errs, "; "))
}

// certRefused says whether err is a server's refusal of the client's
// certificate during the handshake (the alerts a Go server sends when
// VerifyConnection fails, or that others send for a revoked or expired
// certificate).
func certRefused(err error) bool {
	var alert tls.AlertError
	if errors.As(err, &alert) {
		switch alert {
		case 42, 44, 45, 48: // bad_certificate, certificate_revoked, certificate_expired, unknown_ca
			return true
		}
		return false
	}
	// crypto/tls reports an alert received on a TCP connection as a
	// net.OpError "remote error" around an unexported type: only its
	// text tells which.
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	switch op.Err.Error() {
	case "tls: bad certificate", "tls: revoked certificate", "tls: expired certificate", "tls: unknown certificate authority":
		return true
	}
	return false
}
