package check

import (
	"net/netip"
	"strings"

	"moat/internal/check/tf"
)

// azureVPNs reads the networks behind Azure's virtual network gateways
// into the system routes of the networks they reach, each a route to the
// gateway (as AWS's propagated VPN routes are, buildVPNRoutes): the
// address spaces of the local network gateways its site-to-site (IPsec)
// connections name, the address space of the network whose gateway a
// VNet-to-VNet connection names and of the networks that use that gateway
// through their peerings (gateway transit, which Azure's gateways
// advertise to each other), and its point-to-site clients' address
// pool (vpn_client_configuration). The gateway's own network takes them,
// and so does each network peered with it whose peering uses remote
// gateways (use_remote_gateways), where the gateway's side allows gateway
// transit (allow_gateway_transit), without which Azure refuses it. A value
// not known statically is read as on. Ranges learned over BGP, an
// ExpressRoute circuit's among them, are not in the configuration: noted.
func (m *Model) azureVPNs(byType map[string][]*tf.Resource) {
	home := map[string]*VPC{} // gateway → its network
	for _, r := range byType["azurerm_virtual_network_gateway"] {
		for _, ipc := range blocks(r.Values, "ip_configuration") {
			for _, s := range m.subnetsOf(strList(ipc, "subnet_id")) {
				if s.VPC != nil && home[r.Address] == nil {
					home[r.Address] = s.VPC
				}
			}
		}
		if home[r.Address] == nil {
			m.note(r, "its subnet is not known statically or its network is not in the project: what the networks behind it reach is not evaluated")
		}
	}
	type gwRoute struct {
		dest  netip.Prefix
		where string
	}
	routes := map[string][]gwRoute{}
	add := func(r *tf.Resource, gw, where string, spaces []string) {
		for _, c := range spaces {
			if p, ok := m.prefix(r, "address_space", c); ok {
				routes[gw] = append(routes[gw], gwRoute{p, where})
			}
		}
	}
	for _, r := range byType["azurerm_virtual_network_gateway"] {
		for _, b := range blocks(r.Values, "vpn_client_configuration") {
			add(r, r.Address, r.Address+" (point-to-site clients)", strList(b, "address_space"))
			if unknown(b, "address_space") {
				m.note(r, "the point-to-site clients' address_space is not known statically: what they reach is not evaluated")
			}
		}
	}
	on := func(p *Peering, k string) bool {
		return p.Res != nil && (unknown(p.Res.Values, k) || boolean(p.Res.Values, k, false))
	}
	// spokes are the networks peered with a gateway's network that use
	// its gateway: Azure advertises them over its VNet-to-VNet
	// connections as it does its own network.
	spokes := map[*VPC][]*Peering{}
	for _, p := range m.Peerings {
		if p.B == nil || p.A == nil || p.Refused || !on(p, "use_remote_gateways") {
			continue
		}
		for _, q := range m.Peerings {
			if q.A == p.B && q.B == p.A && !q.Refused && on(q, "allow_gateway_transit") {
				spokes[p.B] = append(spokes[p.B], p)
				break
			}
		}
	}
	gateway := func(vals map[string]any, k string) string {
		if ref := m.ref(vals, k); ref != "" {
			return m.addrOf("azurerm_virtual_network_gateway", ref)
		}
		return ""
	}
	for _, r := range byType["azurerm_virtual_network_gateway_connection"] {
		gw := gateway(r.Values, "virtual_network_gateway_id")
		if home[gw] == nil {
			continue // a gateway outside the project, or not in a network of it
		}
		if boolean(r.Values, "enable_bgp", false) || boolean(r.Values, "bgp_enabled", false) {
			m.note(r, "routes that %s learns over BGP are not in the configuration: only the address spaces it names are modelled", gw)
		}
		switch typ := str(r.Values, "type"); {
		case strings.EqualFold(typ, "IPsec"):
			ref := m.ref(r.Values, "local_network_gateway_id")
			lng := m.lookup(m.addrOf("azurerm_local_network_gateway", ref))
			switch {
			case ref == "" && !unknown(r.Values, "local_network_gateway_id"):
			case lng == nil || lng.Type != "azurerm_local_network_gateway":
				m.note(r, "its local network gateway is not in the project: the networks behind it are not evaluated")
			default:
				add(lng, gw, r.Address+" (site-to-site to "+lng.Address+")", strList(lng.Values, "address_space"))
				if unknown(lng.Values, "address_space") {
					m.note(r, "the address_space of %s is not known statically: the networks behind it are not evaluated", lng.Address)
				}
			}
		case strings.EqualFold(typ, "Vnet2Vnet"):
			peer := gateway(r.Values, "peer_virtual_network_gateway_id")
			if v := home[peer]; v != nil {
				for _, c := range v.CIDRs {
					routes[gw] = append(routes[gw], gwRoute{c, r.Address + " (VNet-to-VNet to " + peer + ")"})
				}
				for _, p := range spokes[v] {
					for _, c := range p.A.CIDRs {
						routes[gw] = append(routes[gw], gwRoute{c, r.Address + " (VNet-to-VNet to " + peer + ", for " + p.A.Addr + " through " + p.Addr + ")"})
					}
				}
			} else {
				m.note(r, "the peer gateway's network is not in the project: what it reaches through the connection is not evaluated")
			}
		case strings.EqualFold(typ, "ExpressRoute"):
			m.note(r, "the networks behind an ExpressRoute circuit are learned over BGP, not written in the configuration: what they reach through %s is not evaluated", gw)
		default:
			m.note(r, "connection type %q is not evaluated", typ)
		}
	}
	for gw, v := range home {
		for _, rt := range routes[gw] {
			v.Main.Routes = append(v.Main.Routes, Route{Dest: rt.dest, Kind: "igw", Target: gw, Where: rt.where})
		}
		for _, p := range spokes[v] {
			for _, rt := range routes[gw] {
				p.A.Main.Routes = append(p.A.Main.Routes, Route{Dest: rt.dest, Kind: "igw", Target: gw, Where: rt.where + " through " + p.Addr + " (use_remote_gateways)"})
			}
		}
	}
}
