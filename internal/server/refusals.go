package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/store"
)

// Refused calls (no certificate or a bad one, a role too weak, a join
// token that does not hold, a request that does not validate) are not
// audited one by one: anyone who can reach the port can make them, so
// auditing each would let anyone grow the tamper-evident log, and fill the
// disk it lives on, without bound. Each refusal is counted in
// moat_server_refused_total{action,reason} and logged at debug level, and
// every RefusalWindow the window's refusals become one "security.refused"
// audit entry: how many, from how many sources, and the sources that were
// refused most. The log grows by at most one bounded entry per window
// whatever the attacker sends.

// ActionRefused is the action of the summary entry.
const ActionRefused = "security.refused"

// Reasons a call is refused, the label values of the refused metric.
const (
	reasonUnauthenticated = "unauthenticated" // no certificate, or one that does not verify
	reasonForbidden       = "forbidden"       // a role too weak, a revoked node, another node's service
	reasonBadRequest      = "bad_request"     // a body or value that does not validate
	reasonBadToken        = "bad_token"       // a join token that is unknown, spent, expired or for another node
	reasonRateLimited     = "rate_limited"    // a node over its rate
	// A call answered 503 because the control-plane store could not be
	// read or written (no etcd quorum, out of reach): the caller sent
	// nothing wrong, and a burst of these is an outage, not an attack.
	reasonStoreUnavailable = "store_unavailable"
	// A join or re-attestation from a source past its failed ones
	// (failgate.go), refused before anything of it was read.
	reasonThrottled = "source_throttled"
	// An admin certificate of an earlier account of its name (removed
	// since): someone who held that account, or holds its key.
	reasonEarlierAccount = api.ReasonEarlierAccount
)

// Bounds of the summary entry and of what a window remembers.
const (
	maxRefusalKeys   = 512 // distinct (source, action, reason) per window; more are counted together
	refusalTop       = 10  // sources named in the entry
	maxRefusalSource = 128 // bytes of a source kept
)

// DefaultRefusalWindow is how often refused calls are summarised.
const DefaultRefusalWindow = time.Minute

type refusalKey struct{ source, action, reason string }

// refusals counts refused calls for the current window.
type refusals struct {
	mu     sync.Mutex // guards the fields below
	start  time.Time
	counts map[refusalKey]int64
	other  int64 // refusals whose key did not fit in counts
	total  int64
}

// refuse counts a refused call. c is the caller as far as it is known
// (nil before identification); err says why.
func (s *Server) refuse(r *http.Request, c *caller, action string, err error) {
	s.refuseReason(r, c, action, reasonOf(err), err)
}

func (s *Server) refuseReason(r *http.Request, c *caller, action, reason string, err error) {
	src := sourceOf(r, c)
	s.log.Debug("call refused", "action", action, "reason", reason, "source", src, "err", err)
	s.countRefusal(src, action, reason)
}

// countRefusal counts a refused call in the metric and the window's
// summary.
func (s *Server) countRefusal(src, action, reason string) {
	s.m.refused.WithLabelValues(action, reason).Inc()
	rf := &s.refused
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.counts == nil {
		rf.counts = map[refusalKey]int64{}
		rf.start = s.now().UTC()
	}
	rf.total++
	k := refusalKey{src, action, reason}
	if _, ok := rf.counts[k]; ok || len(rf.counts) < maxRefusalKeys {
		rf.counts[k]++
		return
	}
	rf.other++
}

// reasonOf maps a refusal's error to its reason.
func reasonOf(err error) string {
	var he *httpError
	if errors.As(err, &he) {
		if he.reason == api.ReasonEarlierAccount {
			return reasonEarlierAccount
		}
		switch he.code {
		case http.StatusUnauthorized:
			return reasonUnauthenticated
		case http.StatusForbidden:
			return reasonForbidden
		case http.StatusTooManyRequests:
			return reasonRateLimited
		}
	}
	if errors.Is(err, store.ErrUnavailable) {
		// Answered 503 by writeError, not refused for what was sent.
		return reasonStoreUnavailable
	}
	return reasonBadRequest
}

// sourceOf names who made a refused call: its verified identity if it has
// one, else its address, cut to a bounded length.
func sourceOf(r *http.Request, c *caller) string {
	src := ""
	if c != nil && c.ID != "" {
		src = c.ID
	} else if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		src = host
	} else {
		src = r.RemoteAddr
	}
	if len(src) > maxRefusalSource {
		src = src[:maxRefusalSource] + "…"
	}
	return src
}

// flushRefusals records the window's refusals as one audit entry. When the
// entry cannot be recorded the counts go back into the next window.
func (s *Server) flushRefusals(ctx context.Context) {
	rf := &s.refused
	rf.mu.Lock()
	if rf.total == 0 {
		rf.mu.Unlock()
		return
	}
	counts, other, total, start := rf.counts, rf.other, rf.total, rf.start
	rf.counts, rf.other, rf.total = nil, 0, 0
	rf.mu.Unlock()

	now := s.now().UTC()
	bySource := map[string]int64{}
	for k, n := range counts {
		bySource[k.source] += n
	}
	keys := make([]refusalKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if counts[a] != counts[b] {
			return counts[a] > counts[b]
		}
		if a.source != b.source {
			return a.source < b.source
		}
		if a.action != b.action {
			return a.action < b.action
		}
		return a.reason < b.reason
	})
	var top []string
	for _, k := range keys[:min(len(keys), refusalTop)] {
		top = append(top, fmt.Sprintf("%s %s %s ×%d", k.source, k.action, k.reason, counts[k]))
	}
	detail := map[string]string{
		"since":   start.Format(time.RFC3339),
		"until":   now.Format(time.RFC3339),
		"count":   strconv.FormatInt(total, 10),
		"sources": strconv.Itoa(len(bySource)),
		"top":     strings.Join(top, "; "),
	}
	if other > 0 {
		detail["uncounted_sources"] = strconv.FormatInt(other, 10)
	}
	e := audit.Entry{Time: now, Actor: "moat", Action: ActionRefused, Target: fmt.Sprintf("%d refused calls", total), Result: "ok", Detail: detail}
	if err := s.record(ctx, e); err != nil {
		s.log.Error("audit: refused calls not recorded; kept for the next window", "err", err, "count", total)
		rf.mu.Lock()
		if rf.counts == nil {
			rf.counts = map[refusalKey]int64{}
			rf.start = start
		} else if start.Before(rf.start) {
			rf.start = start
		}
		for k, n := range counts {
			if _, ok := rf.counts[k]; ok || len(rf.counts) < maxRefusalKeys {
				rf.counts[k] += n
			} else {
				rf.other += n
			}
		}
		rf.other += other
		rf.total += total
		rf.mu.Unlock()
	}
}

// runRefusals summarises refused calls every window until ctx ends, then
// once more.
func (s *Server) runRefusals(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefusalWindow)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.flushRefusals(fctx)
			cancel()
			return
		case <-t.C:
			s.flushRefusals(ctx)
		}
	}
}
