package check

import (
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// azureVirtualWANs reads a Virtual WAN's hubs into the network model. A
// Standard virtual WAN's hubs are meshed and, by default, associate and
// propagate every connection to their default route table, so each
// network connected to a hub (azurerm_virtual_hub_connection) reaches
// every other connected to a hub of the same WAN: read as a peering of
// each pair (Peering, with the peering system routes Azure's hub routes
// give them), which also puts each one's space in the other's
// VirtualNetwork tag. A Basic WAN has no transit between networks. The
// branches behind a hub's VPN gateway (azurerm_vpn_gateway_connection's
// site address_cidrs) and its point-to-site clients' address pool
// (azurerm_point_to_site_vpn_gateway) reach every connected network of
// the WAN, each a route to that gateway, as a virtual network gateway's
// networks are (azureVPNs). What is not read is read at its most open
// and noted: a connection's custom routing (its route tables, labels and
// static routes), which may isolate networks, is read as the default; a
// hub routing through a firewall in it (routing intent, a secured hub)
// is read as that firewall passing the traffic; ranges learned over BGP
// and ExpressRoute's are not in the configuration.
func (m *Model) azureVirtualWANs(byType map[string][]*tf.Resource, vnets map[string]*VPC) {
	wanOf := map[string]string{} // hub → its WAN ("" when not known)
	basic := map[string]bool{}   // WAN of the Basic type
	for _, r := range byType["azurerm_virtual_wan"] {
		basic[r.Address] = strings.EqualFold(str(r.Values, "type"), "Basic")
	}
	for _, r := range byType["azurerm_virtual_hub"] {
		wanOf[r.Address] = m.addrOf("azurerm_virtual_wan", m.ref(r.Values, "virtual_wan_id"))
	}
	hubOf := func(r *tf.Resource) (string, bool) {
		hub := m.addrOf("azurerm_virtual_hub", m.ref(r.Values, "virtual_hub_id"))
		_, ok := wanOf[hub]
		if !ok {
			m.note(r, "its virtual hub is not in the project: what it connects is not evaluated")
		}
		return hub, ok
	}
	// The networks connected to each WAN's hubs, in the order written.
	type spoke struct {
		v    *VPC
		conn *tf.Resource
	}
	spokes := map[string][]spoke{}
	for _, r := range byType["azurerm_virtual_hub_connection"] {
		hub, ok := hubOf(r)
		if !ok {
			continue
		}
		v := vnets[m.addrOf("azurerm_virtual_network", m.ref(r.Values, "remote_virtual_network_id"))]
		if v == nil {
			m.note(r, "its network is not in the project: what it reaches through %s is not evaluated", hub)
			continue
		}
		if len(blocks(r.Values, "routing")) > 0 || unknown(r.Values, "routing") {
			m.note(r, "its routing (route tables, labels, static routes) is not evaluated: read as the hub's default route table, which every connection of the WAN propagates to")
		}
		spokes[wanOf[hub]] = append(spokes[wanOf[hub]], spoke{v, r})
	}
	for wan, ss := range spokes {
		if basic[wan] {
			continue
		}
		for _, a := range ss {
			for _, b := range ss {
				if a.v == b.v {
					continue
				}
				p := &Peering{Addr: a.conn.Address + " ↔ " + b.conn.Address, A: a.v, B: b.v, Res: a.conn}
				for _, c := range b.v.CIDRs {
					a.v.Main.Routes = append(a.v.Main.Routes, Route{Dest: c, Kind: "pcx", Target: p.Addr, Where: "the virtual hubs' default route table (" + b.conn.Address + ")"})
				}
				m.Peerings = append(m.Peerings, p)
			}
		}
	}
	for _, typ := range []string{"azurerm_virtual_hub_routing_intent", "azurerm_firewall"} {
		for _, r := range byType[typ] {
			if typ == "azurerm_firewall" && len(blocks(r.Values, "virtual_hub")) == 0 {
				continue
			}
			m.note(r, "traffic between the networks and branches of the hub passes its firewall, whose rules are not read for it: read as passing everything")
		}
	}
	// The branches and clients behind each hub's gateways, routed into
	// every network connected to a hub of the WAN.
	route := func(gw *tf.Resource, hub, where string, ranges []string, attr string) {
		for _, s := range spokes[wanOf[hub]] {
			for _, c := range ranges {
				if p, ok := m.prefix(gw, attr, c); ok {
					s.v.Main.Routes = append(s.v.Main.Routes, Route{Dest: p, Kind: "igw", Target: gw.Address, Where: where})
				}
			}
		}
	}
	for _, r := range byType["azurerm_vpn_gateway_connection"] {
		gw := m.lookup(m.addrOf("azurerm_vpn_gateway", m.ref(r.Values, "vpn_gateway_id")))
		if gw == nil || gw.Type != "azurerm_vpn_gateway" {
			m.note(r, "its VPN gateway is not in the project: the branches behind it are not evaluated")
			continue
		}
		hub, ok := hubOf(gw)
		if !ok {
			continue
		}
		site := m.lookup(m.addrOf("azurerm_vpn_site", m.ref(r.Values, "remote_vpn_site_id")))
		if site == nil || site.Type != "azurerm_vpn_site" {
			m.note(r, "its VPN site is not in the project: the branch behind it is not evaluated")
			continue
		}
		route(gw, hub, r.Address+" (site-to-site to "+site.Address+")", strList(site.Values, "address_cidrs"), "address_cidrs")
		if unknown(site.Values, "address_cidrs") {
			m.note(r, "the address_cidrs of %s are not known statically: the branch behind it is not evaluated", site.Address)
		}
		if slices.ContainsFunc(blocks(site.Values, "link"), func(l map[string]any) bool { return len(blocks(l, "bgp")) > 0 }) {
			m.note(r, "routes that %s learns over BGP from %s are not in the configuration: only the address_cidrs it names are modelled", gw.Address, site.Address)
		}
	}
	for _, r := range byType["azurerm_point_to_site_vpn_gateway"] {
		hub, ok := hubOf(r)
		if !ok {
			continue
		}
		for _, cc := range blocks(r.Values, "connection_configuration") {
			for _, pool := range blocks(cc, "vpn_client_address_pool") {
				route(r, hub, r.Address+" (point-to-site clients)", strList(pool, "address_prefixes"), "address_prefixes")
				if unknown(pool, "address_prefixes") {
					m.note(r, "the point-to-site clients' address_prefixes are not known statically: what they reach is not evaluated")
				}
			}
		}
	}
	for _, r := range byType["azurerm_express_route_gateway"] {
		m.note(r, "the networks behind an ExpressRoute circuit are learned over BGP, not written in the configuration: what they reach through the hub is not evaluated")
	}
}
