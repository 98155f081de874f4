package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"moat/internal/api"
	"moat/internal/identity"
	"moat/internal/store"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func (s *Server) handleServiceRegister(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var reg api.Registration
	if err := decode(r, &reg); err != nil {
		return nil, "", err
	}
	if err := validateRegistration(reg); err != nil {
		return nil, reg.Name, err
	}
	if _, err := s.st.Get(ctx, prefixNode+reg.Node); errors.Is(err, store.ErrNotFound) {
		// Registering ahead of the node's join is allowed: the node picks the
		// service up when it joins.
		s.log.Info("service registered on a node that has not joined yet", "service", reg.Name, "node", reg.Node)
	}
	if err := s.placeService(ctx, c, reg.Name, &reg); err != nil {
		return nil, reg.Name, err
	}
	return reg, reg.Name, nil
}

func validateRegistration(reg api.Registration) error {
	if err := identity.ValidName(reg.Name); err != nil {
		return errorf(http.StatusBadRequest, "name: %v", err)
	}
	if err := identity.ValidName(reg.Node); err != nil {
		return errorf(http.StatusBadRequest, "node: %v", err)
	}
	if reg.Port < 1 || reg.Port > 65535 {
		return errorf(http.StatusBadRequest, "port %d: want 1-65535", reg.Port)
	}
	if reg.UID != nil && *reg.UID < 0 {
		return errorf(http.StatusBadRequest, "uid %d: want ≥ 0", *reg.UID)
	}
	if reg.PlaintextPort < 0 || reg.PlaintextPort > 65535 {
		return errorf(http.StatusBadRequest, "plaintext_port %d: want 1-65535", reg.PlaintextPort)
	}
	if len(reg.Labels) > api.MaxLabels {
		return errorf(http.StatusBadRequest, "labels: %d, at most %d", len(reg.Labels), api.MaxLabels)
	}
	for k, v := range reg.Labels {
		if err := api.ValidLabel(k, v); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	seen := map[int]bool{}
	for i, u := range reg.Upstreams {
		if err := u.Check(); err != nil {
			return errorf(http.StatusBadRequest, "upstreams[%d]: %v", i, err)
		}
		if seen[u.LocalPort] {
			return errorf(http.StatusBadRequest, "upstreams[%d].local_port %d: used twice", i, u.LocalPort)
		}
		seen[u.LocalPort] = true
	}
	return nil
}

func (s *Server) handleServiceList(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	regs, err := s.services(ctx)
	if err != nil {
		return nil, "", err
	}
	health := map[string]nodeHealth{}
	out := make([]api.ServiceListing, 0, len(regs))
	for _, reg := range regs {
		h, ok := health[reg.Node]
		if !ok {
			if err := getJSON(ctx, s.st, prefixHealth+reg.Node, &h); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, "", err
			}
			health[reg.Node] = h
		}
		out = append(out, api.ServiceListing{Registration: reg, Health: h.Services[reg.Name], Reported: h.Reported})
	}
	return out, "", nil
}

// prefixHealth keys the last listener report of each node.
const prefixHealth = "health/"

type nodeHealth struct {
	api.NodeHealth
	Reported time.Time `json:"reported"`
}

// handleNodeHealth keeps a node's report on its services' listeners, for
// svc list, and on its host firewall's bypasses, whose every change is
// audited (ActionNodeFirewall). A node reports only on services
// registered on it, at a bounded rate (each report is a store write); the
// report is bounded and its text cut, and its firewall part refused past
// its bounds.
func (s *Server) handleNodeHealth(w http.ResponseWriter, r *http.Request, c *caller) {
	ctx := r.Context()
	if !s.nodeLimit(c.Name, limitHealth).AllowN(s.now(), 1) {
		err := errorf(http.StatusTooManyRequests, "listener health reported too often; try again later")
		s.refuse(r, c, "node.health", err)
		writeError(w, err)
		return
	}
	var h api.NodeHealth
	if err := decode(r, &h); err != nil {
		writeError(w, err)
		return
	}
	regs, err := s.services(ctx)
	if err != nil {
		writeError(w, err)
		return
	}
	mine := map[string]bool{}
	for _, reg := range regs {
		mine[reg.Name] = reg.Node == c.Name
	}
	n := 0
	for svc, ls := range h.Services {
		if !mine[svc] {
			writeError(w, errorf(http.StatusForbidden, "service %q is not registered on node %q", svc, c.Name))
			return
		}
		n += len(ls)
		for i := range ls {
			ls[i].Error = cut(ls[i].Error, api.MaxHealthText)
			ls[i].Addr = cut(ls[i].Addr, api.MaxHealthText)
			ls[i].Kind = cut(ls[i].Kind, 16)
			ls[i].Upstream = cut(ls[i].Upstream, 64)
		}
	}
	if n > api.MaxHealthListeners {
		writeError(w, errorf(http.StatusRequestEntityTooLarge, "%d listeners in one report; at most %d", n, api.MaxHealthListeners))
		return
	}
	if err := checkFirewallHealth(h.Firewall); err != nil {
		s.refuse(r, c, "node.health", err)
		writeError(w, err)
		return
	}
	// A change of the firewall's bypasses is audited before it is
	// stored, and the store written only over the report it was read
	// from: a report the store already reflects writes no second entry.
	key := prefixHealth + c.Name
	var prev nodeHealth
	rev, err := getJSONRev(ctx, s.st, key, &prev)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		writeError(w, err)
		return
	}
	if !sameBypasses(prev.Firewall, h.Firewall) {
		if err := s.recordBypasses(ctx, c, h.Firewall); err != nil {
			writeError(w, errorf(http.StatusServiceUnavailable, "the audit log is unavailable"))
			return
		}
	}
	b, err := json.Marshal(nodeHealth{NodeHealth: h, Reported: s.now()})
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.st.Txn(ctx, []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{store.Put(key, b), s.bypassOp(c.Name, h.Firewall)}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (s *Server) services(ctx context.Context) ([]api.Registration, error) {
	kvs, _, err := s.st.List(ctx, prefixService)
	if err != nil {
		return nil, err
	}
	out := make([]api.Registration, 0, len(kvs))
	for _, kv := range kvs {
		var reg api.Registration
		if err := json.Unmarshal(kv.Value, &reg); err != nil {
			return nil, err
		}
		out = append(out, reg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) handleServiceDeregister(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	name := r.URL.Query().Get("name")
	if err := s.placeService(ctx, c, name, nil); err != nil {
		return nil, name, err
	}
	return nil, name, nil
}
