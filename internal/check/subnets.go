package check

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// rejectSubnetsOutside reports the subnets whose range lies outside every
// range of their VPC or virtual network: AWS and Azure refuse them, so the
// apply fails. A network some of whose ranges are not known statically is
// not judged.
func (m *Model) rejectSubnetsOutside(byType map[string][]*tf.Resource) {
	known := map[string][]netip.Prefix{} // network address → its ranges, when all are known
	for _, r := range byType["aws_vpc"] {
		if p, ok := knownPrefix(r.Values, "cidr_block"); ok {
			known[r.Address] = []netip.Prefix{p}
		}
	}
	for _, r := range byType["aws_vpc_ipv4_cidr_block_association"] {
		v := m.addr(str(r.Values, "vpc_id"))
		if unknown(r.Values, "vpc_id") {
			clear(known) // may widen any VPC
			break
		}
		if p, ok := knownPrefix(r.Values, "cidr_block"); ok && known[v] != nil {
			known[v] = append(known[v], p)
		} else {
			delete(known, v)
		}
	}
	for _, r := range byType["azurerm_virtual_network"] {
		if ps, ok := knownPrefixes(r.Values, "address_space"); ok {
			known[r.Address] = ps
		}
	}
	check := func(r *tf.Resource, vnet string, b map[string]any, keys ...string) {
		space := known[vnet]
		if space == nil {
			return
		}
		for _, k := range keys {
			ps, _ := knownPrefixes(b, k)
			for _, p := range ps {
				if !within(p, space) {
					m.reject(r, "%s %s is outside every range of %s (%s): the subnet is refused, so the apply fails", k, p, vnet, m.describe(setOf(space...)))
				}
			}
		}
	}
	for _, r := range byType["aws_subnet"] {
		check(r, m.addr(str(r.Values, "vpc_id")), r.Values, "cidr_block")
	}
	for _, r := range byType["azurerm_subnet"] {
		check(r, m.addrOf("azurerm_virtual_network", m.ref(r.Values, "virtual_network_name")), r.Values, "address_prefixes", "address_prefix")
	}
	for _, r := range byType["azurerm_virtual_network"] {
		for _, b := range blocks(r.Values, "subnet") {
			check(r, r.Address, b, "address_prefixes", "address_prefix")
		}
	}
}

// knownPrefix is the CIDR block at k, when it is one known statically.
func knownPrefix(b map[string]any, k string) (netip.Prefix, bool) {
	ps, ok := knownPrefixes(b, k)
	if !ok || len(ps) != 1 {
		return netip.Prefix{}, false
	}
	return ps[0], true
}

// knownPrefixes are the CIDR blocks at k (one or a list), when every one is
// known statically and parses.
func knownPrefixes(b map[string]any, k string) ([]netip.Prefix, bool) {
	vals, unk := strs(b, k)
	if unk || len(vals) == 0 {
		return nil, false
	}
	var out []netip.Prefix
	for _, v := range vals {
		p, err := netip.ParsePrefix(strings.TrimSpace(v))
		if err != nil {
			return nil, false
		}
		out = append(out, p.Masked())
	}
	return out, true
}

// within tells whether p lies inside one of space.
func within(p netip.Prefix, space []netip.Prefix) bool {
	for _, c := range space {
		if c.Bits() <= p.Bits() && c.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// awsListAttrs are the arguments of AWS resources, at any depth, that
// take a list (or set) of groups, subnets or ranges: one string there is a
// value Terraform refuses (a set of string required). A security group's
// own rules' ranges are checked with the rule (sgRule).
var awsListAttrs = map[string]bool{"security_groups": true, "vpc_security_group_ids": true, "security_group_ids": true,
	"subnet_ids": true, "subnets": true, "cidr_blocks": true, "ipv6_cidr_blocks": true, "prefix_list_ids": true}

// rejectStringLists reports each such argument given one string: the plan
// fails. The model reads it as a list of that one element.
func (m *Model) rejectStringLists(byType map[string][]*tf.Resource) {
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if !strings.HasPrefix(t, "aws_") {
			continue
		}
		sgRules := t == "aws_security_group" || t == "aws_default_security_group" || t == "aws_security_group_rule"
		for _, r := range byType[t] {
			if r.Planned {
				continue
			}
			var found []string
			eachKey(r.Values, func(v map[string]any, k string) {
				if _, one := v[k].(string); one && awsListAttrs[k] && !(sgRules && strings.Contains(k, "_blocks") || sgRules && k == "prefix_list_ids") {
					found = append(found, k)
				}
			})
			sort.Strings(found)
			for _, k := range slices.Compact(found) {
				m.reject(r, "%s is one string, where the AWS provider takes a list: Terraform rejects it (a set of string is required), so the plan fails; it is read as a list of that one", k)
			}
		}
	}
}

// defaultPlaced holds, for each data store AWS places in default subnets
// of the default VPC when it names no subnet group, the attribute that
// names its subnet group and the one that names its security groups.
var defaultPlaced = []struct{ typ, group, sgs string }{
	{"aws_db_instance", "db_subnet_group_name", "vpc_security_group_ids"},
	{"aws_rds_cluster", "db_subnet_group_name", "vpc_security_group_ids"},
	{"aws_docdb_cluster", "db_subnet_group_name", "vpc_security_group_ids"},
	{"aws_neptune_cluster", "neptune_subnet_group_name", "vpc_security_group_ids"},
	{"aws_elasticache_cluster", "subnet_group_name", "security_group_ids"},
	{"aws_elasticache_replication_group", "subnet_group_name", "security_group_ids"},
	{"aws_redshift_cluster", "cluster_subnet_group_name", "vpc_security_group_ids"},
}

// rejectDefaultPlaced reports a data store that names no subnet group,
// which AWS places in the default VPC, but whose security groups are all
// of VPCs the code declares (aws_vpc): AWS refuses security groups of a
// VPC other than its subnets', so the apply fails. A read replica or a
// replication group's member, which takes its source's subnet group, a
// group or subnet group not known statically, or a group of a VPC the code does not
// declare (which may be the default one), is not judged.
func (m *Model) rejectDefaultPlaced(byType map[string][]*tf.Resource) {
	for _, d := range defaultPlaced {
		for _, r := range byType[d.typ] {
			// A replica of an instance of the region, or a member of a
			// replication group, takes its source's subnet group.
			if has(r.Values, d.group) || has(r.Values, "replicate_source_db") || has(r.Values, "replication_group_id") {
				continue
			}
			refs, unk := strs(r.Values, d.sgs)
			if unk || len(refs) == 0 {
				continue
			}
			var vpcs []string
			for _, ref := range refs {
				g := m.sg(ref)
				if g == nil || g.VPC == nil || g.VPC.Res == nil || g.VPC.Res.Type != "aws_vpc" || strings.Contains(g.VPC.Addr, "data.") {
					vpcs = nil
					break
				}
				if !slices.Contains(vpcs, g.VPC.Addr) {
					vpcs = append(vpcs, g.VPC.Addr)
				}
			}
			if len(vpcs) == 0 {
				continue
			}
			m.reject(r, "%s is not set, so AWS places it in default subnets of the default VPC, but its security groups (%s) are of %s: AWS refuses security groups of a VPC other than its subnets', so the apply fails; it is read in the default VPC, where AWS would place it", d.group, d.sgs, strings.Join(vpcs, ", "))
		}
	}
}
