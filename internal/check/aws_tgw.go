package check

import (
	"fmt"
	"net/netip"
	"slices"

	"moat/internal/check/tf"
)

// tgwTablesUnread says what is assumed of a transit gateway whose route
// tables cannot be read.
const tgwTablesUnread = "transit gateway route tables not read: every VPC attached to it is read as reaching every other, which may report paths its tables do not give"

// tgwTables is what a transit gateway's route tables say: the table each
// VPC attachment is associated with, and each table's routes.
type tgwTables struct {
	assoc  map[string]string     // attachment → route table
	routes map[string][]tgwRoute // route table → routes
	vpcOf  map[string]string     // attachment → VPC address
}

// tgwRoute sends dest to an attachment, or drops it (blackhole). A
// static route (aws_ec2_transit_gateway_route, a blackhole too) wins over
// a propagated one for the same prefix, as AWS ranks them; a more
// specific route wins over both (tgwOverridden).
type tgwRoute struct {
	dest      netip.Prefix
	att       string
	blackhole bool
	static    bool
}

// tgwOverridden reports whether, in a table of routes, route r carries
// none of region (a part of r.dest) to VPC to: a route that outranks it
// (more specific, or as specific and static where r is propagated) and
// holds the whole region drops it or sends it elsewhere. Routes that
// together, but none alone, hold the region are not read as overriding.
func tgwOverridden(routes []tgwRoute, r tgwRoute, region netip.Prefix, to string, vpcOf map[string]string) bool {
	for _, w := range routes {
		if w == r || !w.blackhole && vpcOf[w.att] == to {
			continue
		}
		outranks := w.dest.Bits() > r.dest.Bits() || w.dest.Bits() == r.dest.Bits() && w.static && !r.static
		if outranks && w.dest.Bits() <= region.Bits() && w.dest.Contains(region.Addr()) {
			return true
		}
	}
	return false
}

// buildTGWPeerings joins the transit gateways of the project that
// peering attachments (aws_ec2_transit_gateway_peering_attachment) join:
// each holds the VPCs attached to the gateways it is peered with, through
// one peering or several (tgwVia names the first), read at their widest.
// What crosses a peering is the static routes to it on the gateways'
// tables, which are not read (buildTGWTables notes so): every VPC of one
// is read as reaching every VPC of the others.
func (m *Model) buildTGWPeerings(byType map[string][]*tf.Resource) {
	m.tgwVia = map[[2]string]string{}
	type peering struct{ a, b, via string }
	var peerings []peering
	for _, r := range byType["aws_ec2_transit_gateway_peering_attachment"] {
		a, b := m.addr(str(r.Values, "transit_gateway_id")), m.addr(str(r.Values, "peer_transit_gateway_id"))
		if unknown(r.Values, "transit_gateway_id") || unknown(r.Values, "peer_transit_gateway_id") || m.lookup(a) == nil || m.lookup(b) == nil {
			m.note(r, "joins a transit gateway not known statically or not in the scanned code: the VPCs attached beyond it, which reach those of the other where both gateways route them, are not evaluated")
			continue
		}
		peerings = append(peerings, peering{a, b, r.Address}, peering{b, a, r.Address})
	}
	for changed := true; changed; {
		changed = false
		for _, p := range peerings {
			held := make([]string, 0, len(m.tgws[p.b]))
			for v := range m.tgws[p.b] {
				held = append(held, v)
			}
			slices.Sort(held)
			for _, v := range held {
				if m.tgws[p.a] == nil {
					m.tgws[p.a] = map[string]bool{}
				}
				if !m.tgws[p.a][v] {
					m.tgws[p.a][v] = true
					m.tgwVia[[2]string{p.a, v}] = p.via
					changed = true
				}
			}
		}
	}
}

// buildTGWTables reads the route tables of the transit gateways the
// project declares: the default table, which attachments are associated
// with and propagate to unless the gateway or the attachment turns that
// off, the tables of aws_ec2_transit_gateway_route_table, their
// associations, propagations and static routes. A gateway that is not in
// the scanned code, or anything of its tables not known statically,
// leaves it unread: every VPC attached to it reaches every other, and a
// note says so.
func (m *Model) buildTGWTables(byType map[string][]*tf.Resource) {
	m.tgwRead = map[string]*tgwTables{}
	unread := map[string]string{} // gateway → why
	tableTGW := map[string]string{}
	for _, r := range byType["aws_ec2_transit_gateway"] {
		m.tgwRead[r.Address] = &tgwTables{assoc: map[string]string{}, routes: map[string][]tgwRoute{}, vpcOf: map[string]string{}}
		// Its default table, which routes name by the gateway's
		// association_default_route_table_id (a stand-in, tf.TGWDefaults).
		tableTGW[tgwDefaultTable(r.Address)] = r.Address
		for _, k := range []string{"default_route_table_association", "default_route_table_propagation"} {
			if unknown(r.Values, k) {
				unread[r.Address] = k + " is not known statically"
			}
		}
	}
	for _, r := range byType["aws_ec2_transit_gateway_peering_attachment"] {
		a, b := m.addr(str(r.Values, "transit_gateway_id")), m.addr(str(r.Values, "peer_transit_gateway_id"))
		for _, pair := range [][2]string{{a, b}, {b, a}} {
			if m.tgwRead[pair[0]] != nil {
				unread[pair[0]] = fmt.Sprintf("peered with %s by %s, whose routes across it are not read: the VPCs attached to either gateway are read as reaching each other", orUnknown(pair[1]), r.Address)
			}
		}
	}
	for _, r := range byType["aws_ec2_transit_gateway_route_table"] {
		tgw := m.addr(str(r.Values, "transit_gateway_id"))
		tableTGW[r.Address] = tgw
		if unknown(r.Values, "transit_gateway_id") {
			for g := range m.tgwRead {
				unread[g] = r.Address + ": its transit gateway is not known statically"
			}
		}
	}
	cidrs := func(att string, t *tgwTables) []netip.Prefix {
		if v := m.vpcs[t.vpcOf[att]]; v != nil {
			return v.CIDRs
		}
		return nil
	}
	for _, r := range byType["aws_ec2_transit_gateway_vpc_attachment"] {
		tgw := m.addr(str(r.Values, "transit_gateway_id"))
		t := m.tgwRead[tgw]
		if t == nil {
			continue
		}
		gw := m.lookup(tgw)
		t.vpcOf[r.Address] = m.addr(str(r.Values, "vpc_id"))
		if v := m.vpcs[t.vpcOf[r.Address]]; v == nil || len(v.CIDRs) == 0 {
			unread[tgw] = r.Address + ": its VPC's range is not known"
		}
		def := tgwDefaultTable(tgw)
		for _, k := range [][2]string{{"default_route_table_association", "transit_gateway_default_route_table_association"}, {"default_route_table_propagation", "transit_gateway_default_route_table_propagation"}} {
			if unknown(r.Values, k[1]) {
				unread[tgw] = r.Address + ": " + k[1] + " is not known statically"
			}
			if gw == nil || str(gw.Values, k[0]) == "disable" || !boolean(r.Values, k[1], true) {
				continue
			}
			if k[1] == "transit_gateway_default_route_table_association" {
				t.assoc[r.Address] = def
			} else {
				for _, c := range cidrs(r.Address, t) {
					t.routes[def] = append(t.routes[def], tgwRoute{dest: c, att: r.Address})
				}
			}
		}
	}
	// The table of an association, propagation or route, and its
	// gateway's tables; nil when not read.
	tablesOf := func(r *tf.Resource, k string) (string, *tgwTables) {
		table := m.addr(str(r.Values, k))
		tgw, ok := tableTGW[table]
		if unknown(r.Values, k) || !ok {
			for g := range m.tgwRead {
				unread[g] = r.Address + ": its route table is not known statically or not in the scanned code"
			}
			return "", nil
		}
		return table, m.tgwRead[tgw]
	}
	for _, r := range byType["aws_ec2_transit_gateway_route_table_association"] {
		if table, t := tablesOf(r, "transit_gateway_route_table_id"); t != nil {
			t.assoc[m.addr(str(r.Values, "transit_gateway_attachment_id"))] = table
		}
	}
	for _, r := range byType["aws_ec2_transit_gateway_route_table_propagation"] {
		if table, t := tablesOf(r, "transit_gateway_route_table_id"); t != nil {
			att := m.addr(str(r.Values, "transit_gateway_attachment_id"))
			for _, c := range cidrs(att, t) {
				t.routes[table] = append(t.routes[table], tgwRoute{dest: c, att: att})
			}
		}
	}
	for _, r := range byType["aws_ec2_transit_gateway_route"] {
		table, t := tablesOf(r, "transit_gateway_route_table_id")
		if t == nil {
			continue
		}
		dest, err := netip.ParsePrefix(str(r.Values, "destination_cidr_block"))
		if unknown(r.Values, "destination_cidr_block") || unknown(r.Values, "transit_gateway_attachment_id") || err != nil {
			unread[tableTGW[table]] = r.Address + ": its destination or attachment is not known statically"
			continue
		}
		t.routes[table] = append(t.routes[table], tgwRoute{dest: dest.Masked(), att: m.addr(str(r.Values, "transit_gateway_attachment_id")), blackhole: boolean(r.Values, "blackhole", false), static: true})
	}
	for g, why := range unread {
		delete(m.tgwRead, g)
		if r := m.lookup(g); r != nil {
			m.note(r, "%s (%s)", tgwTablesUnread, why)
		}
	}
	for _, r := range byType["aws_ec2_transit_gateway_vpc_attachment"] {
		if tgw := m.addr(str(r.Values, "transit_gateway_id")); m.lookup(tgw) == nil {
			m.note(r, "%s (its transit gateway is not in the scanned code)", tgwTablesUnread)
		}
	}
	// Tables of a gateway outside the scanned code are not read either.
	for _, typ := range []string{"aws_ec2_transit_gateway_route_table", "aws_ec2_transit_gateway_route_table_association",
		"aws_ec2_transit_gateway_route_table_propagation", "aws_ec2_transit_gateway_route"} {
		for _, r := range byType[typ] {
			if m.tgwRead[tableTGW[r.Address]] == nil && m.tgwRead[tableTGW[m.addr(str(r.Values, "transit_gateway_route_table_id"))]] == nil {
				m.note(r, "%s", tgwTablesUnread)
			}
		}
	}
}

// tgwDefaultTable names the default route table of transit gateway tgw.
func tgwDefaultTable(tgw string) string {
	return tf.TGWDefaults(tgw)["association_default_route_table_id"]
}

// tgwJoins reports whether transit gateway tgw carries traffic from VPC a
// to VPC b and back: the table a's attachment is associated with routes
// some of b's range to b's attachment, and b's table a's range back. A
// gateway whose tables are not read joins every VPC attached to it.
func (m *Model) tgwJoins(tgw string, a, b *VPC) bool {
	att := m.tgws[tgw]
	if !att[a.Addr] || !att[b.Addr] {
		return false
	}
	t := m.tgwRead[tgw]
	if t == nil {
		return true
	}
	routes := func(from, to *VPC) bool {
		for fa, fv := range t.vpcOf {
			if fv != from.Addr {
				continue
			}
			table := t.routes[t.assoc[fa]]
			for _, r := range table {
				if r.blackhole || t.vpcOf[r.att] != to.Addr {
					continue
				}
				for _, c := range to.CIDRs {
					if !r.dest.Overlaps(c) {
						continue
					}
					region := r.dest
					if c.Bits() > region.Bits() {
						region = c
					}
					if !tgwOverridden(table, r, region, to.Addr, t.vpcOf) {
						return true
					}
				}
			}
		}
		return false
	}
	return routes(a, b) && routes(b, a)
}
