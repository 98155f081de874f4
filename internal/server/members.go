package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"time"

	"moat/internal/api"
	"moat/internal/store"
)

// prefixMember holds one record per server of the cluster: server/<name>.
const prefixMember = "server/"

// Membership timing: each server refreshes its record every memberEvery;
// one not refreshed for memberAlive is taken to be gone.
const (
	memberEvery = 10 * time.Second
	memberAlive = 3 * memberEvery
)

// memberRecord is a server as the cluster knows it.
type memberRecord struct {
	Name    string    `json:"name"`
	Addr    string    `json:"addr"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
}

// advertised returns the address peers and clients reach this server at:
// Config.Advertise, else the listening address unless it is a wildcard
// ("" then: the server does not register).
func (s *Server) advertised() string {
	if s.cfg.Advertise != "" {
		return s.cfg.Advertise
	}
	addr := s.ln.Addr().String()
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host).IsUnspecified() {
		return ""
	}
	return addr
}

// membership keeps this server's record fresh until ctx ends, then removes
// it. A store that cannot be written (no quorum) is retried at the next
// beat; the record ages out meanwhile.
func (s *Server) membership(ctx context.Context) error {
	addr := s.advertised()
	if addr == "" {
		s.log.Warn("this server listens on a wildcard address and has no advertise address: other servers and clients cannot list it", "listen", s.cfg.Listen)
		return nil
	}
	rec := memberRecord{Name: s.cfg.Name, Addr: addr, Started: s.now().UTC()}
	key := prefixMember + s.cfg.Name
	for {
		rec.Seen = s.now().UTC()
		// The refresh is also how a store that stops answering while the
		// watch stream stays open is noticed (storeup.go).
		switch err := putJSON(ctx, s.st, key, rec); {
		case err == nil:
			s.store.answered()
		case ctx.Err() != nil:
		case transient(err):
			s.store.failed(err, memberEvery)
		default:
			s.log.Warn("refreshing this server's cluster membership failed", "err", err)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if _, err := s.st.Delete(dctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("removing this server's cluster membership failed", "err", err)
			}
			return nil
		case <-time.After(memberEvery):
		}
	}
}

// Members lists the cluster's servers, this one included, by name.
func (s *Server) Members(ctx context.Context) ([]api.Member, error) {
	kvs, _, err := s.st.List(ctx, prefixMember)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []api.Member{}
	for _, kv := range kvs {
		var r memberRecord
		if err := jsonUnmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		out = append(out, api.Member{Name: r.Name, Addr: r.Addr, Started: r.Started, Seen: r.Seen,
			Alive: now.Sub(r.Seen) < memberAlive, Self: r.Name == s.cfg.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) handleMembers(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	ms, err := s.Members(ctx)
	return ms, "", err
}
