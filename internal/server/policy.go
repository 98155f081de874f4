package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"moat/internal/api"
	"moat/internal/detect"
	"moat/internal/identity"
	"moat/internal/policy"
	"moat/internal/store"
)

// RecentEdges returns the service pairs seen recently, for policy diff.
type RecentEdges func(ctx context.Context) ([]policy.Edge, error)

func (s *Server) policyRoutes(t *routeTable) {
	admin := t.admin
	admin("GET", api.PathPolicy, api.RoleViewer, "policy.show", s.handlePolicyShow)
	admin("POST", api.PathPolicy, api.RoleOperator, "policy.apply", s.handlePolicyApply)
	admin("POST", api.PathPolicyDiff, api.RoleViewer, "policy.diff", s.handlePolicyDiff)
	admin("POST", api.PathPolicyExpl, api.RoleViewer, "policy.explain", s.handlePolicyExplain)
}

// currentPolicy returns the applied policy and its table; with none applied
// it returns a zero Policy and a nil table, which denies everything.
func (s *Server) currentPolicy(ctx context.Context) (api.Policy, *policy.Table, int64, error) {
	var p api.Policy
	rev, err := getJSONRev(ctx, s.st, keyPolicy, &p)
	if errors.Is(err, store.ErrNotFound) {
		return api.Policy{}, nil, 0, nil
	}
	if err != nil {
		return api.Policy{}, nil, 0, err
	}
	t, err := policy.ParseDocument([]byte(p.YAML), s.td.Name())
	if err != nil {
		return api.Policy{}, nil, 0, fmt.Errorf("server: stored policy no longer parses: %w", err)
	}
	return p, t, rev, nil
}

func (s *Server) handlePolicyShow(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	p, _, _, err := s.currentPolicy(ctx)
	return p, "", err
}

func (s *Server) parsePolicyRequest(r *http.Request) (*policy.Table, error) {
	var req api.PolicyRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	t, err := policy.ParseDocument([]byte(req.YAML), s.td.Name())
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return t, nil
}

// handlePolicyApply validates a document and makes it current in one
// transaction that also keeps it as a numbered version; the watch stream
// carries it to every agent.
func (s *Server) handlePolicyApply(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	t, err := s.parsePolicyRequest(r)
	if err != nil {
		return nil, "", err
	}
	old, oldT, rev, err := s.currentPolicy(ctx)
	if err != nil {
		return nil, "", err
	}
	p := api.Policy{Version: old.Version + 1, YAML: string(t.Source()), Applied: s.now().UTC(), By: c.ID}
	c.note("version", fmt.Sprint(p.Version))
	c.note("digest", t.Version())
	if hasWildcard(t) {
		// Detection raises "policy widened" on this.
		c.note(detect.DetailWildcard, "true")
	}
	if oldT != nil && hasWildcard(oldT) {
		// And resolves it on a narrowing apply, on whichever server.
		c.note(detect.DetailWasWidened, "true")
	}
	target := policyTarget(p.Version)
	_, err = s.st.Txn(ctx, []store.Cond{{Key: keyPolicy, ModRevision: rev}}, []store.Op{
		store.Put(keyPolicy, mustJSON(p)),
		store.Put(fmt.Sprintf("%s%010d", prefixPolicyV, p.Version), mustJSON(p)),
	})
	if err != nil {
		return nil, target, err
	}
	return api.PolicyApplied{Policy: p, Warnings: t.Warnings(), Wildcard: hasWildcard(t)}, target, nil
}

// policyTarget is the audit target of the apply of a policy's version.
func policyTarget(version int64) string { return fmt.Sprintf("policy v%d", version) }

func hasWildcard(t *policy.Table) bool {
	for _, r := range t.Rules() {
		for _, f := range r.From {
			if f == "*" {
				return true
			}
		}
		// Every plaintext caller from anywhere is at least as wide.
		for _, f := range r.FromPlaintext {
			if f == policy.AnyPlaintext {
				return true
			}
		}
	}
	return false
}

func (s *Server) handlePolicyDiff(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	t, err := s.parsePolicyRequest(r)
	if err != nil {
		return nil, "", err
	}
	_, cur, _, err := s.currentPolicy(ctx)
	if err != nil {
		return nil, "", err
	}
	recent, err := s.recentEdges(ctx)
	if err != nil {
		return nil, "", err
	}
	d := policy.Diff(cur, t, recent)
	return api.PolicyDiff{Text: d.String(), Changes: policyChanges(d)}, "", nil
}

func (s *Server) handlePolicyExplain(ctx context.Context, c *caller, r *http.Request) (any, string, error) {
	var req api.ExplainRequest
	if err := decode(r, &req); err != nil {
		return nil, "", err
	}
	if err := validateExplain(req); err != nil {
		return nil, "", err
	}
	_, cur, _, err := s.currentPolicy(ctx)
	if err != nil {
		return nil, "", err
	}
	d := cur.DecideSource(req.From, req.To, req.Port)
	return api.Explanation{Allow: d.Allow, Audit: d.Audit, Rule: d.Rule, Text: strings.TrimSpace(cur.Explain(req.From, req.To, req.Port))}, "", nil
}

// validateExplain admits a caller named by service name or by the IP
// address of a plaintext caller, a service name and a port.
func validateExplain(req api.ExplainRequest) error {
	if _, err := netip.ParseAddr(req.From); err != nil {
		if err := identity.ValidName(req.From); err != nil {
			return errorf(http.StatusBadRequest, "from %q: want a service name or an IP address: %v", req.From, err)
		}
	}
	if err := identity.ValidName(req.To); err != nil {
		return errorf(http.StatusBadRequest, "to: %v", err)
	}
	if req.Port < 1 || req.Port > 65535 {
		return errorf(http.StatusBadRequest, "port %d: want 1-65535", req.Port)
	}
	return nil
}
