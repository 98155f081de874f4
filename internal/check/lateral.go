package check

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// adminPorts are the ports whose reachability from another network is a
// pivot: remote administration and cluster control.
var adminPorts = map[int]bool{22: true, 23: true, 3389: true, 5900: true, 2375: true, 2376: true, 2379: true, 6443: true, 10250: true}

// peerSources returns, for the VPC of s, every other network that can send
// to it: peered VPCs, VPCs on a shared transit gateway, and the ranges
// routed to a VPN gateway (AWS's, or Azure's virtual network gateway);
// each with the forward route that carries its traffic to s.
func (m *Model) peerSources(s *Subnet) []peerSource {
	if s.VPC == nil || !s.CIDR.IsValid() {
		return nil
	}
	if out, ok := m.peerCache[s]; ok {
		return out
	}
	var out []peerSource
	for _, v := range m.linkedVPCs(s.VPC) {
		if len(v.CIDRs) == 0 {
			continue
		}
		if hop, assumed, ok := m.forwardRoute(v, s); ok {
			out = append(out, peerSource{Source: m.VPCSource(v), Hop: hop, Assumed: assumed})
		}
	}
	out = append(out, m.transitSources(s)...)
	defer func() { m.peerCache[s] = out }()
	for _, t := range m.tablesOf(s) {
		if t == nil {
			continue
		}
		for _, r := range t.Routes {
			switch {
			case r.Kind == "igw":
				if gw := m.lookup(r.Target); gw != nil && vpnGatewayTypes[gw.Type] {
					src := Source{Name: "VPN " + r.Target + " (" + r.Dest.String() + ")", Set: setOf(r.Dest), SGs: map[string]bool{}, Gateway: r.Target}
					detail := fmt.Sprintf("site-to-site VPN; %s routes %s to it", t.Addr, r.Dest)
					if gw.Type == "azurerm_virtual_network_gateway" {
						detail = fmt.Sprintf("virtual network gateway; %s routes %s to it (%s)", t.Addr, r.Dest, r.Where)
					}
					out = append(out, peerSource{Source: src, Hop: Hop{Kind: "vpn", Addr: r.Target, Detail: detail}})
				}
			case r.Kind == "tgw":
				conns, assumed := m.tgwVPNs(r.Target, r.Dest)
				for i, conn := range conns {
					src := Source{Name: "VPN " + conn + " (" + r.Dest.String() + ")", Set: setOf(r.Dest), SGs: map[string]bool{}, Gateway: r.Target}
					detail := fmt.Sprintf("transit gateway with site-to-site VPN %s; %s routes %s to it", conn, t.Addr, r.Dest)
					if assumed[i] != "" {
						detail += " (" + assumed[i] + ")"
					}
					out = append(out, peerSource{Source: src, Hop: Hop{Kind: "vpn", Addr: r.Target, Detail: detail}})
				}
			}
		}
	}
	return out
}

// linkedVPCs returns the VPCs that a peering connection or a transit
// gateway joins to v, in the model's order: the only ones whose routes can
// send traffic into v. The index is built on first use.
func (m *Model) linkedVPCs(v *VPC) []*VPC {
	if m.linked == nil {
		m.linked = map[*VPC][]*VPC{}
		m.vpcTables = map[*VPC][]*RouteTable{}
		m.peerCache = map[*Subnet][]peerSource{}
		for _, t := range m.Tables {
			m.vpcTables[t.VPC] = append(m.vpcTables[t.VPC], t)
		}
		join := map[*VPC]map[*VPC]bool{}
		link := func(a, b *VPC) {
			if a == nil || b == nil || a == b {
				return
			}
			if join[a] == nil {
				join[a] = map[*VPC]bool{}
			}
			if join[b] == nil {
				join[b] = map[*VPC]bool{}
			}
			join[a][b], join[b][a] = true, true
		}
		for _, p := range m.Peerings {
			link(p.A, p.B)
		}
		for _, att := range m.tgws {
			var vs []*VPC
			for _, w := range m.VPCs {
				if att[w.Addr] {
					vs = append(vs, w)
				}
			}
			for i := range vs {
				for j := i + 1; j < len(vs); j++ {
					link(vs[i], vs[j])
				}
			}
		}
		for _, w := range m.VPCs {
			for _, u := range m.VPCs {
				if join[w][u] {
					m.linked[w] = append(m.linked[w], u)
				}
			}
		}
	}
	return m.linked[v]
}

type peerSource struct {
	Source
	Hop Hop
	// Assumed says what the route into the subnet's VPC was assumed to be
	// (its target could not be evaluated).
	Assumed []string
}

// forwardRoute finds a route in one of v's tables that sends traffic for
// s's range through a peering or transit gateway joining v and s's VPC,
// and what it rests on: a route whose target is not known statically is
// read as through such a peering or transit gateway.
func (m *Model) forwardRoute(v *VPC, s *Subnet) (Hop, []string, bool) {
	return m.forwardRouteIn(m.vpcTables[v], v, s)
}

// forwardRouteIn is forwardRoute over the tables given, of v: those of
// one of its subnets, for a source there.
func (m *Model) forwardRouteIn(tables []*RouteTable, v *VPC, s *Subnet) (Hop, []string, bool) {
	for _, t := range tables {
		for _, r := range t.Routes {
			if !r.Dest.Overlaps(s.CIDR) || r.Dest.Bits() > s.CIDR.Bits() {
				continue
			}
			via, ok := m.joins(r, v, s.VPC)
			if !ok {
				continue
			}
			if r.Kind == "pcx" {
				return Hop{Kind: "peering", Addr: via, Detail: fmt.Sprintf("%s routes %s → %s (%s)", t.Addr, r.Dest, orUnknown(r.Target), r.Where)}, assumptions([]Route{r}), true
			}
			how := "both VPCs attached, its route tables routing each one's range to the other's attachment"
			if m.tgwRead[via] == nil {
				how = "both VPCs attached (" + tgwTablesUnread + ")"
			}
			if p := m.tgwVia[[2]string{via, s.VPC.Addr}]; p != "" {
				how = s.VPC.Addr + " attached to the gateway it is peered with by " + p + " (" + tgwTablesUnread + ", nor the routes across the peering)"
			}
			return Hop{Kind: "tgw", Addr: via, Detail: fmt.Sprintf("%s routes %s → %s (%s); %s", t.Addr, r.Dest, orUnknown(r.Target), r.Where, how)}, assumptions([]Route{r}), true
		}
	}
	return Hop{}, nil, false
}

// joins reports whether route r sends traffic from VPC a to VPC b, and
// through what: a peering of the two, or a transit gateway both are
// attached to. A target not known statically is any of them (the first
// in the model's order).
func (m *Model) joins(r Route, a, b *VPC) (string, bool) {
	if a == nil || b == nil {
		return "", false
	}
	switch r.Kind {
	case "pcx":
		for _, p := range m.Peerings {
			if (p.Addr == r.Target || r.Target == "") && ((p.A == a && p.B == b) || (p.B == a && p.A == b)) {
				return p.Addr, true
			}
		}
	case "tgw":
		if r.Target != "" {
			return r.Target, m.tgwJoins(r.Target, a, b)
		}
		tgws := make([]string, 0, len(m.tgws))
		for tgw := range m.tgws {
			tgws = append(tgws, tgw)
		}
		sort.Strings(tgws)
		for _, tgw := range tgws {
			if m.tgwJoins(tgw, a, b) {
				return tgw, true
			}
		}
	}
	return "", false
}

// lateral flags admin and data-store ports of e reachable from the whole
// range of another network.
func (m *Model) lateral(fs *findings) {
	for _, e := range m.Endpoints {
		if e.Managed && !e.InVPC || e.PublicOnly {
			continue
		}
		ports := map[int]bool{}
		for _, p := range e.Ports {
			if e.DataTier || adminPorts[p] {
				ports[p] = true
			}
		}
		if e.Listens == nil {
			for p := range adminPorts {
				ports[p] = true
			}
		}
		keys := make([]int, 0, len(ports))
		for p := range ports {
			keys = append(keys, p)
		}
		sort.Ints(keys)
		seen := map[string]bool{}
		for _, s := range e.Subnets {
			for _, ps := range m.peerSources(s) {
				if seen[ps.Name] {
					continue
				}
				var open []string
				var path []Hop
				var g portGroup
				for _, p := range keys {
					res := m.Reach(ps.Source, e, "tcp", p)
					if !res.Reachable || len(res.Assumed) > 0 || len(ps.Assumed) > 0 || !empty(minus(ps.Set, res.From)) {
						continue
					}
					name := portName(p)
					if l := e.listenerName(p); l != "" {
						name = l
					} else if name == "" {
						name = e.Kind + " service port"
					}
					open = append(open, fmt.Sprintf("tcp %d (%s)", p, name))
					pp := append([]Hop{res.Path[0], ps.Hop}, res.Path[1:]...)
					if path == nil {
						path = pp
					}
					g.add(p, name, pp)
				}
				if len(open) == 0 {
					continue
				}
				seen[ps.Name] = true
				from := fmt.Sprintf("%s (%s)", ps.Name, m.describe(ps.Set))
				if ps.Gateway != "" {
					from = ps.Name // names the range routed to the gateway
				}
				fs.add(ruleFor(e, RuleLateral), e.Res, path, "%s is reachable from all of %s on %s", e.Addr, from, strings.Join(open, ", "))
				fs.list[len(fs.list)-1].Paths = g.portPaths()
			}
		}
	}
}

// tgwVPNs returns the site-to-site VPN connections attached to transit
// gateway tgw (aws_vpn_connection's transit_gateway_id) from whose
// networks traffic for dest may come back through it: none when dest lies
// within a VPC attached to the gateway, whose traffic it is, or holds the
// internet at large (wide), whose way out the gateway is. Which ranges
// a connection carries is its customer's (static routes on the gateway's
// tables, or BGP), so every range routed to the gateway is read as one.
// A connection whose transit gateway is not known statically is read as
// on any its expression can name (tf.Unknown.From), else on any, and
// assumed says so; it is noted.
func (m *Model) tgwVPNs(tgw string, dest netip.Prefix) (conns, assumed []string) {
	if wide(m.Internet().Set, setOf(dest), nil) {
		return nil, nil // the internet at large: the way out (an egress VPC), not a customer's network
	}
	for _, v := range m.VPCs {
		if !m.tgws[tgw][v.Addr] {
			continue
		}
		for _, c := range v.CIDRs {
			if c.Bits() <= dest.Bits() && c.Contains(dest.Addr()) {
				return nil, nil
			}
		}
	}
	for _, r := range m.Resources {
		if r.Type != "aws_vpn_connection" || str(r.Values, "vpn_gateway_id") != "" || unknown(r.Values, "vpn_gateway_id") {
			continue // a VPN gateway's connection (buildVPNRoutes)
		}
		if !unknown(r.Values, "transit_gateway_id") {
			if gw := str(r.Values, "transit_gateway_id"); gw != "" && m.addr(gw) == tgw {
				conns, assumed = append(conns, r.Address), append(assumed, "")
			}
			continue
		}
		why := "any transit gateway"
		if gws := instancesOf(m, unknownFrom(r.Values, "transit_gateway_id"), m.byType["aws_ec2_transit_gateway"], func(g *tf.Resource) *tf.Resource { return g }); gws != nil {
			var as []string
			on := false
			for _, g := range gws {
				as, on = append(as, g.Address), on || g.Address == tgw
			}
			if !on {
				continue
			}
			why = "any of " + strings.Join(as, ", ")
		}
		why = fmt.Sprintf("%s: its transit gateway not known statically (transit_gateway_id): assumed to be %s", r.Address, why)
		m.note(r, "%s", why)
		conns, assumed = append(conns, r.Address), append(assumed, why)
	}
	return conns, assumed
}
