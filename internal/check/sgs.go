package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

func protoName(p string) string {
	switch strings.ToLower(p) {
	case "-1", "all", "":
		return "all"
	case "6", "tcp":
		return "tcp"
	case "17", "udp":
		return "udp"
	case "1", "icmp":
		return "icmp"
	}
	return strings.ToLower(p)
}

// sgRule reads rule b of r, an egress rule when egress: what it admits, or
// for an egress rule reaches, read at its worst where not known statically.
func (m *Model) sgRule(r *tf.Resource, b map[string]any, where string, selfAddr string, egress bool) SGRule {
	peer, admit := "source", "admit every address"
	if egress {
		peer, admit = "destination", "reach every address"
	}
	rule := SGRule{Proto: protoName(str(b, "protocol")), From: num(b, "from_port", 0), To: num(b, "to_port", 65535), Where: where, Res: r}
	if has(b, "ip_protocol") {
		rule.Proto = protoName(str(b, "ip_protocol"))
	}
	if rule.Proto == "all" {
		rule.From, rule.To = 0, 65535
	}
	// A protocol or port not known statically (a dynamic block over a
	// variable without a value) is read as every one, and said so.
	switch {
	case unknown(b, "protocol") || unknown(b, "ip_protocol"):
		rule.Proto, rule.From, rule.To = "all", 0, 65535
		rule.PortsAssumed = "protocol not known statically: assumed to be every protocol and port"
	case rule.Proto != "all" && (unknown(b, "from_port") || unknown(b, "to_port")):
		if unknown(b, "from_port") {
			rule.From = 0
		}
		if unknown(b, "to_port") {
			rule.To = 65535
		}
		rule.PortsAssumed = "ports not known statically: assumed to be every port"
	}
	if rule.PortsAssumed != "" {
		m.note(r, "%s: %s", where, rule.PortsAssumed)
	}
	// unk: a source not known statically; sized: every source read so,
	// and every AWS-managed list named, is a range of known size somewhere
	// (bounded holds the unknown ones' prefix lengths).
	unk, sized := false, true
	var bounded []int
	var managed []string
	for _, k := range []string{"cidr_blocks", "ipv6_cidr_blocks", "cidr_ipv4", "cidr_ipv6", "prefix_list_ids", "prefix_list_id"} {
		vals, u := strs(b, k)
		if _, one := b[k].(string); one && strings.HasSuffix(k, "s") {
			// cidr_blocks = "10.0.0.0/8": the provider takes a list,
			// and Terraform refuses the plan. Read as the range given.
			m.reject(r, "%s: %s is a string, where the provider takes a list of strings: Terraform rejects it, so the plan fails; the rule is read as admitting %q", where, k, b[k])
		}
		if bad := unreadable(b, k); bad != "" {
			what := "an address range"
			if strings.HasPrefix(k, "prefix_list") {
				what = "a prefix list ID"
			}
			why := fmt.Sprintf("%s holds %s, which is not %s: assumed to %s", k, bad, what, admit)
			rule.Assumed, sized = strings.TrimPrefix(rule.Assumed+"; "+why, "; "), false
			if mistyped(b, k) {
				// A list in the list (["${split(",", var.x)}"], as
				// Terraform 0.11 wrote it) or an object: Terraform
				// refuses the value.
				m.reject(r, "%s: %s holds %s, where the provider takes %ss (strings): Terraform rejects it, so the plan fails; the rule is read as admitting every address", where, k, bad, strings.TrimPrefix(strings.TrimPrefix(what, "an "), "a "))
			} else {
				m.note(r, "%s: %s", where, why)
			}
			u = anyUnknown(b, k)
		}
		unk = unk || u
		if u {
			bits, ok := unknownBits(b, k)
			sized = sized && ok && !strings.HasPrefix(k, "prefix_list")
			bounded = append(bounded, bits...)
		}
		if strings.HasPrefix(k, "prefix_list") {
			for _, id := range vals {
				if ps, ok := m.prefixLists[m.addr(id)]; ok && ps != nil {
					rule.CIDRs = append(rule.CIDRs, ps...)
					if why := m.prefixListsAssumed[m.addr(id)]; why != "" {
						rule.Assumed, sized = strings.TrimPrefix(rule.Assumed+"; "+why, "; "), false
					}
					continue
				}
				if strings.HasPrefix(id, tf.AWSManagedPrefixList) {
					// One AWS service's ranges (CloudFront's origin-facing
					// servers, a region's S3): a few dozen entries, far
					// fewer addresses than a /8, never the internet.
					managed = append(managed, id)
					continue
				}
				// One defined elsewhere: its ranges are not in the
				// scanned code.
				why := fmt.Sprintf("prefix list %q is not in the scanned code or its entries are not known statically: assumed to %s", id, admit)
				rule.Assumed, sized = strings.TrimPrefix(rule.Assumed+"; "+why, "; "), false
				m.note(r, "%s: %s", where, why)
			}
			continue
		}
		for _, s := range vals {
			if p, ok := m.cidr(r, where, k, s); ok {
				rule.CIDRs = append(rule.CIDRs, p)
			}
		}
	}
	for _, k := range []string{"security_groups", "source_security_group_id", "referenced_security_group_id"} {
		vals, u := strs(b, k)
		unk, sized = unk || u, sized && !u
		for _, s := range vals {
			a := m.addr(s)
			if g := m.sgs[a]; g != nil {
				a = g.Addr // a group named by an ID of its own
			}
			rule.SGs = append(rule.SGs, a)
			m.sgRef[a] = true
		}
	}
	rule.Self = boolean(b, "self", false)
	if unknown(b, "self") {
		rule.Self, rule.SelfAssumed = true, "self not known statically: assumed to be true, admitting the group's own members"
		m.note(r, "%s: %s", where, rule.SelfAssumed)
	}
	rule.Managed = managed
	var whys []string
	if len(managed) > 0 {
		whys = append(whys, fmt.Sprintf("AWS-managed prefix list %s: one AWS service's addresses, no wider than one network's: assumed to be anywhere", strings.Join(managed, ", ")))
	}
	if unk {
		why := fmt.Sprintf("a %s is not known statically: assumed to %s", peer, admit)
		if sized {
			why = fmt.Sprintf("a %s is not known statically but for its length (%s): assumed to be anywhere", peer, boundedText(bounded))
		}
		whys = append(whys, why)
	}
	if len(whys) > 0 {
		if sized && rule.Assumed == "" {
			rule.Bounded = bounded
			for range managed {
				rule.Bounded = append(rule.Bounded, oneNetwork)
			}
		}
		for _, why := range whys {
			rule.Assumed = strings.TrimPrefix(rule.Assumed+"; "+why, "; ")
			m.note(r, "%s: %s", where, why)
		}
	}
	return rule
}

// cidr reads a security group rule's address range. A value the AWS
// provider rejects (not a CIDR block, or host bits set: "0.0.1.0/0") fails
// terraform validate, so no rule is created from it: it admits nothing, and
// the rejected value is reported (CHECK-003).
func (m *Model) cidr(r *tf.Resource, where, attr, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	v6 := strings.Contains(attr, "ipv6")
	switch {
	case err != nil:
		m.reject(r, "%s: %s %q is not a CIDR block: the AWS provider rejects it, so the plan fails and no rule is created from it", where, attr, s)
	case p.Masked() != p:
		m.reject(r, "%s: %s %q is not a network address (host bits set; %s is): the AWS provider rejects it, so the plan fails and no rule is created from it", where, attr, s, p.Masked())
	case p.Addr().Is6() != v6:
		m.reject(r, "%s: %s %q is not an IPv%s range: the AWS provider rejects it, so the plan fails and no rule is created from it", where, attr, s, map[bool]string{true: "6", false: "4"}[v6])
	default:
		return p, true
	}
	return netip.Prefix{}, false
}

// reject records a value the provider rejects, once however often it is
// read.
func (m *Model) reject(r *tf.Resource, format string, args ...any) {
	n := tf.Note{Pos: r.Pos, Address: r.Address, Msg: fmt.Sprintf(format, args...)}
	if !slices.Contains(m.Rejected, n) {
		m.Rejected = append(m.Rejected, n)
	}
}

func (m *Model) sg(ref string) *SG { return m.sgs[m.addr(ref)] }

// buildPrefixLists reads the project's managed prefix lists: their entry
// blocks and the aws_ec2_managed_prefix_list_entry resources that name them.
func (m *Model) buildPrefixLists(byType map[string][]*tf.Resource) {
	m.prefixLists = map[string][]netip.Prefix{}
	m.prefixListsAssumed = map[string]string{}
	known := map[string]bool{}
	add := func(list string, vals map[string]any) {
		c := str(vals, "cidr")
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if unknown(vals, "cidr") || err != nil {
			known[list] = false
			return
		}
		m.prefixLists[list] = append(m.prefixLists[list], p.Masked())
	}
	for _, r := range byType["aws_ec2_managed_prefix_list"] {
		known[r.Address] = !blocksUnknown(r.Values, "entry")
		m.prefixLists[r.Address] = []netip.Prefix{}
		for _, e := range blocks(r.Values, "entry") {
			add(r.Address, e)
		}
	}
	for _, r := range byType["aws_ec2_managed_prefix_list_entry"] {
		list := m.addr(str(r.Values, "prefix_list_id"))
		if _, ok := m.prefixLists[list]; ok {
			add(list, r.Values)
			continue
		}
		if !unknown(r.Values, "prefix_list_id") {
			continue // a list outside the code: read as every address
		}
		// The list is not known statically: the entry counts for every
		// list it may be, those its expression names, else any.
		lists := instancesOf(m, unknownFrom(r.Values, "prefix_list_id"), byType["aws_ec2_managed_prefix_list"], func(r *tf.Resource) *tf.Resource { return r })
		if lists == nil {
			lists = byType["aws_ec2_managed_prefix_list"]
		}
		if len(lists) == 0 {
			continue
		}
		names := make([]string, len(lists))
		for i, l := range lists {
			names[i] = l.Address
			add(l.Address, r.Values)
		}
		m.note(r, "prefix list not known statically (prefix_list_id): the entry is assumed to be in any of %s", strings.Join(names, ", "))
		for _, l := range names {
			why := fmt.Sprintf("%s assumed to hold %s, whose prefix list is not known statically", l, r.Address)
			m.prefixListsAssumed[l] = strings.TrimPrefix(m.prefixListsAssumed[l]+"; "+why, "; ")
		}
	}
	for list, ok := range known {
		if !ok {
			m.prefixLists[list] = nil
		}
	}
}

func (m *Model) buildSGs(byType map[string][]*tf.Resource) {
	m.buildPrefixLists(byType)
	m.eksClusterSGs(byType["aws_eks_cluster"]) // first: other groups' rules name it
	for _, typ := range []string{"aws_security_group", "aws_default_security_group"} {
		for _, r := range byType[typ] {
			g := &SG{Addr: r.Address, VPC: m.vpcs[m.addr(str(r.Values, "vpc_id"))], Res: r}
			if typ == "aws_default_security_group" && !has(r.Values, "vpc_id") {
				g.VPC = m.defaultVPC(r.Address) // without vpc_id, the default VPC's
			}
			for i, b := range blocks(r.Values, "ingress") {
				g.Ingress = append(g.Ingress, m.sgRule(r, b, fmt.Sprintf("%s ingress[%d]", r.Address, i), r.Address, false))
			}
			for i, b := range blocks(r.Values, "egress") {
				g.Egress = append(g.Egress, m.sgRule(r, b, fmt.Sprintf("%s egress[%d]", r.Address, i), r.Address, true))
			}
			// Rules not known statically (ingress = var.rules without a
			// value, or such an element) may admit anything.
			for _, dir := range []string{"ingress", "egress"} {
				if !blocksUnknown(r.Values, dir) {
					continue
				}
				why := dir + " rules not known statically: assumed to admit every address on every port"
				m.note(r, "%s", why)
				rule := SGRule{Proto: "all", From: 0, To: 65535, Assumed: why, Where: r.Address + " " + dir, Res: r}
				if dir == "ingress" {
					g.Ingress = append(g.Ingress, rule)
				} else {
					g.Egress = append(g.Egress, rule)
				}
			}
			if typ == "aws_default_security_group" {
				m.sgUsed[r.Address] = true
			}
			m.SGs = append(m.SGs, g)
			m.sgs[r.Address] = g
		}
	}
	// A VPC's default_security_group_id (a stand-in, tf.VPCDefaults) is
	// the group the project adopts as that VPC's default, else the one AWS
	// makes: it admits all traffic from its own members and lets
	// everything out (rules the code adds to it by that ID count too).
	for _, v := range m.VPCs {
		id := tf.VPCDefaults(v.Addr)["default_security_group_id"]
		if g := m.defaultSG(v); g != nil {
			m.sgs[id] = g
			continue
		}
		if v.Res == nil || m.sgs[id] != nil {
			continue
		}
		where := v.Addr + " default security group (made by AWS)"
		g := &SG{Addr: id, VPC: v, Res: v.Res,
			Ingress: []SGRule{{Proto: "all", From: 0, To: 65535, Self: true, Where: where, Res: v.Res}},
			Egress:  []SGRule{{Proto: "all", From: 0, To: 65535, CIDRs: allInternet, Where: where, Res: v.Res}}}
		m.sgUsed[id] = true
		m.SGs = append(m.SGs, g)
		m.sgs[id] = g
	}
	for _, typ := range sortedKeys(sgRuleTypes) {
		for _, r := range byType[typ] {
			egress := strings.HasSuffix(typ, "egress_rule") || typ == "aws_security_group_rule" && str(r.Values, "type") == "egress"
			gs := m.ruleGroups(r)
			if gs == nil {
				m.detach(r, !egress)
				continue
			}
			for _, g := range gs {
				rule := m.sgRule(r, r.Values, r.Address, g.Addr, egress)
				if egress {
					g.Egress = append(g.Egress, rule)
				} else {
					g.Ingress = append(g.Ingress, rule)
				}
			}
		}
	}
}

// ruleGroups returns the groups a rule resource is of: the one its
// security_group_id names or, when that is not known statically, each
// group of the project its expression can only name (aws_security_group.
// this[0].id of a count not known statically, a cluster's
// cluster_security_group_id), as if the rule were in each; nil when it may
// be a group outside the code.
func (m *Model) ruleGroups(r *tf.Resource) []*SG {
	if g := m.sg(str(r.Values, "security_group_id")); g != nil {
		return []*SG{g}
	}
	if !unknown(r.Values, "security_group_id") {
		return nil
	}
	return instancesOf(m, unknownFrom(r.Values, "security_group_id"), m.SGs, func(g *SG) *tf.Resource { return g.Res })
}

// eksClusterSGs adds the security group EKS creates for each cluster
// (tf.EKSClusterSG): it admits all traffic from its own members, the
// cluster's interfaces and the nodes of its managed node groups, and lets
// everything out. EKS puts the rule back if it is removed; rules the
// project adds to the group (security_group_id = its
// cluster_security_group_id) count too.
func (m *Model) eksClusterSGs(clusters []*tf.Resource) {
	for _, r := range clusters {
		vc := block(r.Values, "vpc_config")
		if vc == nil {
			continue
		}
		g := &SG{Addr: tf.EKSClusterSG(r.Address), Res: r}
		for _, s := range strList(vc, "subnet_ids") {
			if sn := m.subnets[m.addr(s)]; sn != nil && sn.VPC != nil {
				g.VPC = sn.VPC
				break
			}
		}
		where := r.Address + " cluster security group (made by EKS)"
		g.Ingress = []SGRule{{Proto: "all", From: 0, To: 65535, Self: true, Where: where, Res: r}}
		g.Egress = []SGRule{{Proto: "all", From: 0, To: 65535, CIDRs: allInternet, Where: where, Res: r}}
		m.sgUsed[g.Addr] = true
		m.SGs = append(m.SGs, g)
		m.sgs[g.Addr] = g
		// A plan of a cluster that exists gives the group's own ID,
		// which the code around it names the group by.
		if id := str(vc, "cluster_security_group_id"); id != "" && m.byRef[id] == nil {
			m.sgs[id] = g
		}
	}
}

// detach keeps a rule resource whose security group is not in the project
// (or not known statically) as a group of its own, so that an ingress rule
// is still checked for what it admits.
func (m *Model) detach(r *tf.Resource, ingress bool) {
	if !unknown(r.Values, "security_group_id") {
		m.note(r, "security group %q is not in the project", str(r.Values, "security_group_id"))
	}
	if ingress {
		m.detached = append(m.detached, &SG{Addr: r.Address, Res: r, detached: true, Ingress: []SGRule{m.sgRule(r, r.Values, r.Address, r.Address, false)}})
	}
}

// sgRefKeys are the attributes, at any depth of any resource, that attach
// security groups: a Lambda function's or CodeBuild project's vpc_config,
// an EFS mount target, an MQ broker, a Batch compute environment … So does
// one whose name ends in one of them after a qualifier (sgRefKey): an EMR
// studio's engine_security_group_id, an EMR cluster's
// emr_managed_master_security_group. A Glue connection names its groups
// in a list whose name says so (security_group_id_list).
// sgRuleTypes are the resources that each add one rule to a group.
var sgRuleTypes = map[string]bool{"aws_security_group_rule": true, "aws_vpc_security_group_ingress_rule": true, "aws_vpc_security_group_egress_rule": true}

var sgRefKeys = map[string]bool{"security_groups": true, "security_group_ids": true, "vpc_security_group_ids": true, "security_group_id_list": true}

// sgRefKey tells whether attribute k names security groups a resource
// attaches (or, in a group's rule, refers to). A bare security_group_id is
// the group a rule or attachment resource is of, read where those are.
func sgRefKey(k string) bool {
	if sgRefKeys[k] {
		return true
	}
	for _, s := range []string{"_security_group", "_security_groups", "_security_group_id", "_security_group_ids"} {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

// markSGRefs records every security group that a resource attaches, so that
// one attached by a kind of resource the model has no endpoint for is not
// reported as unused, nor its open rules as attached to nothing.
func (m *Model) markSGRefs(byType map[string][]*tf.Resource) {
	mark := func(v map[string]any, k string) {
		if sgRefKey(k) {
			for _, s := range strList(v, k) {
				m.sgUsed[m.addr(s)] = true
			}
			// One not known statically attaches any group its
			// expression can only name.
			if unk, from := unknownRefs(v, k); unk {
				for _, g := range instancesOf(m, from, m.SGs, func(g *SG) *tf.Resource { return g.Res }) {
					m.sgUsed[g.Addr] = true
				}
			}
		}
	}
	for typ, rs := range byType {
		if typ == "aws_security_group" || sgRuleTypes[typ] {
			continue // rules name groups (sgRule); they attach none
		}
		for _, r := range rs {
			eachKey(r.Values, mark)
		}
	}
}
