package check

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

func (m *Model) naclRule(r *tf.Resource, b map[string]any, where string) (NACLRule, bool) {
	no := num(b, "rule_no", num(b, "rule_number", 0))
	action := str(b, "action")
	if action == "" {
		action = str(b, "rule_action")
	}
	rule := NACLRule{No: no, Allow: strings.EqualFold(action, "allow"), Proto: protoName(str(b, "protocol")),
		From: num(b, "from_port", 0), To: num(b, "to_port", 65535), Where: where}
	if rule.Proto == "all" {
		rule.From, rule.To = 0, 65535
	}
	if unknown(b, "action") || unknown(b, "rule_action") {
		rule.Allow, rule.Assumed = true, "action not known statically: assumed to allow"
		m.note(r, "%s: %s", where, rule.Assumed)
	}
	if unknown(b, "rule_no") || unknown(b, "rule_number") {
		// Fail closed: an allow is read as deciding before every deny, a
		// deny after every allow.
		rule.No = 32767
		if !rule.Allow {
			rule.Late = "its rule number is not known statically, so it is read as deciding after every allow"
			m.note(r, "%s: rule number not known statically: the deny is assumed to decide after every allow", where)
		}
		if rule.Allow {
			rule.No = 0
			const why = "rule number not known statically: assumed to decide before every deny"
			rule.Assumed = strings.TrimPrefix(rule.Assumed+"; "+why, "; ")
			m.note(r, "%s: %s", where, why)
		}
	}
	c := str(b, "cidr_block")
	if c == "" {
		c = str(b, "ipv6_cidr_block")
	}
	if c == "" && (unknown(b, "cidr_block") || unknown(b, "ipv6_cidr_block")) {
		if !rule.Allow {
			// A deny whose range is unknown is read as denying nothing.
			return rule, false
		}
		rule.CIDR = netip.MustParsePrefix("0.0.0.0/0")
		why := "range not known statically: assumed to be every address"
		if bits, ok := unknownBits(b, "cidr_block"); ok && len(bits) > 0 {
			rule.Bounded = bits
			why = fmt.Sprintf("range not known statically but for its length (%s): assumed to be anywhere", boundedText(bits))
		} else if bits, ok := unknownBits(b, "ipv6_cidr_block"); ok && len(bits) > 0 {
			rule.Bounded = bits
			why = fmt.Sprintf("range not known statically but for its length (%s): assumed to be anywhere", boundedText(bits))
		}
		rule.Assumed = strings.TrimPrefix(rule.Assumed+"; "+why, "; ")
		m.note(r, "%s: %s", where, why)
		return rule, true
	}
	p, ok := m.prefix(r, "cidr_block", c)
	if !ok {
		return rule, false
	}
	rule.CIDR = p
	return rule, true
}

func (m *Model) buildNACLs(byType map[string][]*tf.Resource) {
	for _, typ := range []string{"aws_network_acl", "aws_default_network_acl"} {
		for _, r := range byType[typ] {
			n := &NACL{Addr: r.Address, Res: r}
			vpc := str(r.Values, "vpc_id")
			if typ == "aws_default_network_acl" {
				id := str(r.Values, "default_network_acl_id")
				vpc, _, _ = strings.Cut(id, ":")
			}
			n.VPC = m.vpcs[m.addr(vpc)]
			if typ == "aws_default_network_acl" && n.VPC != nil {
				n.VPC.NACL = n
			}
			if blocksUnknown(r.Values, "ingress") || blocksUnknown(r.Values, "egress") {
				n.Assumed = "entries not known statically: assumed to allow everything"
				m.note(r, "network ACL %s", n.Assumed)
			}
			for i, b := range blocks(r.Values, "ingress") {
				if rule, ok := m.naclRule(r, b, fmt.Sprintf("%s ingress[%d]", r.Address, i)); ok {
					n.Ingress = append(n.Ingress, rule)
				}
			}
			for i, b := range blocks(r.Values, "egress") {
				if rule, ok := m.naclRule(r, b, fmt.Sprintf("%s egress[%d]", r.Address, i)); ok {
					n.Egress = append(n.Egress, rule)
				}
			}
			for _, s := range strList(r.Values, "subnet_ids") {
				if sub := m.subnets[m.addr(s)]; sub != nil {
					sub.NACL = n
				}
			}
			m.naclMaySubnets(r, n)
			m.NACLs = append(m.NACLs, n)
			m.nacls[r.Address] = n
		}
	}
	for _, r := range byType["aws_network_acl_rule"] {
		ns, one := m.naclsOf(r)
		if len(ns) == 0 {
			continue
		}
		rule, ok := m.naclRule(r, r.Values, r.Address)
		if !ok {
			continue
		}
		if !one {
			// Not proven to be one ACL: an allow is read as each one's
			// (it may admit through any), a deny as none's (it may deny
			// in none of them).
			if !rule.Allow {
				m.note(r, "network ACL not known statically: the deny is assumed to be in none")
				continue
			}
			const why = "network ACL not known statically: the allow is assumed to be in each it may be"
			rule.Assumed = strings.TrimPrefix(rule.Assumed+"; "+why, "; ")
		}
		in, out := !boolean(r.Values, "egress", false), boolean(r.Values, "egress", false)
		if unknown(r.Values, "egress") {
			// Either direction: an allow is read as in both (it may admit
			// either way), a deny as in neither (it may deny neither).
			if !rule.Allow {
				m.note(r, "direction not known statically: the deny is assumed to be in neither direction")
				continue
			}
			const why = "direction not known statically: the allow is assumed to be in both directions"
			rule.Assumed = strings.TrimPrefix(rule.Assumed+"; "+why, "; ")
			m.note(r, "%s", why)
			in, out = true, true
		}
		for _, n := range ns {
			if out {
				n.Egress = append(n.Egress, rule)
			}
			if in {
				n.Ingress = append(n.Ingress, rule)
			}
		}
	}
	for _, r := range byType["aws_network_acl_association"] {
		n := m.nacls[m.addr(str(r.Values, "network_acl_id"))]
		if s := m.subnets[m.addr(str(r.Values, "subnet_id"))]; s != nil && n != nil {
			s.NACL = n
			continue
		}
		m.naclAssociationUnknown(r, n)
	}
	for _, n := range m.NACLs {
		sort.SliceStable(n.Ingress, func(i, j int) bool { return n.Ingress[i].No < n.Ingress[j].No })
		sort.SliceStable(n.Egress, func(i, j int) bool { return n.Egress[i].No < n.Egress[j].No })
	}
}

// naclsOf returns the network ACLs an aws_network_acl_rule may be an entry
// of: the one it names; when its network_acl_id is not known statically,
// the instances of the ACLs its expression references (tf.Unknown.From),
// or every ACL of the project when it references none (it may then name
// one outside the project), noted. one reports that the rule is proven to
// be the entry of the one ACL returned.
func (m *Model) naclsOf(r *tf.Resource) (ns []*NACL, one bool) {
	if n := m.nacls[m.addr(str(r.Values, "network_acl_id"))]; n != nil {
		return []*NACL{n}, true
	}
	if !unknown(r.Values, "network_acl_id") {
		m.note(r, "network ACL %q is not in the project", str(r.Values, "network_acl_id"))
		return nil, false
	}
	from := unknownFrom(r.Values, "network_acl_id")
	ns = instancesOf(m, from, m.NACLs, func(n *NACL) *tf.Resource { return n.Res })
	if ns == nil {
		m.note(r, "network ACL not known statically: assumed to be any network ACL of the project")
		return m.NACLs, false
	}
	m.note(r, "network ACL not known statically: assumed to be %s", strings.Join(from, ", "))
	return ns, len(ns) == 1
}

// naclMaySubnets reads a subnet of n's subnet_ids that is not known
// statically: any of those its expression references, or any subnet of
// n's VPC when it references none. Each may be under n rather than its
// own ACL, and is given n as one it may be under; noted.
func (m *Model) naclMaySubnets(r *tf.Resource, n *NACL) {
	unk, from := unknownRefs(r.Values, "subnet_ids")
	if !unk {
		return
	}
	ss, what := m.subnetsFrom(from), "any of "+strings.Join(from, ", ")
	if ss == nil {
		what = "any subnet of " + vpcName(n.VPC)
		for _, s := range m.Subnets {
			if n.VPC == nil || s.VPC == n.VPC {
				ss = append(ss, s)
			}
		}
	}
	n.SubnetsUnknown = "subnet_ids has a subnet not known statically: assumed to be " + what
	m.note(r, "%s", n.SubnetsUnknown)
	for _, s := range ss {
		s.MaybeACLs = append(s.MaybeACLs, n)
	}
}

// naclAssociationUnknown reads an aws_network_acl_association whose
// subnet or ACL (n, nil when not in the project) is not known statically:
// each subnet it may name may be under each ACL it may name (those the
// expressions reference, or else any of the project), rather than its own
// ACL; noted. Reach filters such a subnet by whichever admits more, so
// the association can widen what is reached, never narrow it. A subnet
// or ACL named statically but outside the project leaves things as they
// are, as before.
func (m *Model) naclAssociationUnknown(r *tf.Resource, n *NACL) {
	s := m.subnets[m.addr(str(r.Values, "subnet_id"))]
	if s == nil && !unknown(r.Values, "subnet_id") || n == nil && !unknown(r.Values, "network_acl_id") {
		return
	}
	ns, aclWhat := []*NACL{n}, n.Addr
	if n == nil {
		from := unknownFrom(r.Values, "network_acl_id")
		if ns, aclWhat = instancesOf(m, from, m.NACLs, func(n *NACL) *tf.Resource { return n.Res }), "any of "+strings.Join(from, ", "); ns == nil {
			ns, aclWhat = m.NACLs, "any network ACL of the project"
		}
	}
	ss, subnetWhat := []*Subnet{s}, ""
	if s == nil {
		from := unknownFrom(r.Values, "subnet_id")
		if ss, subnetWhat = m.subnetsFrom(from), "any of "+strings.Join(from, ", "); ss == nil {
			ss, subnetWhat = m.Subnets, "any subnet of the project"
		}
	} else {
		subnetWhat = s.Addr
	}
	why := fmt.Sprintf("%s associates %s with %s, not known statically", r.Address, subnetWhat, aclWhat)
	m.note(r, "%s", why)
	for _, n := range ns {
		if !strings.Contains(n.SubnetsUnknown, why) {
			n.SubnetsUnknown = strings.TrimPrefix(n.SubnetsUnknown+"; "+why, "; ")
		}
		for _, s := range ss {
			if n.VPC == nil || s.VPC == nil || n.VPC == s.VPC {
				s.MaybeACLs = append(s.MaybeACLs, n)
			}
		}
	}
}

// ACLs returns the network ACLs that may govern s: ACL() first, then those
// of MaybeACLs that differ from it.
func (s *Subnet) ACLs() []*NACL {
	own := s.ACL()
	out := []*NACL{own}
	for _, n := range s.MaybeACLs {
		if n != own && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ACL returns the network ACL of s (nil: a default ACL that allows all).
func (s *Subnet) ACL() *NACL {
	if s.NACL != nil {
		return s.NACL
	}
	if s.VPC != nil {
		return s.VPC.NACL
	}
	return nil
}
