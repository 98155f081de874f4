package check

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// Azure networks are read into the same model: a virtual network is a VPC
// whose implicit route table has Azure's system routes (the internet, and
// each peered network's address space); a network security group is an
// ordered, stateful ACL (priority order, allow and deny, Azure's default
// rules last) on a subnet or a network interface; a virtual machine is an
// endpoint, public when one of its interfaces has a public IP.

// overlapOf returns the addresses two networks share; nothing when either
// is unknown.
func overlapOf(a, b *VPC) *netipx.IPSet {
	if a == nil || b == nil {
		return nil
	}
	return intersect(setOf(a.CIDRs...), setOf(b.CIDRs...))
}

// platformTags are the service tags whose addresses only Microsoft's own
// platform sends from (azurePrefixes), so a rule admitting one admits none
// of the sources modelled: AzureLoadBalancer is the host's health probes,
// from 168.63.129.16, a virtual address no packet from the internet or a
// peer carries; GatewayManager the control plane of application and VPN
// gateways and Bastion; AzureTrafficManager its probes; ApiManagement API
// Management's control plane, which Azure requires on 3443 of an instance
// in a virtual network. A tag scoped to a region (ApiManagement.WestEurope)
// is the same.
var platformTags = map[string]bool{"azureloadbalancer": true, "gatewaymanager": true, "azuretrafficmanager": true, "apimanagement": true}

// azureInternet names Azure's system route to the internet.
const azureInternet = "Internet (Azure system route)"

// azurePrefixes reads an NSG rule's address prefixes; service tags are
// ranges: Internet and * (any) are every address, VirtualNetwork is the
// network's own space and its peers', AzureLoadBalancer none of them; any
// other tag is assumed to be every address (and said so).
//
// A prefix not known statically is every address, and said so; when each
// such prefix is a range of known length somewhere (tf.Unknown.Bits) and
// the list holds nothing else, the third result holds those lengths
// (NACLRule.Bounded).
func (m *Model) azurePrefixes(r *tf.Resource, b map[string]any, one, many string, vnet []netip.Prefix) ([]netip.Prefix, string, []int) {
	vals := strList(b, many)
	if v := str(b, one); v != "" {
		vals = append(vals, v)
	}
	_, u1 := strs(b, one)
	_, u2 := strs(b, many)
	if u1 || u2 {
		b1, ok1 := unknownBits(b, one)
		b2, ok2 := unknownBits(b, many)
		if ok1 && ok2 && len(vals) == 0 {
			bits := append(b1, b2...)
			return allInternet, fmt.Sprintf("address prefix not known statically but for its length (%s): assumed to be anywhere", boundedText(bits)), bits
		}
		return allInternet, "address prefix not known statically: assumed to be every address", nil
	}
	var out []netip.Prefix
	assumed := ""
	for _, v := range vals {
		tag := strings.ToLower(v)
		if base, region, ok := strings.Cut(tag, "."); ok && region != "" && platformTags[base] {
			tag = base // a platform's tag scoped to a region: its addresses there
		}
		if platformTags[tag] {
			continue
		}
		switch tag {
		case "*", "internet", "any":
			out = append(out, allInternet...)
		case "virtualnetwork":
			out = append(out, vnet...)
		default:
			if p, err := netip.ParsePrefix(v); err == nil {
				out = append(out, p.Masked())
			} else if a, err := netip.ParseAddr(v); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			} else if ranges, ok := m.nicRanges[v]; ok {
				// An interface's assigned address: some address of its
				// subnets (any, when they are not known).
				assumed = fmt.Sprintf("%s (an address Azure assigns) is assumed to be any address of its interface's subnets", v)
				if len(ranges) == 0 {
					ranges = allInternet
				}
				out = append(out, ranges...)
			} else if rg, err := netipx.ParseIPRange(v); err == nil {
				out = append(out, rg.Prefixes()...) // first-last, as a firewall takes
			} else if !serviceTagName(v) {
				// A placeholder ("my-local-ip") Azure refuses at apply;
				// read at its worst where the rule is used, so that
				// nothing is hidden should it be replaced by anything.
				attr := one
				if !slices.Contains(strList(b, one), v) && str(b, one) != v {
					attr = many
				}
				m.reject(r, "%s: %s %q is not an address, a CIDR range or a service tag (a tag is letters and digits, with a region or part after a dot): Azure rejects it, so the apply fails; the rule is read as admitting every address", nsgRuleName(b), attr, v)
				assumed = fmt.Sprintf("%q is not an address or a service tag Azure takes (CHECK-003): assumed to be every address", v)
				out = append(out, allInternet...)
			} else {
				// Fail closed: an allow may admit anyone (AzureCloud is
				// every tenant's machines), a deny may stop no one.
				assumed = fmt.Sprintf("service tag %q is not modelled: assumed to be every address", v)
				m.note(r, "%s", assumed)
				out = append(out, allInternet...)
			}
		}
	}
	return out, assumed, nil
}

// serviceTagName tells whether v is of the form Azure's service tags take:
// a name of letters and digits (AzureCloud, AppService), alone or with one
// part after a dot (Storage.WestEurope, AzureCloud.eastus,
// AzureFrontDoor.Backend). Every tag Azure publishes is of that form, so a
// value that is not ("my-local-ip", "YOUR_IP", "office ip") names none.
func serviceTagName(v string) bool {
	name, part, dotted := strings.Cut(v, ".")
	return alnum(name) && (!dotted || alnum(part))
}

func alnum(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// nsgRuleName names an NSG or firewall rule block by its name, if it has one.
func nsgRuleName(b map[string]any) string {
	if n := str(b, "name"); n != "" {
		return "rule " + n
	}
	return "rule"
}

// denyCovers says how a deny rule's destination may fall short of every
// address of guarded (vnet is the VirtualNetwork tag's ranges), "" when it
// holds them all: *, Any, the tag or ranges holding them. An application
// security group holds only some; a destination not known statically, or
// guarded not known, may.
func denyCovers(b map[string]any, vnet, guarded []netip.Prefix) string {
	const unknownDest = "is not known statically to hold"
	if ids, unk := strs(b, "destination_application_security_group_ids"); len(ids) > 0 || unk {
		return "is an application security group, which holds some, not"
	}
	vals, u1 := strs(b, "destination_address_prefixes")
	one, u2 := strs(b, "destination_address_prefix")
	if u1 || u2 {
		return unknownDest
	}
	vals = slices.DeleteFunc(append(vals, one...), func(v string) bool { return v == "" })
	if len(vals) == 0 {
		return "" // Azure takes no rule without one; read as every address
	}
	var dests []netip.Prefix
	for _, v := range vals {
		switch strings.ToLower(v) {
		case "*", "any":
			return ""
		case "virtualnetwork":
			dests = append(dests, vnet...)
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			dests = append(dests, p.Masked())
		} else if a, err := netip.ParseAddr(v); err == nil {
			dests = append(dests, netip.PrefixFrom(a, a.BitLen()))
		} else if rg, err := netipx.ParseIPRange(v); err == nil {
			dests = append(dests, rg.Prefixes()...)
		}
	}
	if len(guarded) == 0 {
		return unknownDest
	}
	set := setOf(dests...)
	for _, g := range guarded {
		if !set.ContainsPrefix(g) {
			return "does not hold"
		}
	}
	return ""
}

func azurePorts(b map[string]any) ([][2]int, bool) {
	vals := strList(b, "destination_port_ranges")
	if v := str(b, "destination_port_range"); v != "" {
		vals = append(vals, v)
	}
	_, u1 := strs(b, "destination_port_range")
	_, u2 := strs(b, "destination_port_ranges")
	if u1 || u2 {
		return [][2]int{{0, 65535}}, true
	}
	var out [][2]int
	for _, v := range vals {
		if v == "*" {
			out = append(out, [2]int{0, 65535})
			continue
		}
		lo, hi, rng := strings.Cut(v, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if rng {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 == nil && err2 == nil {
			out = append(out, [2]int{a, b})
		}
	}
	return out, false
}

// nsgRules turns one security_rule into ordered entries (inbound only).
//
// The VirtualNetwork tag is allowTag in an allow, denyTag in a deny
// (finishNSG).
func (m *Model) nsgRules(r *tf.Resource, b map[string]any, where string, allowTag, denyTag, own, guarded []netip.Prefix, tagAssumed string) []NACLRule {
	if !strings.EqualFold(str(b, "direction"), "Inbound") && !unknown(b, "direction") {
		return nil
	}
	prio := num(b, "priority", 4096)
	allow := !strings.EqualFold(str(b, "access"), "Deny")
	late := ""
	if !allow {
		if why := denyCovers(b, denyTag, guarded); why != "" {
			// The rules are not read by destination: a deny that spares
			// some of what the NSG guards may stop no one there.
			m.note(r, "%s: its destination %s every address the network security group guards (%s): read as denying nothing", nsgRuleName(b), why, m.describe(setOf(guarded...)))
			late = "its destination " + why + " every address the network security group guards, so it is read as denying nothing"
		}
	}
	vnet := allowTag
	if !allow {
		vnet = denyTag
	}
	// Protocol * is TCP, UDP and ICMP on the rule's ports, not every
	// port: "all" would match any port.
	protos := []string{protoName(str(b, "protocol"))}
	if protos[0] == "*" || protos[0] == "all" || unknown(b, "protocol") {
		protos = []string{"tcp", "udp", "icmp"}
	}
	srcs, assumed, bounded := m.azurePrefixes(r, b, "source_address_prefix", "source_address_prefixes", vnet)
	if names, _ := strs(b, "source_address_prefixes"); assumed == "" && tagAssumed != "" && slices.ContainsFunc(append(names, str(b, "source_address_prefix")), func(v string) bool { return strings.EqualFold(v, "VirtualNetwork") }) {
		// A deny of it then denies nothing (below).
		assumed = tagAssumed
	}
	if asgs, unk := strs(b, "source_application_security_group_ids"); len(asgs) > 0 || unk {
		// The members of an application security group are interfaces
		// of one virtual network, the NSG's: which ones is not modelled,
		// so the rule admits any address of that network, and says so
		// (a deny then denies nothing). It never admits the internet.
		srcs = append(srcs, own...)
		if assumed == "" {
			assumed = "source application security group: its members are assumed to be any address of the network security group's virtual network"
		}
	}
	if unknown(b, "priority") {
		// Fail closed: an allow is read as deciding before every deny,
		// a deny after every allow (the highest priority number).
		if allow {
			prio = 0
			if assumed == "" {
				assumed = "priority not known statically: assumed to decide before every deny"
			}
		} else {
			prio = 4096
		}
	}
	ports, unkPorts := azurePorts(b)
	if unkPorts && assumed == "" {
		assumed = "destination ports not known statically: assumed to be every port"
	}
	if assumed != "" && !allow && late == "" {
		// A deny that cannot be evaluated denies nothing.
		late = "it cannot be evaluated, so it is read as denying nothing"
	}
	if late != "" {
		// Kept, set aside, so that what passes where it would decide
		// says it rests on that (naclPass).
		assumed = ""
	}
	var dest []netip.Prefix
	if allow {
		dest = literalDest(b)
	}
	var out []NACLRule
	for _, proto := range protos {
		for _, p := range ports {
			for _, s := range srcs {
				out = append(out, NACLRule{No: prio, Allow: allow, Proto: proto, From: p[0], To: p[1], CIDR: s, Where: fmt.Sprintf("%s (%s, priority %d)", where, str(b, "name"), prio), Assumed: assumed, Bounded: bounded, Dest: dest, Late: late})
			}
		}
	}
	return out
}

// literalDest returns the addresses an NSG rule's destination names when
// every one is a literal address, range or CIDR block; nil when it is a
// tag (*, VirtualNetwork), an application security group or not known
// statically, any address the NSG guards.
func literalDest(b map[string]any) []netip.Prefix {
	if ids, unk := strs(b, "destination_application_security_group_ids"); len(ids) > 0 || unk {
		return nil
	}
	vals, u1 := strs(b, "destination_address_prefixes")
	one, u2 := strs(b, "destination_address_prefix")
	vals = slices.DeleteFunc(append(vals, one...), func(v string) bool { return v == "" })
	if u1 || u2 || len(vals) == 0 {
		return nil
	}
	var out []netip.Prefix
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		} else if rg, err := netipx.ParseIPRange(v); err == nil {
			out = append(out, rg.Prefixes()...)
		} else {
			return nil
		}
	}
	return out
}

// unknownNSG stands for the NSG an association names when it is not known
// statically: it may be any, and is read as allowing everything (a
// Standard SKU public IP then admits what it allows), and said so.
func unknownNSG(m *Model, r *tf.Resource) *NACL {
	n := &NACL{Addr: r.Address + ":nsg", Res: r, Stateful: true,
		Assumed: "network security group not known statically: assumed to allow everything"}
	m.note(r, "%s", n.Assumed)
	return n
}

func (m *Model) buildAzure(byType map[string][]*tf.Resource) {
	vnets := map[string]*VPC{}
	for _, r := range byType["azurerm_virtual_network"] {
		v := &VPC{Addr: r.Address, Res: r}
		for _, c := range strList(r.Values, "address_space") {
			if p, ok := m.prefix(r, "address_space", c); ok {
				v.CIDRs = append(v.CIDRs, p)
			}
		}
		igw := r.Address + ":internet"
		m.igws[igw] = r.Address
		v.Main = &RouteTable{Addr: r.Address + ":system-routes", VPC: v}
		for _, p := range allInternet {
			v.Main.Routes = append(v.Main.Routes, Route{Dest: p, Kind: "igw", Target: igw, Where: azureInternet})
		}
		m.Tables = append(m.Tables, v.Main)
		m.VPCs = append(m.VPCs, v)
		m.vpcs[r.Address] = v
		vnets[r.Address] = v
	}
	vnetOf := func(ref string) *VPC { return vnets[m.addrOf("azurerm_virtual_network", ref)] }
	type inlineNSG struct {
		s *Subnet
		g string // "" when not known statically
	}
	var inline []inlineNSG
	for _, r := range byType["azurerm_virtual_network_peering"] {
		a, b := vnetOf(m.ref(r.Values, "virtual_network_name")), vnetOf(m.ref(r.Values, "remote_virtual_network_id"))
		p := &Peering{Addr: r.Address, A: a, B: b, Res: r}
		switch ov := overlapOf(a, b); {
		case a == nil || b == nil:
			m.note(r, "a peered virtual network is not in the project; the peering is read one-sided")
		case !empty(ov):
			p.Refused = true
			m.reject(r, "%s and %s overlap in %s: Azure refuses to peer virtual networks whose address spaces overlap, so the peering is not created (the apply fails) and no traffic crosses it",
				a.Addr, b.Addr, m.describe(ov))
		default:
			for _, c := range b.CIDRs {
				a.Main.Routes = append(a.Main.Routes, Route{Dest: c, Kind: "pcx", Target: r.Address, Where: r.Address + " (peering system route)"})
			}
		}
		m.Peerings = append(m.Peerings, p)
	}
	// Each direction of a peering is its own resource; the reverse one
	// carries the return traffic. Peer both ways when both exist.
	for _, p := range m.Peerings {
		for _, q := range m.Peerings {
			if p != q && !p.Refused && !q.Refused && p.A != nil && p.B != nil && p.A == q.B && p.B == q.A && p.Res != nil && strings.HasPrefix(p.Res.Type, "azurerm") {
				for _, c := range p.A.CIDRs {
					p.B.Main.Routes = append(p.B.Main.Routes, Route{Dest: c, Kind: "pcx", Target: p.Addr, Where: q.Addr + " (peering system route)"})
				}
			}
		}
	}
	// Subnets written inside a virtual network, known by the ID the
	// reader gives them.
	for _, r := range byType["azurerm_virtual_network"] {
		for _, b := range blocks(r.Values, "subnet") {
			name := str(b, "name")
			if name == "" {
				continue
			}
			id := tf.InlineSubnetID(r.Address, name)
			s := &Subnet{Addr: id, VPC: vnets[r.Address], Res: r}
			for _, k := range []string{"address_prefixes", "address_prefix"} {
				for _, c := range strList(b, k) {
					if p, ok := m.prefix(r, k, c); ok && !s.CIDR.IsValid() {
						s.CIDR = p
					}
				}
			}
			if g := str(b, "security_group"); g != "" || unknown(b, "security_group") {
				inline = append(inline, inlineNSG{s, g})
			}
			m.Subnets = append(m.Subnets, s)
			m.subnets[id] = s
		}
	}
	for _, r := range byType["azurerm_subnet"] {
		s := &Subnet{Addr: r.Address, VPC: vnetOf(m.ref(r.Values, "virtual_network_name")), Res: r}
		// address_prefix (one range) is the attribute of azurerm before 3.0.
		for _, k := range []string{"address_prefixes", "address_prefix"} {
			for _, c := range strList(r.Values, k) {
				if p, ok := m.prefix(r, k, c); ok && !s.CIDR.IsValid() {
					s.CIDR = p
				}
			}
		}
		m.Subnets = append(m.Subnets, s)
		m.subnets[r.Address] = s
	}
	m.azureSpaceAssumed(vnets)
	m.azureVirtualWANs(byType, vnets)
	m.azureVPNs(byType)
	nsgs := map[string]*NACL{}
	raws := map[*NACL][]rawRule{}
	for _, r := range byType["azurerm_network_security_group"] {
		n := &NACL{Addr: r.Address, Res: r, Stateful: true}
		for i, b := range blocks(r.Values, "security_rule") {
			raws[n] = append(raws[n], rawRule{r, b, fmt.Sprintf("%s security_rule[%d]", r.Address, i)})
		}
		if blocksUnknown(r.Values, "security_rule") {
			n.Assumed = "security rules not known statically: assumed to allow everything"
		}
		nsgs[r.Address] = n
		m.NACLs = append(m.NACLs, n)
		m.nacls[r.Address] = n
	}
	for _, r := range byType["azurerm_network_security_rule"] {
		n := nsgs[m.addrOf("azurerm_network_security_group", m.ref(r.Values, "network_security_group_name"))]
		if n == nil {
			if has(r.Values, "network_security_group_name") {
				m.note(r, "network security group %q is not in the project", str(r.Values, "network_security_group_name"))
			}
			continue
		}
		raws[n] = append(raws[n], rawRule{r, r.Values, r.Address})
	}
	for _, r := range byType["azurerm_subnet_network_security_group_association"] {
		s, n := m.subnets[m.addr(m.ref(r.Values, "subnet_id"))], nsgs[m.addr(m.ref(r.Values, "network_security_group_id"))]
		if s != nil && n == nil && unknown(r.Values, "network_security_group_id") {
			n = unknownNSG(m, r)
		}
		if s != nil && n != nil {
			s.NACL = n
			n.VPC = s.VPC
		}
		// A subnet the code looks up or names by an ID of its own is
		// one outside the scanned code: the NSG guards what is there.
		if unk, from := unknownRefs(r.Values, "subnet_id"); s == nil && n != nil && (unk && from == nil || !unk && str(r.Values, "subnet_id") != "") {
			n.SubnetsUnknown = "associated by " + r.Address + " with a subnet outside the scanned code"
		}
	}
	// azurerm before 2.0 associated an NSG in the subnet itself
	// (network_security_group_id); a subnet whose NSG is not known
	// statically is read as governed by an NSG that allows everything.
	for _, r := range byType["azurerm_subnet"] {
		s := m.subnets[r.Address]
		if s == nil || s.NACL != nil {
			continue
		}
		if n := nsgs[m.addr(str(r.Values, "network_security_group_id"))]; n != nil {
			s.NACL = n
			n.VPC = s.VPC
		} else if unknown(r.Values, "network_security_group_id") {
			n := &NACL{Addr: r.Address + ":nsg", Res: r, Stateful: true, VPC: s.VPC,
				Assumed: "network security group not known statically: assumed to allow everything"}
			m.note(r, "%s", n.Assumed)
			s.NACL = n
		}
	}
	// An inline subnet names its NSG in security_group.
	for _, in := range inline {
		s, g := in.s, in.g
		if s.NACL != nil {
			continue // an association resource decides too
		}
		if n := nsgs[m.addr(g)]; n != nil {
			s.NACL = n
			n.VPC = s.VPC
		} else if g == "" {
			n := &NACL{Addr: s.Addr + ":nsg", Res: s.Res, Stateful: true, VPC: s.VPC,
				Assumed: "network security group not known statically: assumed to allow everything"}
			m.note(s.Res, "subnet %s: %s", s.Addr, n.Assumed)
			s.NACL = n
		}
	}
	// A Standard SKU public IP (StandardV2 too) is closed to inbound
	// traffic until an NSG allows it; a Basic one is open without an NSG.
	// An unset sku is Standard from azurerm 4.0 and Basic before it (by
	// the lock file or the version constraints, providerBefore); one not
	// known statically is read as Basic.
	_, before4 := m.providerBefore("azurerm", "4.0.0")
	pips := map[string]bool{}
	standard := map[string]bool{}
	// family: the address family of a public IP (ip_version, IPv4 unless
	// set; either when it cannot be read).
	family := map[string][]netip.Prefix{}
	for _, r := range byType["azurerm_public_ip"] {
		pips[r.Address] = true
		standard[r.Address] = strings.HasPrefix(strings.ToLower(str(r.Values, "sku")), "standard") || !has(r.Values, "sku") && !before4
		switch v := str(r.Values, "ip_version"); {
		case unknown(r.Values, "ip_version"):
			family[r.Address] = allInternet
			m.note(r, "ip_version not known statically: read as either address family")
		case v == "" || strings.EqualFold(v, "IPv4"):
			family[r.Address] = allInternet[:1]
		default:
			family[r.Address] = allInternet[1:]
		}
	}
	lbs := m.azureLBs(byType, pips, standard, family)
	type nic struct {
		subnets []*Subnet
		// maybe: the subnets one not known statically may be (ifaceSubnets).
		maybe  []*Subnet
		public string
		// basic: some public IP of the interface is open without an NSG.
		basic bool
		// lb: what public load balancers forward to the interface.
		lb lbForward
		// families: of its public IPs; both when one is not known.
		families []netip.Prefix
		// ips: its private addresses, when every one is static and
		// known (ipsKnown).
		ips      []netip.Addr
		ipsKnown bool
	}
	nics := map[string]nic{}
	m.nicRanges = map[string][]netip.Prefix{}
	for _, r := range byType["azurerm_network_interface"] {
		var n nic
		n.lb = lbs.of(m, r.Address, blocks(r.Values, "ip_configuration"))
		var ranges []netip.Prefix
		n.ipsKnown = !unknown(r.Values, "ip_configuration")
		for _, ipc := range blocks(r.Values, "ip_configuration") {
			if a, err := netip.ParseAddr(str(ipc, "private_ip_address")); err == nil && strings.EqualFold(str(ipc, "private_ip_address_allocation"), "Static") {
				n.ips = append(n.ips, a)
			} else {
				n.ipsKnown = false
			}
			known, maybe := m.ifaceSubnets(ipc)
			for _, sub := range slices.Concat(known, maybe) {
				switch {
				case sub.CIDR.IsValid():
					ranges = append(ranges, sub.CIDR)
				case sub.VPC != nil:
					ranges = append(ranges, sub.VPC.CIDRs...)
				}
			}
			n.subnets = append(n.subnets, known...)
			n.maybe = append(n.maybe, maybe...)
			// One not known statically is any public IP its expression
			// names, else one of the Basic SKU of either family.
			ps, anyPIP := m.refAddrs(ipc, "public_ip_address_id", byType["azurerm_public_ip"])
			for _, p := range ps {
				if !pips[p] {
					continue
				}
				n.public = "public IP " + p + " on " + r.Address
				n.basic = n.basic || !standard[p]
				n.families = append(n.families, family[p]...)
			}
			if anyPIP {
				n.public = "a public IP not known statically on " + r.Address
				n.basic = true
				n.families = append(n.families, allInternet...)
			}
		}
		nics[r.Address] = n
		m.nicRanges[tf.PrivateIPOf(r.Address)] = ranges
	}
	nicNSG := map[string]*NACL{}
	// azurerm before 2.0 associated an NSG in the interface itself.
	for _, r := range byType["azurerm_network_interface"] {
		if n := nsgs[m.addr(str(r.Values, "network_security_group_id"))]; n != nil {
			nicNSG[r.Address] = n
			if n.VPC == nil {
				n.VPC = networkOf(nics[r.Address].subnets, nics[r.Address].maybe)
			}
		}
	}
	// An association of an interface not known statically, the
	// element(…, count.index) of a count not known statically, which
	// stands for every instance, associates each interface its
	// expression can only name, as a count known statically would.
	for _, r := range byType["azurerm_network_interface_security_group_association"] {
		ifaces, _ := m.refAddrs(r.Values, "network_interface_id", byType["azurerm_network_interface"])
		n := nsgs[m.addr(m.ref(r.Values, "network_security_group_id"))]
		for _, nic := range ifaces {
			if _, ok := nics[nic]; n == nil && ok && unknown(r.Values, "network_security_group_id") {
				n = unknownNSG(m, r)
			}
			if n != nil {
				nicNSG[nic] = n
				// An NSG on an interface only: its VirtualNetwork is
				// the interface's network's.
				if n.VPC == nil {
					n.VPC = networkOf(nics[nic].subnets, nics[nic].maybe)
				}
			}
		}
	}
	// governed holds the subnets each NSG guards, by association or
	// through an interface in them (finishNSG).
	governed := map[*NACL][]*Subnet{}
	// A scale set declares its interfaces inline (network_interface, or
	// network_profile before azurerm 2.0), each with its own NSG; an
	// ip_configuration with a public_ip_address block gives every
	// instance a public IP: of the Standard SKU where the block's sku_name
	// names it (Standard_Regional, Standard_Global: a scale set in
	// Flexible orchestration) or, with no sku_name, where it takes its
	// addresses from a public IP prefix of the project (public_ip_prefix_id),
	// whose SKU, Standard unless set, its addresses have; such an IP admits
	// nothing from the internet without an NSG. Else it is read as Basic,
	// open without one (a sku_name or a prefix, or its sku, not known
	// statically, or a prefix not in the code, is read so too: worst case).
	prefixes := map[string]bool{}
	for _, r := range byType["azurerm_public_ip_prefix"] {
		sku := str(r.Values, "sku")
		prefixes[r.Address] = !unknown(r.Values, "sku") && (sku == "" || strings.HasPrefix(strings.ToLower(sku), "standard"))
	}
	for _, typ := range []string{"azurerm_linux_virtual_machine_scale_set", "azurerm_windows_virtual_machine_scale_set", "azurerm_orchestrated_virtual_machine_scale_set", "azurerm_virtual_machine_scale_set"} {
		for _, r := range byType[typ] {
			e := &Endpoint{Addr: r.Address, Kind: "scale set", Res: r, Azure: true}
			var ifaces []map[string]any
			for _, k := range []string{"network_interface", "network_profile"} {
				ifaces = append(ifaces, blocks(r.Values, k)...)
			}
			type nicNSG struct {
				nsg    *NACL
				public bool
			}
			var all []nicNSG
			var lb lbForward
			var families []netip.Prefix
			basic, guarded := false, false
			for _, ni := range ifaces {
				var n nicNSG
				n.nsg = nsgs[m.addr(str(ni, "network_security_group_id"))]
				for _, ipc := range blocks(ni, "ip_configuration") {
					known, maybe := m.ifaceSubnets(ipc)
					e.Subnets = append(e.Subnets, known...)
					maybeSubnets(e, "an interface of "+r.Address, maybe)
					if n.nsg != nil {
						governed[n.nsg] = append(governed[n.nsg], slices.Concat(known, maybe)...)
					}
					if len(blocks(ipc, "public_ip_address")) > 0 || len(blocks(ipc, "public_ip_address_configuration")) > 0 || unknown(ipc, "public_ip_address") {
						n.public = true
						basic = basic || len(blocks(ipc, "public_ip_address_configuration")) > 0 || unknown(ipc, "public_ip_address")
						for _, pip := range blocks(ipc, "public_ip_address") {
							basic = basic || !m.scaleSetIPStandard(pip, prefixes)
						}
						e.Public, e.Why = true, "public_ip_address of "+r.Address+" (one per instance)"
						// Each instance's public IP is of its
						// ip_configuration's version (IPv4 unless set).
						switch v := str(ipc, "version"); {
						case unknown(ipc, "version"):
							families = append(families, allInternet...)
							m.note(r, "ip_configuration version not known statically: read as either address family")
						case v == "" || strings.EqualFold(v, "IPv4"):
							families = append(families, allInternet[:1]...)
						default:
							families = append(families, allInternet[1:]...)
						}
					}
				}
				f := lbs.of(m, "", blocks(ni, "ip_configuration"))
				if len(f.ports) > 0 {
					n.public = true
				}
				lb.add(f)
				if unknown(ni, "network_security_group_id") {
					m.note(r, "network security group of an interface not known statically: assumed to be none")
				}
				all = append(all, n)
			}
			if unknown(r.Values, "network_interface") || unknown(r.Values, "network_profile") {
				m.note(r, "network interfaces not known statically: the scale set is not placed in the network model")
			}
			e.Families = reachFamilies(e.Public, families, lb)
			if !e.Public && len(lb.ports) > 0 {
				lb.apply(e)
			}
			first := true
			for _, n := range all {
				if e.Public && !n.public {
					continue
				}
				switch {
				case first && n.nsg != nil:
					e.NSGs = []*NACL{n.nsg}
				case len(e.NSGs) > 0 && e.NSGs[0] != n.nsg:
					e.NSGs = nil
				}
				if n.nsg != nil && n.nsg.VPC == nil {
					n.nsg.VPC = networkOf(e.Subnets, e.SubnetsMaybe)
				}
				guarded = guarded || n.nsg != nil
				first = false
			}
			// Reached through public IPs of its own alone: one a
			// load balancer forwards to is read as before, open
			// without an NSG.
			e.StandardIP = e.Public && !basic && !guarded && len(lb.ports) == 0
			m.Endpoints = append(m.Endpoints, e)
		}
	}
	udr := m.routePrefixes(byType)
	for _, s := range m.Subnets {
		if s.NACL != nil {
			governed[s.NACL] = append(governed[s.NACL], s)
		}
	}
	for a, n := range nicNSG {
		governed[n] = append(governed[n], slices.Concat(nics[a].subnets, nics[a].maybe)...)
	}
	for _, n := range nsgs {
		n.finishNSG(m, raws[n], udr, governed[n])
	}
	for _, typ := range []string{"azurerm_linux_virtual_machine", "azurerm_windows_virtual_machine", "azurerm_virtual_machine"} {
		for _, r := range byType[typ] {
			e := &Endpoint{Addr: r.Address, Kind: "vm", Res: r, Azure: true}
			// Each interface is filtered by its own NSG only. The
			// endpoint is reached through its public interfaces (all of
			// them when none is public), so an NSG counts when every one
			// of those has it: one interface without keeps the machine
			// open whatever the others' NSGs say.
			var ids, public []string
			var lb lbForward
			var families []netip.Prefix
			addrs, anyNIC := m.refAddrs(r.Values, "network_interface_ids", byType["azurerm_network_interface"])
			if anyNIC {
				m.note(r, "network interfaces not known statically: the machine is placed by those the code names only")
			}
			ipsKnown := !anyNIC && len(addrs) > 0
			for _, a := range addrs {
				ids = append(ids, a)
				n := nics[a]
				e.Subnets = append(e.Subnets, n.subnets...)
				maybeSubnets(e, "interface "+a, n.maybe)
				e.PrivateIPs, ipsKnown = append(e.PrivateIPs, n.ips...), ipsKnown && n.ipsKnown
				if n.public != "" {
					public = append(public, a)
					e.Public, e.Why = true, n.public
					families = append(families, n.families...)
				}
				lb.add(n.lb)
			}
			if !ipsKnown {
				e.PrivateIPs = nil
			}
			e.Families = reachFamilies(e.Public, families, lb)
			if !e.Public && len(lb.ports) > 0 {
				// Reached from the internet only through the load
				// balancers' rules: on their backend ports.
				for _, a := range ids {
					if len(nics[a].lb.ports) > 0 {
						public = append(public, a)
					}
				}
				lb.apply(e)
			}
			via := ids
			if len(public) > 0 {
				via = public
			}
			basic, guarded := lb.basic, false
			for i, a := range via {
				g := nicNSG[a]
				if nics[a].basic {
					basic = true
				}
				if g != nil {
					guarded = true
				}
				if i == 0 && g != nil {
					e.NSGs = []*NACL{g}
				} else if len(e.NSGs) > 0 && e.NSGs[0] != g {
					e.NSGs = nil
				}
			}
			e.StandardIP = e.Public && !basic && !guarded
			m.Endpoints = append(m.Endpoints, e)
		}
	}
	m.aksAPIServers(byType)
	m.aksNodePools(byType)
	m.azureContainerGroups(byType)
	m.azurePrivateData(byType)
	m.applianceRoutes(byType)
	ms, ilbs := m.azureMachines(byType, lbs), m.internalLBs(byType)
	m.azureLBAddresses(byType, ms, lbs)
	m.azureFirewalls(byType, ms, ilbs, pips, family)
	m.azureAppGateways(byType, ms, ilbs, pips, family)
	m.azureFrontDoors(byType, ms, ilbs)
	for _, r := range byType["azurerm_network_watcher_flow_log"] {
		if !boolean(r.Values, "enabled", true) {
			continue // declared but switched off: records nothing
		}
		if n := nsgs[m.addr(str(r.Values, "network_security_group_id"))]; n != nil {
			n.FlowLogs = append(n.FlowLogs, r.Address)
		}
		if v := vnets[m.addr(str(r.Values, "target_resource_id"))]; v != nil {
			v.FlowLogs = append(v.FlowLogs, r.Address)
		}
	}
}

// reachFamilies returns the address families the internet reaches a
// machine from: its own public IPs' (when it has one) and those of the
// public load balancers' frontends that forward to it.
func reachFamilies(public bool, own []netip.Prefix, lb lbForward) []netip.Prefix {
	var out []netip.Prefix
	if public {
		out = append(out, own...)
	}
	if len(lb.ports) > 0 {
		out = append(out, lb.families...)
	}
	return out
}

// rawRule is an NSG's security rule as written, read by finishNSG.
type rawRule struct {
	r     *tf.Resource
	b     map[string]any
	where string
}

// finishNSG sets the VirtualNetwork tag's ranges, appends Azure's default
// inbound rules and sorts by priority. The tag holds, besides the
// network's and its peers' spaces and the networks its gateways reach, the prefixes of the user-defined routes
// of the route table of the subnet (udr, by subnet) where the rule is met:
// an allow reads it with those of every subnet the NSG governs, a deny
// with those they all share, so that neither admits less nor denies more
// than Azure does.
func (n *NACL) finishNSG(m *Model, raws []rawRule, udr map[*Subnet][]netip.Prefix, governed []*Subnet) {
	var vnet, own []netip.Prefix
	tagAssumed := ""
	space := func(v *VPC) []netip.Prefix {
		if len(v.CIDRs) == 0 && len(v.SpaceAssumed) > 0 {
			if tagAssumed == "" {
				tagAssumed = spaceAssumedText(v)
			}
			return v.SpaceAssumed
		}
		return v.CIDRs
	}
	if n.VPC != nil {
		own = space(n.VPC)
		vnet = append(vnet, own...)
		for _, p := range m.Peerings {
			// allow_virtual_network_access = false leaves the remote
			// space out of the local network's VirtualNetwork tag (the
			// route stays: a rule naming its range still admits it).
			// Not known statically, it is read as left on.
			off := p.Res != nil && has(p.Res.Values, "allow_virtual_network_access") && !unknown(p.Res.Values, "allow_virtual_network_access") && !boolean(p.Res.Values, "allow_virtual_network_access", true)
			if p.A == n.VPC && p.B != nil && !p.Refused && !off {
				vnet = append(vnet, space(p.B)...)
			}
		}
		// And the networks a virtual network gateway routes into it
		// (azureVPNs): on-premises, point-to-site clients, VNet-to-VNet.
		for _, r := range n.VPC.Main.Routes {
			if gw := m.lookup(r.Target); gw != nil && vpnGatewayTypes[gw.Type] {
				vnet = append(vnet, r.Dest)
			}
		}
	}
	// As sets, so that the order of the subnets makes none in the rules.
	var some, every []netip.Prefix
	for _, s := range governed {
		some = append(some, udr[s]...)
	}
	if len(governed) > 0 {
		common := setOf(udr[governed[0]]...)
		for _, s := range governed[1:] {
			common = intersect(common, setOf(udr[s]...))
		}
		every = common.Prefixes()
	}
	n.TagRoutes = setOf(some...).Prefixes()
	// What the NSG guards: its subnets' ranges, its network's where one
	// is not known.
	var guarded []netip.Prefix
	for _, s := range governed {
		if !s.CIDR.IsValid() {
			guarded = nil
			break
		}
		guarded = append(guarded, s.CIDR)
	}
	if len(guarded) == 0 {
		guarded = own
	}
	allowTag := append(slices.Clone(vnet), n.TagRoutes...)
	denyTag := append(slices.Clone(vnet), every...)
	var out []NACLRule
	for _, rr := range raws {
		out = append(out, m.nsgRules(rr.r, rr.b, rr.where, allowTag, denyTag, own, guarded, tagAssumed)...)
	}
	for _, c := range allowTag {
		out = append(out, NACLRule{No: 65000, Allow: true, Proto: "all", From: 0, To: 65535, CIDR: c, Where: n.Addr + " default rule AllowVnetInBound", Assumed: tagAssumed})
	}
	for _, c := range allInternet {
		out = append(out, NACLRule{No: 65500, Allow: false, Proto: "all", From: 0, To: 65535, CIDR: c, Where: n.Addr + " default rule DenyAllInBound"})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].No < out[j].No })
	n.Ingress = out
}

// Azure rule IDs.
const (
	RuleNSGWorldOpen     = "AZ-NET-001"
	RuleAzExposedPort    = "AZ-NET-002"
	RuleAzInternetFacing = "AZ-NET-003"
	RuleAzLateral        = "AZ-NET-004"
	RuleNSGNoFlowLogs    = "AZ-LOG-001"
)

// azureCounterparts name the Azure rule of each rule that the reachability
// engine raises for both clouds, so that a finding on an Azure resource
// carries an Azure rule ID and remediation.
var azureCounterparts = map[string]string{
	RuleExposedPort:    RuleAzExposedPort,
	RuleInternetFacing: RuleAzInternetFacing,
	RuleLateral:        RuleAzLateral,
}

// ruleFor returns rule, or its Azure counterpart for an Azure endpoint.
func ruleFor(e *Endpoint, rule string) string {
	if az, ok := azureCounterparts[rule]; ok && e.Azure {
		return az
	}
	return rule
}

func azureRules() []Rule {
	return []Rule{
		{RuleNSGWorldOpen, High, "Network security group admits the whole internet beyond 80/443",
			"An inbound NSG rule allows the internet at large: every internet address, or public ranges wider than a /8 of IPv4 or a /13 of IPv6 (the most any one network holds), such as 0.0.0.0/1, 2600::/12 or a firewall range from 1.2.3.4 to 2.3.4.5; private ranges such as 10.0.0.0/8 hold no internet address (source *, Internet, Any or such ranges) on ports other than 80 and 443, before any deny of higher priority. The finding stands wherever the NSG is declared: critical when a path from the internet reaches a virtual machine behind it on an admin, data-store or well-known service port (those AWS-NET-003 names), high when a path reaches one on other ports alone or the NSG is attached but no path is proven, medium when the NSG is attached, no path is proven and it opens no such port (other ports are graded one step lower, as AWS-NET-011 is), or when nothing in the scanned code associates it, or when the ports are open only through a source read at its most permissive (a service tag not modelled, a prefix not known statically) and no path is found either: the NSG then may admit the internet, and the finding says why.",
			"Allow the port only from known ranges or application security groups, or reach machines through Azure Bastion or the moat gateway."},
		{RuleAzExposedPort, Critical, "Admin or data-store port of a machine or cluster reachable from the internet",
			"SSH, RDP, a database or another admin or data-store port of a virtual machine can be opened from internet addresses: the VM (or scale set, or AKS node pool placed in its subnet by vnet_subnet_id) has a public IP or sits behind a public load balancer that forwards the port (a SQL managed instance whose public data endpoint is on, public_data_endpoint_enabled, answers at its public address on 3342 alone), its virtual network routes to the internet (Azure's system route) and the NSGs of its subnet and network interface allow the port. The ports that the same addresses reach make one finding that lists them; it is critical when they are the internet at large (public ranges wider than a /8 of IPv4 or a /13 of IPv6, the most any one network holds) and medium, naming the range, when they are a bounded one such as an office's /24. An AKS cluster that is not private (private_cluster_enabled) is reported when its API server admits internet addresses: high when it admits the internet at large (api_server_access_profile.authorized_ip_ranges, or azurerm 3.x's api_server_authorized_ip_ranges, unset, 0.0.0.0/0 or not known statically) and medium when it admits bounded ranges alone: the Kubernetes API authenticates every request (Azure AD tokens, local accounts' client certificates, service account tokens; an anonymous one gets only what RBAC grants system:anonymous, by default the version and health endpoints), but its control plane then takes every address's attempts with stolen credentials and on the API server's flaws. The finding says so, and whether local accounts, static credentials that pass by Azure AD, are on (local_account_disabled not true), and carries a fix that names the cluster's settings. With Kubernetes RBAC off (role_based_access_control_enabled = false, or not known statically; under azurerm before 3.0, whose version the lock file or the version constraints of required_providers or the provider block hold, a role_based_access_control block with enabled = false, or none: that provider creates the cluster without RBAC) every request the API server authenticates is authorized for everything, and whether it takes anonymous requests is AKS's choice, written nowhere in the cluster's settings: read at its worst, an anonymous one is too, so credentials are not known to stand in the way and the exposure is graded as any other, critical from the internet at large; the finding says so.",
			"Remove the public IP and reach the machine through Azure Bastion, a VPN or the moat gateway; allow the port in the NSGs only from known ranges or application security groups."},
		{RuleAzInternetFacing, Medium, "Virtual machine reachable from the internet",
			"A virtual machine (not a load balancer or application gateway) has a public IP, or a public load balancer's inbound NAT rule forwarding a port to it alone, and its NSGs let internet traffic reach it on some port. A machine reached only through a balancer's load-balancing rules is behind the balancer, and is not reported here (an admin or data-store port those rules forward is AZ-NET-002). A container group (Azure Container Instances) of ip_address_type Public, the provider's default, is reported too: its public address forwards its exposed ports (exposed_port, else every port of its containers) with no NSG in the way; an admin or data-store port among them is AZ-NET-002.",
			"Put the machine behind an Azure Load Balancer, Application Gateway or the moat gateway, without a public IP of its own."},
		{RuleAzLateral, High, "Admin or data-store port reachable from a whole peered or VPN-connected network",
			"An SSH, RDP, database or cluster-store port of a virtual machine, or the port of a PostgreSQL or MySQL flexible server in its delegated subnet or of a data service's private endpoint, is reachable from the entire address space of a peered virtual network, or of a network behind a virtual network gateway that routes it there (an on-premises network of a site-to-site connection's local network gateway, the point-to-site clients' address pool, the network of a VNet-to-VNet connection's peer gateway; in the gateway's network and in the networks peered with it that use remote gateways), through NSG rules that allow VirtualNetwork (which holds those networks, as Azure's tag does) or the whole range, or no NSG at all: one compromised host there can pivot into this network. Reach from such a network is graded as AWS-NET-010 grades reach from a VPN.",
			"Allow the port only from the application security groups or narrow ranges of the hosts that need it, not VirtualNetwork or the whole address space of a peer or of the networks behind a VPN gateway."},
		{RuleNSGNoFlowLogs, Medium, "Network security group without flow logs",
			"No azurerm_network_watcher_flow_log names this NSG (or its virtual network), so the traffic it decides on is not recorded.",
			"Add an azurerm_network_watcher_flow_log with network_security_group_id (or target_resource_id) set, retention on, and traffic analytics if used."},
	}
}

// nsgOpen returns the port ranges, other than 80 and 443, on which the NSG
// lets the internet at large (wide) in, in priority order, and the
// addresses it lets in on them (nil: every one).
func nsgOpen(n *NACL, inet *Source) ([]portRange, []string, bool, *netipx.IPSet) {
	if n.Assumed != "" {
		// Rules not known statically: read as allowing everything, so
		// every port may be open.
		var out []portRange
		for _, proto := range []string{"tcp", "udp"} {
			out = append(out, portRange{proto, 0, 79}, portRange{proto, 81, 442}, portRange{proto, 444, 65535})
		}
		return out, []string{n.Assumed}, true, nil
	}
	var out []portRange
	var admitted netipx.IPSetBuilder
	var assumed []string
	onlyAssumed := true
	for _, proto := range []string{"tcp", "udp"} {
		cuts := map[int]bool{0: true, 65536: true, 80: true, 81: true, 443: true, 444: true}
		for _, r := range n.Ingress {
			cuts[r.From], cuts[r.To+1] = true, true
		}
		bounds := make([]int, 0, len(cuts))
		for c := range cuts {
			bounds = append(bounds, c)
		}
		sort.Ints(bounds)
		for i := 0; i+1 < len(bounds); i++ {
			lo, hi := bounds[i], bounds[i+1]-1
			if lo == 80 && hi == 80 || lo == 443 && hi == 443 || lo > 65535 {
				continue
			}
			got, hits, _ := naclPass(n.Ingress, proto, lo, inet.Set)
			if empty(got) || !wide(inet.Set, got, nil) {
				continue
			}
			if b := naclBound(n.Ingress, proto, lo, inet.Set); b != nil && !wide(inet.Set, b.Known, b.Bits) {
				continue // only ranges of known size somewhere: not the world
			}
			admitted.AddSet(got)
			for _, h := range hits {
				if strings.HasPrefix(h, setAside) {
					continue
				}
				if _, why, ok := strings.Cut(h, " ("); ok && strings.Contains(h, "assumed") {
					assumed = append(assumed, strings.TrimSuffix(why, ")"))
				} else {
					onlyAssumed = false
				}
			}
			if k := len(out); k > 0 && out[k-1].proto == proto && out[k-1].to+1 == lo {
				out[k-1].to = hi
				continue
			}
			out = append(out, portRange{proto, lo, hi})
		}
	}
	set, _ := admitted.IPSet()
	return out, dedup(assumed), onlyAssumed, set
}

func (m *Model) azureNSGRules(fs *findings) {
	inet := m.Internet()
	users := map[*NACL][]*Endpoint{}
	nicUsers := map[*NACL]bool{}
	for _, e := range m.Endpoints {
		if !e.Azure {
			continue
		}
		for _, s := range e.Subnets {
			if s.NACL != nil {
				users[s.NACL] = append(users[s.NACL], e)
			}
		}
		for _, g := range e.NSGs {
			users[g] = append(users[g], e)
			nicUsers[g] = true
		}
	}
	attached := map[*NACL]bool{}
	for _, s := range m.Subnets {
		if s.NACL != nil {
			attached[s.NACL] = true
		}
	}
	for _, n := range m.NACLs {
		if !n.Stateful {
			continue
		}
		if len(n.FlowLogs) == 0 && (n.VPC == nil || len(n.VPC.FlowLogs) == 0) {
			fs.add(RuleNSGNoFlowLogs, n.Res, nil, "no enabled azurerm_network_watcher_flow_log names this network security group or its virtual network")
		}
		open, assumed, onlyAssumed, admitted := nsgOpen(n, &inet)
		open = minusRanges(open, m.gatewayInfraPorts(n, nicUsers[n]))
		if len(open) == 0 {
			continue
		}
		var texts []string
		for _, o := range open {
			texts = append(texts, portText(o.proto, o.from, o.to))
		}
		what := strings.Join(texts, ", ")
		if coversFamily(inet.Set, intersect(setOf(n.TagRoutes...), inet.Set)) {
			// Not assumed: Azure's tag holds the routes' prefixes.
			var ps []string
			for _, p := range n.TagRoutes {
				ps = append(ps, p.String())
			}
			what += " (its VirtualNetwork, as Azure has it, holds the prefixes of the routes of the route tables of the subnets it guards: " + strings.Join(ps, ", ") + ")"
		}
		if len(assumed) > 0 {
			what += " (read so where " + strings.Join(assumed, "; ") + ")"
		}
		admits := "admits"
		if onlyAssumed {
			admits = "may admit" // every port open only through what was assumed
		}
		// Service ports first: a machine reached on one is critical,
		// one reached on other ports alone is graded as AWS-NET-011 is.
		svc, other := splitServices(open)
		svc, other = ownPorts(svc, other, users[n])
		done, reached := false, false
		var blocked *Result
	probe:
		for i, ranges := range [][]portRange{svc, other} {
			for _, e := range users[n] {
				for _, o := range ranges {
					for _, p := range o.probe(e) {
						res := m.Reach(inet, e, o.proto, p)
						reached = reached || res.Reachable
						if res.Reachable && len(res.Assumed) == 0 {
							sev, why := Critical, fmt.Sprintf("%s %s is reached from the internet on %s", e.Kind, e.Addr, portText(o.proto, p, p))
							if i == 1 {
								sev, why = appPortSeverity(sev, why)
							}
							fs.addSev(RuleNSGWorldOpen, sev, n.Res, res.Path, "admits %s on %s; %s", m.worldText(admitted), what, why)
							done = true
							break probe
						}
						if blocked == nil {
							r := res
							blocked = &r
						}
					}
				}
			}
		}
		switch {
		case done:
		case len(users[n]) > 0 || attached[n] || n.SubnetsUnknown != "":
			why := "it is associated, but no path from the internet to a machine behind it is proven"
			if len(users[n]) == 0 && !attached[n] {
				why = "it is " + n.SubnetsUnknown + ", whose machines are not known: no path from the internet to one is proven"
			}
			var path []Hop
			if blocked != nil && !blocked.Reachable {
				path = blocked.Path
				why += ": " + blocked.Path[len(blocked.Path)-1].String()
			}
			sev := High
			if onlyAssumed && !reached {
				sev = Medium // neither the source nor a path is known, as for a security group (openGroup)
			}
			if len(svc) == 0 {
				sev, why = appPortSeverity(sev, why)
			}
			fs.addSev(RuleNSGWorldOpen, sev, n.Res, path, "%s %s on %s; %s", admits, m.worldText(admitted), what, why)
		default:
			fs.addSev(RuleNSGWorldOpen, Medium, n.Res, nil, "%s %s on %s; nothing in the scanned code associates it, so wherever it is associated the internet reaches those ports", admits, m.worldText(admitted), what)
		}
	}
}

// applianceRoute is a route of an Azure route table whose next hop is a
// virtual appliance: traffic for dest (invalid when not known statically)
// goes to the appliance at via, by the route written at where.
type applianceRoute struct {
	dest       netip.Prefix
	via, where string
}

// applianceRoutes reads the routes whose next hop is a virtual appliance
// (an Azure Firewall or a network virtual appliance, most often in a hub
// between spokes), or not known statically, of the tables associated with
// subnets (m.appliance), and notes each: the appliance's own rules are not
// read, so the transit is read as forwarding (transitSources) and the path
// says so.
func (m *Model) applianceRoutes(byType map[string][]*tf.Resource) {
	tables := map[string][]applianceRoute{}
	each := func(r *tf.Resource, table string, b map[string]any) {
		hop := str(b, "next_hop_type")
		if !unknown(b, "next_hop_type") && !strings.EqualFold(hop, "VirtualAppliance") {
			return
		}
		if unknown(b, "next_hop_type") {
			hop = "not known statically"
		}
		dest, via := str(b, "address_prefix"), str(b, "next_hop_in_ip_address")
		p, err := netip.ParsePrefix(strings.TrimSpace(dest))
		if unknown(b, "address_prefix") || err != nil {
			dest, p = "a range not known statically", netip.Prefix{}
		}
		switch _, from := unknownRefs(b, "next_hop_in_ip_address"); {
		case len(from) > 0:
			// Assigned by the provider: the address of the resource
			// the reference takes it from (a firewall's private IP).
			via = "the address of " + strings.Join(from, " or ") + ", not known statically"
		case unknown(b, "next_hop_in_ip_address"):
			via = "an address not known statically"
		case via == "":
			via = "no address given"
		}
		m.note(r, "route %s to %s: next hop %s (%s): the appliance's rules are not read, so what it forwards between networks is not evaluated: read as forwarding", str(b, "name"), dest, hop, via)
		tables[table] = append(tables[table], applianceRoute{dest: p.Masked(), via: via, where: fmt.Sprintf("%s routes %s to the virtual appliance at %s", table, dest, via)})
	}
	m.eachRoute(byType, each)
	m.appliance = map[*Subnet][]applianceRoute{}
	for s, ts := range m.subnetTables(byType) {
		for _, t := range ts {
			m.appliance[s] = append(m.appliance[s], tables[t]...)
		}
	}
}

// subnetTables returns, by subnet, the route tables associated with it: by
// an azurerm_subnet_route_table_association, or named on the subnet itself
// (route_table_id, as azurerm before 2.0 and a subnet written through the
// AzAPI provider name it).
func (m *Model) subnetTables(byType map[string][]*tf.Resource) map[*Subnet][]string {
	out := map[*Subnet][]string{}
	for _, r := range byType["azurerm_subnet_route_table_association"] {
		t := m.addrOf("azurerm_route_table", m.ref(r.Values, "route_table_id"))
		for _, s := range m.subnetsOf([]string{str(r.Values, "subnet_id")}) {
			out[s] = append(out[s], t)
		}
	}
	for _, r := range byType["azurerm_subnet"] {
		if s := m.subnets[r.Address]; s != nil && has(r.Values, "route_table_id") {
			out[s] = append(out[s], m.addrOf("azurerm_route_table", m.ref(r.Values, "route_table_id")))
		}
	}
	return out
}

// eachRoute calls each on every route of an Azure route table, written
// inline (r the table) or as an azurerm_route (r the route), with the
// address of its table.
func (m *Model) eachRoute(byType map[string][]*tf.Resource, each func(r *tf.Resource, table string, b map[string]any)) {
	for _, r := range byType["azurerm_route_table"] {
		for _, b := range blocks(r.Values, "route") {
			each(r, r.Address, b)
		}
	}
	for _, r := range byType["azurerm_route"] {
		each(r, m.addrOf("azurerm_route_table", m.ref(r.Values, "route_table_name")), r.Values)
	}
}

// routePrefixes returns, by subnet, the address prefixes of the routes of
// the route table associated with it (written inline or as azurerm_route),
// whatever their next hop: Azure's VirtualNetwork tag holds them
// (finishNSG). A prefix not known statically is left out, and so is a
// default route (0.0.0.0/0, ::/0, forced tunnelling to a firewall): in the
// tag it would make AllowVnetInBound admit every address, but what the
// internet sends a machine whose replies go to an appliance gets no
// answer (the appliance holds no state for it), and a firewall's DNAT
// arrives from the firewall's own, private address.
func (m *Model) routePrefixes(byType map[string][]*tf.Resource) map[*Subnet][]netip.Prefix {
	tables := map[string][]netip.Prefix{}
	m.eachRoute(byType, func(_ *tf.Resource, table string, b map[string]any) {
		if p, err := netip.ParsePrefix(strings.TrimSpace(str(b, "address_prefix"))); err == nil && !unknown(b, "address_prefix") && p.Bits() > 0 {
			tables[table] = append(tables[table], p.Masked())
		}
	})
	out := map[*Subnet][]netip.Prefix{}
	for s, ts := range m.subnetTables(byType) {
		for _, t := range ts {
			out[s] = append(out[s], tables[t]...)
		}
	}
	return out
}

// transitSources returns the subnets of other networks that reach s
// through an appliance: a subnet whose table sends s's range (or a range
// not known statically) to a virtual appliance, in a network that is not
// joined to s's but shares a peered network (the hub) with it. The
// appliance's rules are not read: the transit is read as forwarding, and
// its return traffic as going back through it.
func (m *Model) transitSources(s *Subnet) []peerSource {
	if s.VPC == nil || !s.CIDR.IsValid() {
		return nil
	}
	linked := map[*VPC]bool{s.VPC: true}
	for _, v := range m.linkedVPCs(s.VPC) {
		linked[v] = true
	}
	var out []peerSource
	for _, o := range m.Subnets {
		if o.VPC == nil || linked[o.VPC] {
			continue
		}
		hub := m.sharedPeer(o.VPC, s.VPC)
		if hub == nil {
			continue
		}
		for _, r := range m.appliance[o] {
			if r.dest.IsValid() && (!r.dest.Overlaps(s.CIDR) || r.dest.Bits() > s.CIDR.Bits()) {
				continue
			}
			src := m.SubnetSource(o)
			why := fmt.Sprintf("%s, in %s, peered with both %s and %s", r.where, hub.Addr, o.VPC.Addr, s.VPC.Addr)
			src.Transit = why
			assumed := []string{r.where + ": the appliance's rules are not evaluated: assumed to forward " + o.Addr + " to " + s.Addr + " and back"}
			assumed = append(assumed, m.forwardedOff(hub, s.VPC, o.VPC)...)
			out = append(out, peerSource{Source: src, Hop: Hop{Kind: "appliance", Addr: "virtual appliance at " + r.via, Detail: why}, Assumed: assumed})
			break
		}
	}
	return out
}

// forwardedOff names the peerings of spokes with hub that do not let in
// what the hub's appliance forwards (allow_forwarded_traffic, false unless
// set): the way there and the way back. Azure documents such traffic as
// dropped, but does not drop it in every case, so the transit is kept and
// this says why.
func (m *Model) forwardedOff(hub *VPC, spokes ...*VPC) []string {
	var out []string
	for _, v := range spokes {
		for _, p := range m.Peerings {
			if p.A != v || p.B != hub || p.Refused || p.Res == nil || !strings.HasPrefix(p.Res.Type, "azurerm") {
				continue
			}
			switch {
			case unknown(p.Res.Values, "allow_forwarded_traffic"):
				out = append(out, p.Addr+": allow_forwarded_traffic is not known statically: read as letting in what the appliance forwards")
			case !boolean(p.Res.Values, "allow_forwarded_traffic", false):
				out = append(out, p.Addr+" leaves allow_forwarded_traffic off: Azure documents traffic the appliance forwards into "+v.Addr+" as dropped there, but does not drop it in every case, so it is not relied on")
			}
		}
	}
	return out
}

// sharedPeer returns a network that a peering joins to both a and b, nil
// when there is none.
func (m *Model) sharedPeer(a, b *VPC) *VPC {
	for _, v := range m.linkedVPCs(a) {
		if v == b {
			continue
		}
		for _, w := range m.linkedVPCs(b) {
			if w == v {
				return v
			}
		}
	}
	return nil
}

// ifaceSubnets returns the subnets an ip_configuration's subnet_id names:
// known, the one it names, or, for one not known statically whose
// expression can only name subnets of the configuration
// (azurerm_subnet.app[count.index].id under a count not known
// statically, or an output or local listing them), maybe, those subnets,
// any of which it may be. One that may name anything (a variable without
// a value, a data source) is neither: the interface is then read as in a
// subnet outside the scanned code, routed to the internet without an NSG
// (reachAzureUnplaced).
func (m *Model) ifaceSubnets(ipc map[string]any) (known, maybe []*Subnet) {
	known = m.subnetsOf(strList(ipc, "subnet_id"))
	if unk, from := unknownRefs(ipc, "subnet_id"); unk {
		maybe = m.subnetsFrom(from)
	}
	return known, maybe
}

// maybeSubnets records on e the subnets what (an interface of it, its
// gateway configuration) may be in, its subnet not known statically
// (ifaceSubnets), to be tried each, and says so.
func maybeSubnets(e *Endpoint, what string, maybe []*Subnet) {
	if len(maybe) == 0 {
		return
	}
	var names []string
	for _, s := range maybe {
		if !slices.Contains(e.SubnetsMaybe, s) {
			e.SubnetsMaybe = append(e.SubnetsMaybe, s)
		}
	}
	for _, s := range e.SubnetsMaybe {
		names = append(names, s.Addr)
	}
	e.SubnetsUnknown = "the subnet of " + what + " is not known statically: assumed to be any of " + strings.Join(names, ", ")
}

// networkOf returns the virtual network of an interface in the subnets
// known, or, when none is known, the one every subnet it may be in
// (maybe) shares; nil when they are in several.
func networkOf(known, maybe []*Subnet) *VPC {
	if len(known) > 0 {
		return known[0].VPC
	}
	var v *VPC
	for _, s := range maybe {
		if s.VPC == nil || v != nil && s.VPC != v {
			return nil
		}
		v = s.VPC
	}
	return v
}

// privateRanges are the ranges a network numbered privately takes its
// addresses from (RFC 1918 and the shared space of RFC 6598).
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
}

// azureSpaceAssumed gives each virtual network whose address space is not
// known statically the ranges it is read to hold (VPC.SpaceAssumed): every
// private range and the known ranges of its subnets. Its subnets whose
// ranges are not known send from those, and its VirtualNetwork tag holds
// them, so that an NSG admitting the tag admits its own network's
// machines (a gateway in another of its subnets) and no internet address;
// the rules that read it say so (spaceAssumedText). CIDRs stays empty:
// routes and peerings are not made of a guess.
func (m *Model) azureSpaceAssumed(vnets map[string]*VPC) {
	for _, v := range vnets {
		if len(v.CIDRs) > 0 {
			continue
		}
		v.SpaceAssumed = slices.Clone(privateRanges)
		for _, s := range m.Subnets {
			if s.VPC == v && s.CIDR.IsValid() {
				v.SpaceAssumed = append(v.SpaceAssumed, s.CIDR)
			}
		}
	}
}

// spaceAssumedText says what an NSG rule reading the VirtualNetwork tag of
// v, whose address space is not known statically, assumed.
func spaceAssumedText(v *VPC) string {
	return "the address space of " + v.Addr + " is not known statically: the VirtualNetwork tag is assumed to hold every private range and its subnets' known ranges"
}

// scaleSetIPStandard reports whether the instance public IPs of a scale
// set's public_ip_address block are known to be of the Standard SKU: its
// sku_name names it, or, with none, public_ip_prefix_id names a prefix of
// the project that is (prefixes, by address).
func (m *Model) scaleSetIPStandard(pip map[string]any, prefixes map[string]bool) bool {
	switch {
	case unknown(pip, "sku_name"):
		return false
	case has(pip, "sku_name"):
		return strings.HasPrefix(strings.ToLower(str(pip, "sku_name")), "standard")
	case !has(pip, "public_ip_prefix_id") || unknown(pip, "public_ip_prefix_id"):
		return false
	}
	return prefixes[m.addr(str(pip, "public_ip_prefix_id"))]
}
