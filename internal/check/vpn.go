package check

import (
	"net/netip"

	"moat/internal/check/tf"
)

// buildVPNRoutes adds the routes a VPN gateway propagates into route
// tables (aws_vpn_gateway_route_propagation, or a table's propagating_vgws):
// the static routes of its site-to-site VPN connections
// (aws_vpn_connection_route). Ranges a connection learns over BGP are not
// in the configuration; a propagation of such a gateway is noted.
func (m *Model) buildVPNRoutes(byType map[string][]*tf.Resource) {
	conns := map[string]string{} // connection → its VPN gateway
	bgp := map[string]string{}   // VPN gateway → a connection that uses BGP
	for _, r := range byType["aws_vpn_connection"] {
		gw := m.addr(str(r.Values, "vpn_gateway_id"))
		if gw == "" {
			continue // a transit gateway's VPN: routed by the transit gateway
		}
		conns[r.Address] = gw
		if !boolean(r.Values, "static_routes_only", false) {
			bgp[gw] = r.Address
		}
	}
	ranges := map[string][]netip.Prefix{}
	for _, r := range byType["aws_vpn_connection_route"] {
		gw := conns[m.addr(str(r.Values, "vpn_connection_id"))]
		if gw == "" {
			continue
		}
		if p, ok := m.prefix(r, "destination_cidr_block", str(r.Values, "destination_cidr_block")); ok {
			ranges[gw] = append(ranges[gw], p)
		}
	}
	propagate := func(r *tf.Resource, t *RouteTable, gw string) {
		for _, p := range ranges[gw] {
			t.Routes = append(t.Routes, Route{Dest: p, Kind: "igw", Target: gw, Where: r.Address + " (propagated by " + gw + ")"})
		}
		if c := bgp[gw]; c != "" {
			m.note(r, "routes that %s learns over BGP (%s) are not in the configuration: only its static routes are modelled", gw, c)
		}
	}
	for _, r := range byType["aws_vpn_gateway_route_propagation"] {
		if t := m.tables[m.addr(str(r.Values, "route_table_id"))]; t != nil {
			propagate(r, t, m.addr(str(r.Values, "vpn_gateway_id")))
		}
	}
	for _, typ := range []string{"aws_route_table", "aws_default_route_table"} {
		for _, r := range byType[typ] {
			for _, gw := range strList(r.Values, "propagating_vgws") {
				propagate(r, m.table(r), m.addr(gw))
			}
		}
	}
}
