package check

import (
	"net/netip"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// What AWS makes with every account and VPC, as a project adopts it: the
// default VPC and its subnets, and a VPC's default security group.

// defaultVPC returns the default VPC the project adopts or looks up in
// the provider configuration (region, account) of the resource at addr,
// nil when none. One whose configuration is not known is in the one
// default VPC of the project, if it has only one.
func (m *Model) defaultVPC(addr string) *VPC {
	c, ok := m.configs[addr]
	if !ok && len(m.defaultVPCs) == 1 {
		for _, v := range m.defaultVPCs {
			return v
		}
	}
	return m.defaultVPCs[c]
}

// mapsPublicIP says why instances launched in s get a public address
// (map_public_ip_on_launch), or "" when they do not. A default subnet that
// does not set it maps them as AWS made it.
func (s *Subnet) mapsPublicIP() string {
	switch {
	case !s.MapPublicIP:
		return ""
	case s.Res != nil && s.Res.Type == "aws_default_subnet" && !has(s.Res.Values, "map_public_ip_on_launch"):
		return "a default subnet, which maps a public address to every instance unless map_public_ip_on_launch = false"
	}
	return "which has map_public_ip_on_launch = true"
}

// defaultVPCRange is the range of every region's default VPC.
var defaultVPCRange = netip.MustParsePrefix(tf.DefaultVPCRange)

// buildDefaultVPC reads the default VPC and its default subnets as AWS
// makes them: 172.31.0.0/16 with an internet gateway its main route table
// sends 0.0.0.0/0 to, and subnets that map public addresses on launch
// unless told otherwise (aws_default_subnet's map_public_ip_on_launch).
// The project adopts them (aws_default_vpc, aws_default_subnet) or looks
// them up (data sources: tf.DefaultVPCOf, tf.DefaultSubnetsOf); it does
// not make them, so what AWS made is what they are until it says
// otherwise. Each provider configuration (m.configs: a region, an
// account) has its own default VPC: the one the project adopts there, if
// it does, which lookups there are too, in whichever module.
func (m *Model) buildDefaultVPC(byType map[string][]*tf.Resource) {
	m.defaultVPCs = map[string]*VPC{}
	for _, r := range byType["aws_default_vpc"] {
		m.defaultVPCs[m.configs[r.Address]] = m.adoptDefaultVPC(r)
	}
	for _, r := range byType["aws_default_subnet"] {
		s := &Subnet{Addr: r.Address, VPC: m.defaultVPC(r.Address), Res: r, MapPublicIP: boolean(r.Values, "map_public_ip_on_launch", true)}
		if c := str(r.Values, "cidr_block"); c != "" {
			if p, ok := m.prefix(r, "cidr_block", c); ok {
				s.CIDR = p
			}
		}
		m.Subnets = append(m.Subnets, s)
		m.subnets[r.Address] = s
	}
	ids, lookups := defaultLookups(m.Resources)
	// lookedUp returns the default VPC of the lookup at l's configuration,
	// made when the project neither adopts it nor looked it up before:
	// named by a lookup of it, or, where only lookups of its subnets name
	// it, as what it is.
	lookedUp := func(l string) *VPC {
		c := m.configs[l]
		if v := m.defaultVPCs[c]; v != nil {
			return v
		}
		addr := "the default VPC"
		for _, id := range ids {
			if l, _ := tf.DefaultVPCLookup(id); strings.Contains(l, "data.aws_vpc.") && m.configs[l] == c {
				addr = l
				break
			}
		}
		if addr == "the default VPC" && len(m.defaultVPCs) > 0 {
			addr += " of " + c
		}
		v := m.adoptDefaultVPC(&tf.Resource{Address: addr, Type: "aws_default_vpc", Values: map[string]any{}})
		m.defaultVPCs[c] = v
		return v
	}
	for _, id := range ids {
		l, _ := tf.DefaultVPCLookup(id)
		v := lookedUp(l)
		m.vpcs[id] = v
		m.tables[tf.VPCDefaults(id)["main_route_table_id"]] = m.mainTable(v)
	}
	for _, l := range lookups {
		s := &Subnet{Addr: l, VPC: lookedUp(l), CIDR: defaultVPCRange, MapPublicIP: true,
			Res: &tf.Resource{Address: l, Type: "aws_default_subnet", Values: map[string]any{}}}
		m.Subnets = append(m.Subnets, s)
		m.subnets[tf.DefaultSubnetsOf(l)] = s
	}
}

// adoptDefaultVPC makes the default VPC that r adopts or looks up.
func (m *Model) adoptDefaultVPC(r *tf.Resource) *VPC {
	v := &VPC{Addr: r.Address, Res: r, CIDRs: []netip.Prefix{defaultVPCRange}}
	igw := r.Address + ":internet-gateway"
	m.igws[igw] = r.Address
	main := m.mainTable(v)
	main.Routes = append(main.Routes, Route{Dest: netip.MustParsePrefix("0.0.0.0/0"), Kind: "igw", Target: igw,
		Where: r.Address + " (the default VPC's route to its internet gateway)"})
	m.VPCs = append(m.VPCs, v)
	m.vpcs[r.Address] = v
	return v
}

// defaultLookups returns, sorted, the IDs of the default VPC (tf.DefaultVPCOf)
// and the lookups of its subnets (tf.DefaultSubnetsOf, by address) that
// the values of res name.
func defaultLookups(res []*tf.Resource) (ids, lookups []string) {
	seen := map[string]bool{}
	add := func(s string) {
		if seen[s] {
			return
		}
		seen[s] = true
		if _, ok := tf.DefaultVPCLookup(s); ok {
			ids = append(ids, s)
		} else if l, ok := tf.DefaultSubnetsLookup(s); ok {
			lookups = append(lookups, l)
		}
	}
	var visit func(x any)
	visit = func(x any) {
		switch x := x.(type) {
		case string:
			add(x)
		case tf.Unknown:
			for _, f := range x.From {
				add(f)
			}
		case []any:
			for _, y := range x {
				visit(y)
			}
		}
	}
	for _, r := range res {
		eachKey(r.Values, func(o map[string]any, k string) { visit(o[k]) })
	}
	slices.Sort(ids)
	slices.Sort(lookups)
	return ids, lookups
}

// defaultSubnetsFrom splits from (tf.Unknown.From) into the subnets that
// lookups of the default VPC's subnets find and the rest.
func (m *Model) defaultSubnetsFrom(from []string) (found []*Subnet, rest []string) {
	for _, f := range from {
		if s := m.subnets[f]; s != nil {
			if _, ok := tf.DefaultSubnetsLookup(f); ok {
				found = append(found, s)
				continue
			}
		}
		rest = append(rest, f)
	}
	return found, rest
}

// defaultSubnet returns the subnet an endpoint at addr that names none is
// launched in: a default subnet of the default VPC of its provider
// configuration, as AWS made it, when the project adopts or looks up that
// VPC; nil otherwise, or when the project keeps the default subnet of the
// endpoint's zone from mapping public addresses. maybe says it may land in
// such a subnet instead: it names no zone, or its zone's default subnet
// maps public addresses as a value not known statically says.
func (m *Model) defaultSubnet(addr string) (s *Subnet, maybe bool) {
	v := m.defaultVPC(addr)
	if v == nil {
		return nil, false
	}
	if m.defaultSubnetsPrivate(v) {
		az := ""
		if r := m.byRef[addr]; r != nil {
			az = str(r.Values, "availability_zone")
		}
		switch {
		case m.defaultAZs[az] == "off":
			return nil, false
		case az == "" || m.defaultAZs[az] == "unknown":
			maybe = true
		}
	}
	sub := v.Addr + ":default-subnet"
	if s := m.subnets[sub]; s != nil {
		return s, maybe
	}
	s = &Subnet{Addr: sub, VPC: v, CIDR: defaultVPCRange, MapPublicIP: true,
		Res: &tf.Resource{Address: sub, Type: "aws_default_subnet", Values: map[string]any{}}}
	m.Subnets = append(m.Subnets, s)
	m.subnets[sub] = s
	return s, maybe
}

// placeUnplaced puts what names no subnet (an instance, a data store that
// names no subnet group), which AWS launches in a default subnet of the
// default VPC, in that subnet when the project adopts or looks up the
// default VPC (defaultSubnet): its path is then the VPC's, not assumed,
// unless it may land in a default subnet the project keeps from mapping
// public addresses instead.
func (m *Model) placeUnplaced() {
	for _, e := range m.Endpoints {
		if len(e.Subnets) > 0 || len(e.SubnetsMaybe) > 0 || e.SubnetsAny || e.Unplaced != inDefaultSubnets && e.Unplaced != noSubnetNamed {
			continue
		}
		switch s, maybe := m.defaultSubnet(e.Addr); {
		case s == nil:
		case maybe:
			e.SubnetsMaybe, e.Unplaced = []*Subnet{s}, ""
			e.SubnetsUnknown = "no subnet is named: it is launched in a default subnet of " + s.VPC.Addr + ", which may be one the project keeps from mapping public addresses or, as assumed, one as AWS made it"
		default:
			e.Subnets, e.Unplaced = []*Subnet{s}, ""
		}
	}
}

// takesDefaultSG reports whether AWS gives e its VPC's default security
// group when it names none: everything but EKS clusters and node groups
// (EKS gives them the cluster group it makes) and load balancers other
// than application load balancers (a network or gateway load balancer has
// none) and classic ones in a VPC other than the default one (in the
// default VPC ELB gives a classic one a group of its own, which admits its
// listeners' ports: read as none, as where its VPC is not known); one
// whose type is not known statically is read as having none.
func takesDefaultSG(e *Endpoint) bool {
	if e.Kind == "lb" {
		r := e.Res
		if r != nil && r.Type == "aws_elb" {
			return inOtherVPC(e)
		}
		if r == nil || r.Type != "aws_lb" && r.Type != "aws_alb" || unknown(r.Values, "load_balancer_type") {
			return false
		}
		t := str(r.Values, "load_balancer_type")
		return t == "" || t == "application"
	}
	return e.Kind != "eks-nodes" && e.Kind != "eks" && !e.Azure && !e.Managed
}

// inOtherVPC reports whether every subnet e may be in is known, of a VPC
// the code declares that is not a default VPC.
func inOtherVPC(e *Endpoint) bool {
	if len(e.Subnets) == 0 || len(e.SubnetsMaybe) > 0 || e.SubnetsAny {
		return false
	}
	for _, s := range e.Subnets {
		if s.VPC == nil || s.VPC.Res == nil || s.VPC.Res.Type != "aws_vpc" {
			return false
		}
	}
	return true
}

// noGroupHop says why a load balancer that names no security group and
// takes no default group (takesDefaultSG) admits what reaches it.
func noGroupHop(e *Endpoint) string {
	if e.Res != nil && e.Res.Type == "aws_elb" {
		return "no security group named: a classic load balancer in the default VPC, or a VPC not known, whose group ELB makes admits every address on its listener ports"
	}
	return "no security group (network load balancer)"
}

// groupsOf returns the security groups e is a member of: those it names,
// or, where it names none and AWS gives it its VPC's default group
// (takesDefaultSG), that group of vpc (its subnet's VPC): the project's
// aws_default_security_group, or else the one AWS makes. Nil when neither
// is known (vpc nil, or a VPC the code does not declare).
func (m *Model) groupsOf(e *Endpoint, vpc *VPC) []*SG {
	if len(e.SGs) > 0 || e.SGsUnknown != "" || !takesDefaultSG(e) || vpc == nil {
		return e.SGs
	}
	if g := m.defaultSG(vpc); g != nil {
		return []*SG{g}
	}
	if g := m.sgs[tf.VPCDefaults(vpc.Addr)["default_security_group_id"]]; g != nil {
		return []*SG{g}
	}
	return nil
}

// defaultSG returns the project's aws_default_security_group of vpc, nil
// when it has none (or vpc is nil).
func (m *Model) defaultSG(vpc *VPC) *SG {
	for _, g := range m.SGs {
		if vpc != nil && g.VPC == vpc && g.Res != nil && g.Res.Type == "aws_default_security_group" {
			return g
		}
	}
	return nil
}

// defaultSubnetsPrivate reports whether the project manages a default
// subnet that maps no public addresses in the provider configuration whose
// default VPC is v; with v nil (not known which), in every configuration
// whose default VPC the project adopts or looks up.
func (m *Model) defaultSubnetsPrivate(v *VPC) bool {
	if v != nil {
		for c, d := range m.defaultVPCs {
			if d == v {
				return m.privateDefaults[c]
			}
		}
		return false
	}
	if len(m.privateDefaults) == 0 {
		return false
	}
	for c := range m.defaultVPCs {
		if !m.privateDefaults[c] {
			return false
		}
	}
	return true
}
