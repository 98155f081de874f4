package check

import (
	"net/netip"

	"moat/internal/check/tf"
)

// What AWS makes with every account and VPC, as a project adopts it: the
// default VPC and its subnets, and a VPC's default security group.

// defaultVPC returns the default VPC the project adopts, nil when none.
func (m *Model) defaultVPC() *VPC {
	for _, v := range m.VPCs {
		if v.Res != nil && v.Res.Type == "aws_default_vpc" {
			return v
		}
	}
	return nil
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
var defaultVPCRange = netip.MustParsePrefix("172.31.0.0/16")

// buildDefaultVPC reads the default VPC and its default subnets as AWS
// makes them: 172.31.0.0/16 with an internet gateway its main route table
// sends 0.0.0.0/0 to, and subnets that map public addresses on launch
// unless told otherwise (aws_default_subnet's map_public_ip_on_launch).
// The project adopts them; it does not make them, so what AWS made is
// what they are until it says otherwise.
func (m *Model) buildDefaultVPC(byType map[string][]*tf.Resource) {
	var v *VPC
	for _, r := range byType["aws_default_vpc"] {
		v = &VPC{Addr: r.Address, Res: r, CIDRs: []netip.Prefix{defaultVPCRange}}
		igw := r.Address + ":internet-gateway"
		m.igws[igw] = r.Address
		main := m.mainTable(v)
		main.Routes = append(main.Routes, Route{Dest: netip.MustParsePrefix("0.0.0.0/0"), Kind: "igw", Target: igw,
			Where: r.Address + " (the default VPC's route to its internet gateway)"})
		m.VPCs = append(m.VPCs, v)
		m.vpcs[r.Address] = v
	}
	for _, r := range byType["aws_default_subnet"] {
		s := &Subnet{Addr: r.Address, VPC: v, Res: r, MapPublicIP: boolean(r.Values, "map_public_ip_on_launch", true)}
		if c := str(r.Values, "cidr_block"); c != "" {
			if p, ok := m.prefix(r, "cidr_block", c); ok {
				s.CIDR = p
			}
		}
		m.Subnets = append(m.Subnets, s)
		m.subnets[r.Address] = s
	}
}

// takesDefaultSG reports whether AWS gives e its VPC's default security
// group when it names none: everything but load balancers (a network load
// balancer has none) and EKS clusters and node groups (EKS gives them the
// cluster group it makes).
func takesDefaultSG(e *Endpoint) bool {
	return e.Kind != "lb" && e.Kind != "eks-nodes" && e.Kind != "eks" && !e.Azure && !e.Managed
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
