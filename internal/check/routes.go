package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// Route tables, their routes and associations; what a route or association
// that cannot be evaluated may be.

func (m *Model) table(r *tf.Resource) *RouteTable {
	if t := m.tables[r.Address]; t != nil {
		return t
	}
	t := &RouteTable{Addr: r.Address, Res: r}
	m.tables[r.Address] = t
	m.Tables = append(m.Tables, t)
	return t
}

func (m *Model) route(r *tf.Resource, t *RouteTable, b map[string]any, where string) {
	dest := str(b, "cidr_block")
	if dest == "" {
		dest = str(b, "destination_cidr_block")
	}
	if dest == "" {
		dest = str(b, "ipv6_cidr_block")
	}
	if dest == "" {
		dest = str(b, "destination_ipv6_cidr_block")
	}
	var dests []netip.Prefix
	var bits []int
	assumed := ""
	switch {
	case dest != "":
		p, ok := m.prefix(r, "route destination", dest)
		if !ok {
			return
		}
		dests = []netip.Prefix{p}
	case unknown(b, "cidr_block") || unknown(b, "destination_cidr_block") || unknown(b, "ipv6_cidr_block") || unknown(b, "destination_ipv6_cidr_block"):
		dests = allInternet
		assumed = "destination not known statically: assumed to be every address"
		for _, k := range []string{"cidr_block", "destination_cidr_block", "ipv6_cidr_block", "destination_ipv6_cidr_block"} {
			if unknown(b, k) {
				if bs, ok := unknownBits(b, k); ok && len(bs) > 0 {
					bits = bs
				}
			}
		}
		m.note(r, "%s: route %s", where, assumed)
	default:
		return
	}
	for _, p := range dests {
		m.addRoute(r, t, b, Route{Dest: p, Where: where, Kind: "unknown", Assumed: assumed, DestUnknown: bits != nil || assumed != "", DestBits: bits})
	}
}

// routeTargets are the attributes of a route that name its target, with
// the kind of target each names and, for a value not known statically,
// what the target is assumed to be: the worst case of its kind. Only
// gateway_id may name an internet gateway; an unknown one is read as the
// VPC's (kind "unknown", no target), unless it can only be a VPN gateway. Every other kind keeps its kind with
// no target: a NAT or egress-only gateway admits nothing from outside
// whichever it is, a peering or transit gateway is any that joins the VPCs
// concerned.
var routeTargets = []struct{ attr, kind, assumed string }{
	{"gateway_id", "igw", "the VPC's internet gateway"},
	{"egress_only_gateway_id", "eigw", "any egress-only internet gateway"},
	{"nat_gateway_id", "nat", "any NAT gateway"},
	{"vpc_peering_connection_id", "pcx", "any peering connection of the VPC"},
	{"transit_gateway_id", "tgw", "any transit gateway the VPC is attached to"},
	{"vpc_endpoint_id", "vpce", "any VPC endpoint"},
	{"network_interface_id", "eni", "any network interface"},
	{"instance_id", "instance", "any instance"},
	{"local_gateway_id", "lgw", "any local gateway"},
}

func (m *Model) addRoute(r *tf.Resource, t *RouteTable, b map[string]any, rt Route) {
	for _, k := range routeTargets {
		if v := str(b, k.attr); v != "" {
			rt.Kind, rt.Target = k.kind, m.addr(v)
			break
		}
		if unknown(b, k.attr) {
			rt.Kind, rt.Target = k.kind, ""
			if fw := m.lookup(m.ref(b, k.attr)); k.kind == "vpce" && fw != nil && fw.Type == "aws_networkfirewall_firewall" {
				// One of the firewall's endpoints (which AZ's is what is
				// not known): it alone is read.
				rt.Target = fw.Address
				break
			}
			if k.kind == "igw" {
				if gws, only := m.vpnGateways(unknownFrom(b, k.attr)); only {
					// Only VPN gateways: a route to each, as to one named.
					why := fmt.Sprintf("target not known statically (%s): assumed to be any of %s", k.attr, strings.Join(gws, ", "))
					rt.Assumed = strings.TrimPrefix(rt.Assumed+"; "+why, "; ")
					m.note(r, "%s: route %s", rt.Where, why)
					for _, gw := range gws {
						rt.Target = gw
						t.Routes = append(t.Routes, rt)
					}
					return
				}
				rt.Kind = "unknown"
			}
			why := fmt.Sprintf("target not known statically (%s): assumed to be %s", k.attr, k.assumed)
			rt.Assumed = strings.TrimPrefix(rt.Assumed+"; "+why, "; ")
			m.note(r, "%s: route %s", rt.Where, why)
			break
		}
	}
	if rt.Kind == "igw" {
		if t := m.lookup(rt.Target); t != nil && t.Type == "aws_vpc_endpoint" {
			rt.Kind = "vpce"
		} else if rt.Target == "local" {
			rt.Kind = "local"
		} else if m.igws[rt.Target] == igwVPCUnknown {
			why := fmt.Sprintf("internet gateway %s: its VPC not known statically (vpc_id): assumed to be this table's, as AWS routes only to a gateway attached to it", rt.Target)
			rt.Assumed = strings.TrimPrefix(rt.Assumed+"; "+why, "; ")
		}
	}
	if boolean(b, "blackhole", false) {
		rt.Kind = "blackhole"
	}
	t.Routes = append(t.Routes, rt)
}

func (m *Model) buildRoutes(byType map[string][]*tf.Resource) {
	var unknownTable []*tf.Resource
	for _, typ := range []string{"aws_route_table", "aws_default_route_table"} {
		for _, r := range byType[typ] {
			t := m.table(r)
			vpc := str(r.Values, "vpc_id")
			if typ == "aws_default_route_table" {
				id := str(r.Values, "default_route_table_id")
				vpc, _, _ = strings.Cut(id, ":")
				m.byRef[id] = r
			}
			t.VPC = m.vpcs[m.addr(vpc)]
			if typ == "aws_default_route_table" && t.VPC != nil {
				t.VPC.Main = t
			}
			for i, b := range blocks(r.Values, "route") {
				m.route(r, t, b, fmt.Sprintf("%s route[%d]", r.Address, i))
			}
			// Routes not known statically (route = var.routes without a
			// value, or such an element): one may be a default route to
			// the VPC's internet gateway, read as one.
			if blocksUnknown(r.Values, "route") {
				m.route(r, t, map[string]any{"cidr_block": tf.Unknown{}, "gateway_id": tf.Unknown{}}, r.Address+" route (not known statically)")
			}
		}
	}
	for _, r := range byType["aws_route"] {
		ref := str(r.Values, "route_table_id")
		tr := m.lookup(ref)
		if tr == nil {
			if v := m.vpcs[strings.TrimSuffix(ref, ":main-route-table")]; v != nil && strings.HasSuffix(ref, ":main-route-table") {
				// A route added to the VPC's implicit main table.
				m.route(r, m.mainTable(v), r.Values, r.Address)
				continue
			}
			if unknown(r.Values, "route_table_id") {
				unknownTable = append(unknownTable, r)
				continue
			}
			m.note(r, "route table %q is not in the project", ref)
			continue
		}
		m.route(r, m.table(tr), r.Values, r.Address)
	}
	for _, r := range unknownTable {
		// The most permissive reading: the route is in every table its
		// expression can name (every instance of the route tables it
		// references), or in every table when it names none.
		ts, from := m.allTables(), "every route table"
		if named := m.tablesFrom(unknownFrom(r.Values, "route_table_id")); named != nil {
			ts, from = named, "every table of "+strings.Join(unknownFrom(r.Values, "route_table_id"), ", ")
		}
		m.note(r, "route table not known statically: the route is assumed to be in %s", from)
		for i, t := range ts {
			before, notes := len(t.Routes), len(m.Notes)
			m.route(r, t, r.Values, r.Address)
			if i > 0 {
				m.Notes = m.Notes[:notes] // noted for the first table
			}
			for i := before; i < len(t.Routes); i++ {
				t.Routes[i].Assumed = strings.TrimPrefix(t.Routes[i].Assumed+"; route table not known statically: assumed to be in "+from, "; ")
			}
		}
	}
	for _, r := range byType["aws_route_table_association"] {
		m.associate(r)
	}
	for _, r := range byType["aws_main_route_table_association"] {
		m.associateMain(r)
	}
}

// associateMain reads an aws_main_route_table_association. A VPC not known
// statically is any of the project's; a table not known statically is any
// of those its expression references, or any of the VPC's when it
// references none: the main table of such a VPC may be such a table.
func (m *Model) associateMain(r *tf.Resource) {
	v := m.vpcs[m.addr(str(r.Values, "vpc_id"))]
	vs := []*VPC{v}
	switch {
	case v != nil:
	case unknown(r.Values, "vpc_id"):
		vs = m.VPCs
		m.note(r, "VPC not known statically: the association is assumed to name any VPC of the project")
	default:
		return
	}
	ts, anyTable, ok := m.tablesNamed(r, "route_table_id")
	switch {
	case !ok:
		return
	case unknown(r.Values, "route_table_id") && anyTable:
		m.note(r, "main route table not known statically: assumed to be any route table of the VPC")
	case unknown(r.Values, "route_table_id"):
		m.note(r, "main route table not known statically: assumed to be any of %s", strings.Join(unknownFrom(r.Values, "route_table_id"), ", "))
	case v != nil:
		v.Main = ts[0]
		return
	}
	for _, v := range vs {
		v.AnyMain = v.AnyMain || anyTable
		v.MaybeMain = append(v.MaybeMain, ts...)
	}
}

// mainTable returns v's main table, made when it is the implicit one.
func (m *Model) mainTable(v *VPC) *RouteTable {
	if v.Main == nil {
		addr := tf.VPCDefaults(v.Addr)["main_route_table_id"]
		v.Main = &RouteTable{Addr: addr, VPC: v}
		m.tables[addr] = v.Main
		m.Tables = append(m.Tables, v.Main)
	}
	return v.Main
}

// allTables returns every route table, the VPCs' implicit main tables
// included (made here): what a route whose table is not known statically
// may be added to.
func (m *Model) allTables() []*RouteTable {
	for _, v := range m.VPCs {
		m.mainTable(v)
	}
	return m.Tables
}

// tablesFrom returns every route table that an instance of one of the
// resources from declares (see tf.Unknown.From): the tables an unknown
// route_table_id can name. Nil when from is empty or names a resource
// other than a route table, whose attributes may name any table.
func (m *Model) tablesFrom(from []string) []*RouteTable {
	return instancesOf(m, from, m.Tables, func(t *RouteTable) *tf.Resource { return t.Res })
}

// tablesNamed returns the route tables attribute k of r names: the one it
// names, or, when it is not known statically, those its expression
// references (tablesFrom), or none with anyTable set when it references
// none (it may then be any table). ok is false when it names a table
// outside the project, or none.
func (m *Model) tablesNamed(r *tf.Resource, k string) (ts []*RouteTable, anyTable, ok bool) {
	if t := m.tables[m.addr(str(r.Values, k))]; t != nil {
		return []*RouteTable{t}, false, true
	}
	if !unknown(r.Values, k) {
		return nil, false, false
	}
	ts = m.tablesFrom(unknownFrom(r.Values, k))
	return ts, ts == nil, true
}

// subnetsFrom is tablesFrom for subnets.
func (m *Model) subnetsFrom(from []string) []*Subnet {
	found, rest := m.defaultSubnetsFrom(from)
	if len(found) > 0 && m.defaultSubnetsPrivate(found[0].VPC) {
		// A lookup of the default subnets may find those the project
		// manages.
		for _, s := range m.Subnets {
			if s.Res != nil && s.Res.Type == "aws_default_subnet" && !slices.Contains(found, s) {
				found = append(found, s)
			}
		}
	}
	if len(rest) == 0 {
		return found
	}
	out := instancesOf(m, rest, m.Subnets, func(s *Subnet) *tf.Resource { return s.Res })
	if out == nil {
		return nil
	}
	return append(out, found...)
}

// instancesOf returns the objects of all that instances of the resources
// from declare; nil when there are none or from also names a resource
// that declares none of them.
func instancesOf[T any](m *Model, from []string, all []T, res func(T) *tf.Resource) []T {
	if len(from) == 0 {
		return nil
	}
	named := map[string]bool{}
	for _, a := range from {
		named[a] = false
	}
	var out []T
	for _, x := range all {
		if r := res(x); r != nil {
			if _, ok := named[resourceOf(r)]; ok {
				out = append(out, x)
				named[resourceOf(r)] = true
			}
		}
	}
	for a, found := range named {
		if !found && m.firstOf(a) != nil {
			return nil
		}
	}
	return out
}

// resourceOf returns the address of r without its instance key.
func resourceOf(r *tf.Resource) string {
	if r.Module != "" {
		return r.Module + "." + r.Type + "." + r.Name
	}
	return r.Type + "." + r.Name
}

// firstOf returns an instance of the resource at address a (without an
// instance key), nil when the project declares none.
func (m *Model) firstOf(a string) *tf.Resource {
	for _, r := range m.Resources {
		if resourceOf(r) == a {
			return r
		}
	}
	return nil
}

// associate reads an aws_route_table_association. A subnet or table that
// is not known statically is any of those its expression references, or
// any at all when it references none: such a subnet may be governed by
// the table, such a table may govern the subnet.
func (m *Model) associate(r *tf.Resource) {
	s := m.subnets[m.addr(str(r.Values, "subnet_id"))]
	var ss []*Subnet
	anySubnet := false
	switch {
	case s != nil:
		ss = []*Subnet{s}
	case unknown(r.Values, "subnet_id"):
		ss = m.subnetsFrom(unknownFrom(r.Values, "subnet_id"))
		anySubnet = ss == nil
	default:
		return
	}
	ts, anyTable, ok := m.tablesNamed(r, "route_table_id")
	if !ok {
		return
	}
	switch {
	case s != nil && !unknown(r.Values, "route_table_id"):
		s.Table = ts[0]
	case anySubnet && anyTable:
		for _, t := range m.Tables {
			t.AnySubnet = true
		}
	case anySubnet:
		for _, t := range ts {
			t.AnySubnet = true
		}
	case anyTable:
		for _, s := range ss {
			s.AnyTable = true
		}
	default:
		for _, s := range ss {
			s.Maybe = append(s.Maybe, ts...)
		}
	}
}

// tablesOf returns the route tables that may govern s: the one TableOf
// names and, where an association could not be evaluated, every table of
// its VPC that such an association may put it under (those it references,
// Maybe, or any: AnyTable, AnySubnet), and for a subnet under the main
// table, the tables a main table association may name (MaybeMain,
// AnyMain).
func (m *Model) tablesOf(s *Subnet) []*RouteTable {
	ts := []*RouteTable{s.TableOf()}
	if m.anySubnet == nil {
		// Built once: most tables have known associations, and scanning
		// every table for every subnet is quadratic.
		m.anySubnet = map[*VPC][]*RouteTable{}
		for _, t := range m.Tables {
			if t.AnySubnet {
				m.anySubnet[t.VPC] = append(m.anySubnet[t.VPC], t)
			}
		}
	}
	maybe := s.Maybe
	anyMain := false
	if s.Table == nil && s.VPC != nil {
		// Governed by the main table, which may be another.
		maybe = slices.Concat(maybe, s.VPC.MaybeMain)
		anyMain = s.VPC.AnyMain
	}
	for _, t := range maybe {
		if !slices.Contains(ts, t) && (t.VPC == s.VPC || t.VPC == nil) {
			ts = append(ts, t)
		}
	}
	if !s.AnyTable && !anyMain && len(m.anySubnet[s.VPC]) == 0 && len(m.anySubnet[nil]) == 0 {
		return ts
	}
	for _, t := range m.Tables {
		if !slices.Contains(ts, t) && (t.VPC == s.VPC || t.VPC == nil) && (s.AnyTable || anyMain || t.AnySubnet) {
			ts = append(ts, t)
		}
	}
	return ts
}

// TableOf returns the route table that governs s: its explicit association,
// else its VPC's main table (nil: the implicit main table, local route only).
func (s *Subnet) TableOf() *RouteTable {
	if s.Table != nil {
		return s.Table
	}
	if s.VPC != nil {
		return s.VPC.Main
	}
	return nil
}
