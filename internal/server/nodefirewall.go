package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"moat/internal/api"
	"moat/internal/audit"
	"moat/internal/flow"
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

// recordBypasses writes the audit entry of node's new bypasses, f.
func (s *Server) recordBypasses(ctx context.Context, c *caller, f *api.FirewallHealth) error {
	mark, notrack := f.Kinds()
	count := 0
	var list []string
	if f != nil {
		count = f.BypassCount
		for _, b := range f.Bypasses {
			list = append(list, fmt.Sprintf("%s %s chain %s handle %d: %s", b.Family, flow.PrintableText(b.Table), flow.PrintableText(b.Chain), b.Handle, b.Kind))
		}
	}
	return s.record(ctx, audit.Entry{Time: s.now().UTC(), Actor: c.ID, Role: "node", Action: ActionNodeFirewall, Target: c.Name, Result: "ok",
		Detail: map[string]string{
			detailBypassRules: strconv.Itoa(count),
			detailBypassMark:  strconv.Itoa(mark),
			detailBypassNotr:  strconv.Itoa(notrack),
			detailBypassList:  strings.Join(list, "; "),
		}})
}
