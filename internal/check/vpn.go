package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// vpnGatewayTypes are the gateways a network behind a VPN sends through:
// a route to one carries that network's traffic (peerSources).
var vpnGatewayTypes = map[string]bool{"aws_vpn_gateway": true, "azurerm_virtual_network_gateway": true,
	"azurerm_vpn_gateway": true, "azurerm_point_to_site_vpn_gateway": true}

// buildVPNRoutes adds the routes a VPN gateway propagates into route
// tables (aws_vpn_gateway_route_propagation, or a table's propagating_vgws):
// the static routes of its site-to-site VPN connections
// (aws_vpn_connection_route). Ranges a connection learns over BGP are not
// in the configuration; a propagation of such a gateway is noted.
func (m *Model) buildVPNRoutes(byType map[string][]*tf.Resource) {
	bgp := map[string]string{}      // VPN gateway → a connection that uses BGP
	connGW := map[string][]string{} // connection → the VPN gateways it may use
	for _, r := range byType["aws_vpn_connection"] {
		gws, _ := m.vpnGatewayIDs(r, "vpn_gateway_id", "the connection's VPN gateway")
		if len(gws) == 0 {
			continue // a transit gateway's VPN: routed by the transit gateway
		}
		connGW[r.Address] = gws
		for _, gw := range gws {
			if !boolean(r.Values, "static_routes_only", false) {
				bgp[gw] = r.Address
			}
		}
	}
	ranges := map[string][]netip.Prefix{}
	for _, r := range byType["aws_vpn_connection_route"] {
		gws := connGW[m.addr(str(r.Values, "vpn_connection_id"))]
		if len(gws) == 0 {
			continue
		}
		if p, ok := m.prefix(r, "destination_cidr_block", str(r.Values, "destination_cidr_block")); ok {
			for _, gw := range gws {
				ranges[gw] = append(ranges[gw], p)
			}
		}
	}
	propagate := func(r *tf.Resource, t *RouteTable, gw, assumed string) {
		for _, p := range ranges[gw] {
			t.Routes = append(t.Routes, Route{Dest: p, Kind: "igw", Target: gw, Where: r.Address + " (propagated by " + gw + ")", Assumed: assumed})
		}
		if c := bgp[gw]; c != "" {
			m.note(r, "routes that %s learns over BGP (%s) are not in the configuration: only its static routes are modelled", gw, c)
		}
	}
	for _, r := range byType["aws_vpn_gateway_route_propagation"] {
		var assumed []string
		ts, anyTable, _ := m.tablesNamed(r, "route_table_id")
		if unknown(r.Values, "route_table_id") {
			// As an unknown route's table: any its expression can name.
			what := "every table of " + strings.Join(unknownFrom(r.Values, "route_table_id"), ", ")
			if anyTable {
				ts, what = m.allTables(), "every route table"
			}
			why := "route table not known statically: the propagation is assumed to reach " + what
			m.note(r, "%s", why)
			assumed = append(assumed, why)
		}
		gws, why := m.vpnGatewayIDs(r, "vpn_gateway_id", "the propagating VPN gateway")
		if why != "" {
			assumed = append(assumed, why)
		}
		for _, gw := range gws {
			for _, t := range ts {
				propagate(r, t, gw, strings.Join(assumed, "; "))
			}
		}
	}
	for _, typ := range []string{"aws_route_table", "aws_default_route_table"} {
		for _, r := range byType[typ] {
			gws, unk := strs(r.Values, "propagating_vgws")
			for _, gw := range gws {
				propagate(r, m.table(r), m.addr(gw), "")
			}
			if unk {
				const why = "propagating_vgws not known statically: assumed to hold every VPN gateway of the project"
				all, _ := m.vpnGateways(nil)
				m.note(r, why)
				for _, gw := range all {
					propagate(r, m.table(r), gw, why)
				}
			}
		}
	}
}

// vpnGatewayIDs returns the VPN gateways attribute k of r names: the one
// it names, or, when it is not known statically, every one it can be
// (vpnGateways), with the assumption, which is noted. None when it is
// empty.
func (m *Model) vpnGatewayIDs(r *tf.Resource, k, what string) (gws []string, assumed string) {
	if gw := m.addr(str(r.Values, k)); gw != "" {
		return []string{gw}, ""
	}
	if !unknown(r.Values, k) {
		return nil, ""
	}
	gws, only := m.vpnGateways(unknownFrom(r.Values, k))
	assumed = fmt.Sprintf("%s not known statically (%s): assumed to be any VPN gateway of the project", what, k)
	if only {
		assumed = fmt.Sprintf("%s not known statically (%s): assumed to be any of %s", what, k, strings.Join(gws, ", "))
	}
	m.note(r, "%s", assumed)
	return gws, assumed
}

// vpnGateways returns the VPN gateways a gateway ID not known statically
// can be, given the resources its expression can only take it from
// (tf.Unknown.From): the instances of the aws_vpn_gateway resources named
// and the gateways the aws_vpn_gateway_attachment resources named attach.
// only is false when from is empty, names a resource of another type, or
// an attachment whose gateway is not known: the ID may then be anything,
// and gws is every VPN gateway of the project (those declared, and those
// an attachment names).
func (m *Model) vpnGateways(from []string) (gws []string, only bool) {
	named := map[string]bool{}
	for _, a := range from {
		named[a] = true
	}
	only = len(from) > 0
	var all, picked []string
	seen := map[string]bool{}
	add := func(gw string, pick bool) {
		if gw == "" {
			return
		}
		if !seen[gw] {
			seen[gw] = true
			all = append(all, gw)
		}
		if pick && !slices.Contains(picked, gw) {
			picked = append(picked, gw)
		}
	}
	found := map[string]bool{}
	for _, r := range m.Resources {
		a := resourceOf(r)
		switch r.Type {
		case "aws_vpn_gateway":
			add(r.Address, named[a])
		case "aws_vpn_gateway_attachment":
			gw := m.addr(str(r.Values, "vpn_gateway_id"))
			if named[a] && gw == "" {
				only = false
			}
			add(gw, named[a])
		default:
			if named[a] {
				only = false
			}
		}
		if named[a] {
			found[a] = true
		}
	}
	if len(found) < len(named) {
		only = false // a resource not in the project
	}
	if only {
		return picked, true
	}
	return all, false
}
