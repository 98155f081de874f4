package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/detect"
	"moat/internal/flow"
	"moat/internal/identity"
	"moat/internal/store"
)

// ActionNodeFirewall names the audit entry written when the rules of other
// nftables tables that take packets round a node's host firewall, as its
// agent reports them, change: they appeared, changed or cleared. Detection
// raises the node's firewall_bypass alert from it, and resolves it when
// none is left.
const ActionNodeFirewall = "node.firewall"

// Detail keys of an ActionNodeFirewall entry.
const (
	detailBypassRules = "bypass_rules" // how many rules there are, all told
	detailBypassMark  = "mark"         // of those listed, how many set moat's mark
	detailBypassNotr  = "notrack"      // and how many notrack beyond loopback
	detailBypassList  = "rules"        // the listed rules, escaped
)

// checkFirewallHealth refuses a report whose firewall part is past its
// bounds or not of its shape: only an agent that lies sends one.
func checkFirewallHealth(f *api.FirewallHealth) error {
	if err := f.Check(); err != nil {
		code := http.StatusBadRequest
		if f != nil && (len(f.Bypasses) > api.MaxFirewallBypasses || f.BypassCount > api.MaxFirewallBypassCount) {
			code = http.StatusRequestEntityTooLarge
		}
		return errorf(code, "firewall.%v", err)
	}
	return nil
}

// sameBypasses tells whether two reports name the same bypasses (nil and
// none alike).
func sameBypasses(a, b *api.FirewallHealth) bool {
	if a == nil {
		a = &api.FirewallHealth{}
	}
	if b == nil {
		b = &api.FirewallHealth{}
	}
	return a.BypassCount == b.BypassCount && slices.Equal(a.Bypasses, b.Bypasses)
}

// bypassDetail is the detail of the audit entry of a report's bypasses,
// f, and how many there are.
func bypassDetail(f *api.FirewallHealth) (int, map[string]string) {
	mark, notrack := f.Kinds()
	count := 0
	var list []string
	if f != nil {
		count = f.BypassCount
		for _, b := range f.Bypasses {
			list = append(list, fmt.Sprintf("%s %s chain %s handle %d: %s", b.Family, flow.PrintableText(b.Table), flow.PrintableText(b.Chain), b.Handle, b.Kind))
		}
	}
	return count, map[string]string{
		detailBypassRules: strconv.Itoa(count),
		detailBypassMark:  strconv.Itoa(mark),
		detailBypassNotr:  strconv.Itoa(notrack),
		detailBypassList:  strings.Join(list, "; "),
	}
}

// recordBypasses writes the audit entry of node's new bypasses, f.
func (s *Server) recordBypasses(ctx context.Context, c *caller, f *api.FirewallHealth) error {
	_, detail := bypassDetail(f)
	return s.record(ctx, audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: "node", Action: ActionNodeFirewall, Target: c.Name, Result: "ok",
		Detail: detail})
}

// prefixBypass keys the firewall bypasses of each node whose latest
// report lists any, with the server that took the report: a few nodes at
// most, read every minute by every server (StandingBypasses), where the
// nodes' whole reports (prefixHealth) would be a fleet's listeners.
const prefixBypass = "bypass/"

// standingBypass is what prefixBypass holds of one node.
type standingBypass struct {
	Server   string              `json:"server"`
	Firewall *api.FirewallHealth `json:"firewall"`
}

// bypassOp is the store write of node's latest report of its firewall's
// bypasses, f, taken by this server: kept while it lists any, removed
// when it lists none.
func (s *Server) bypassOp(node string, f *api.FirewallHealth) store.Op {
	if f == nil || f.BypassCount == 0 {
		return store.Delete(prefixBypass + node)
	}
	return store.Put(prefixBypass+node, mustJSON(standingBypass{Server: s.cfg.Name, Firewall: f}))
}

// standingBypasses returns, from the store, the firewall bypasses of
// every node that this server answers for and whose latest report lists
// any. A node is answered for by the server that took its latest report
// (its agent reports to one server at a time, at every change and every
// five minutes), or, once that server's membership has lapsed, by the
// heir (see answerer). A node revoked is left out: it reaches nothing of
// the mesh any more, and reports no more.
func (s *Server) standingBypasses(ctx context.Context, an answerer) ([]detect.Standing, error) {
	kvs, _, err := s.st.List(ctx, prefixBypass)
	if err != nil || len(kvs) == 0 {
		return nil, err
	}
	var revs identity.Revocations
	if err := getJSON(ctx, s.st, keyRevocations, &revs); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var out []detect.Standing
	for _, kv := range kvs {
		var b standingBypass
		if err := jsonUnmarshal(kv.Value, &b); err != nil {
			return nil, fmt.Errorf("server: stored %q: %w", kv.Key, err)
		}
		node := strings.TrimPrefix(kv.Key, prefixBypass)
		if !an.mine(b.Server) || b.Firewall == nil || b.Firewall.BypassCount == 0 {
			continue
		}
		if id, err := identity.NodeID(s.td, node); err == nil && slices.Contains(revs.IDs, id.String()) {
			continue
		}
		_, detail := bypassDetail(b.Firewall)
		out = append(out, detect.Standing{Rule: detect.RuleFirewallBypass, Subject: node, Detail: detail})
	}
	return out, nil
}
