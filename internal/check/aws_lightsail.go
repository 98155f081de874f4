package check

import (
	"fmt"
	"net/netip"
	"strings"

	"moat/internal/check/tf"
)

// lightsailInstances adds Lightsail instances: outside any VPC, always
// with a public address, behind their firewall alone. That firewall is
// their aws_lightsail_instance_public_ports (which replaces every port),
// or else Lightsail's default: SSH (RDP for Windows) and HTTP from every
// address.
func (m *Model) lightsailInstances(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	ports := map[string]*tf.Resource{}
	anyPorts := false
	for _, r := range byType["aws_lightsail_instance_public_ports"] {
		if unknown(r.Values, "instance_name") {
			anyPorts = true
			continue
		}
		ports[m.addrOf("aws_lightsail_instance", str(r.Values, "instance_name"))] = r
	}
	for _, r := range byType["aws_lightsail_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "lightsail instance", Res: r, Public: true, OutsideVPC: true,
			Why:      "Lightsail instances always have a public address",
			Unplaced: "Lightsail's network, outside any VPC: only the instance's firewall stands in the way"}
		g := &SG{Addr: r.Address + " (firewall)", Res: r}
		switch p := ports[r.Address]; {
		case p != nil:
			g.Addr = p.Address
			for i, b := range blocks(p.Values, "port_info") {
				where := fmt.Sprintf("%s port_info[%d]", p.Address, i)
				rule := m.sgRule(p, b, where, p.Address, false)
				for _, k := range []string{"cidrs", "ipv6_cidrs"} {
					vals, unk := strs(b, k)
					if unk {
						rule.Assumed = k + " not known statically: assumed to admit every address"
						m.note(p, "%s: %s", where, rule.Assumed)
					}
					for _, c := range vals {
						if pfx, ok := m.cidr(p, where, strings.Replace(k, "cidrs", "cidr_blocks", 1), c); ok {
							rule.CIDRs = append(rule.CIDRs, pfx)
						}
					}
				}
				if !has(b, "cidrs") && !has(b, "ipv6_cidrs") && !has(b, "cidr_list_aliases") {
					rule.CIDRs = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} // Lightsail's default source
				}
				g.Ingress = append(g.Ingress, rule)
			}
			if blocksUnknown(p.Values, "port_info") {
				why := "port_info not known statically: assumed to admit every address on every port"
				m.note(p, "%s", why)
				g.Ingress = append(g.Ingress, SGRule{Proto: "all", From: 0, To: 65535, Assumed: why, Where: p.Address + " port_info", Res: p})
			}
		case anyPorts:
			e.SGsUnknown = "aws_lightsail_instance_public_ports whose instance is not known statically: assumed to admit every address"
		default:
			admin := SGRule{Proto: "tcp", From: 22, To: 22}
			if strings.Contains(strings.ToLower(str(r.Values, "blueprint_id")), "windows") {
				admin.From, admin.To = 3389, 3389
			}
			http := SGRule{Proto: "tcp", From: 80, To: 80}
			for _, rule := range []SGRule{admin, http} {
				rule.CIDRs, rule.Res = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}, r
				rule.Where = r.Address + " (Lightsail's default firewall: no aws_lightsail_instance_public_ports names it)"
				g.Ingress = append(g.Ingress, rule)
			}
		}
		e.SGs = []*SG{g}
		add(e)
	}
}
