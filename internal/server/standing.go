package server

import (
	"context"

	"moat/internal/detect"
)

// StandingAlerts returns the conditions of detection's standing rules
// (detect.StandingRules) that hold in the store and that this server
// answers for, for detection to post their alerts again while they
// stand (detect.Config.Standing), across restarts and failovers, each
// on one server of the cluster: the nodes' firewall bypasses (each by
// the server that took the node's latest report) and the policy
// widened (by the heir).
func (s *Server) StandingAlerts(ctx context.Context) ([]detect.Standing, error) {
	an, err := s.answerer(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.standingBypasses(ctx, an)
	if err != nil {
		return nil, err
	}
	if !an.mine("") {
		return out, nil
	}
	p, t, _, err := s.currentPolicy(ctx)
	if err != nil || t == nil || !hasWildcard(t) {
		return out, err
	}
	return append(out, detect.Standing{Rule: detect.RulePolicyWidened, Subject: detect.PolicySubject, Detail: map[string]string{
		detect.DetailWildcard: "true", "actor": p.By, "applied": policyTarget(p.Version)}}), nil
}

// answerer tells which server answers for a standing condition: the
// server that took the call it stands on while that server's membership
// is alive, else the heir, the first live member by name (this server
// when none is alive, or it is the only one), which also answers for
// what no one server took (the policy).
type answerer struct {
	self, heir string
	alive      map[string]bool
}

func (s *Server) answerer(ctx context.Context) (answerer, error) {
	members, err := s.Members(ctx)
	if err != nil {
		return answerer{}, err
	}
	an := answerer{self: s.cfg.Name, heir: s.cfg.Name, alive: map[string]bool{}}
	for _, m := range members {
		if m.Alive {
			if len(an.alive) == 0 {
				an.heir = m.Name
			}
			an.alive[m.Name] = true
		}
	}
	return an, nil
}

// mine reports whether this server answers for a condition that server
// took ("" for one no server took).
func (an answerer) mine(server string) bool {
	if server != an.self && !an.alive[server] {
		server = an.heir
	}
	return server == an.self
}
