package check

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// proxyPorts are the ports an RDS proxy answers on, by engine family.
var proxyPorts = map[string]int{"MYSQL": 3306, "POSTGRESQL": 5432, "SQLSERVER": 1433}

// sourceOnly is the endpoint of kind that r makes, which takes no
// connection at all (Endpoint.SourceOnly).
func sourceOnly(r *tf.Resource, kind string) *Endpoint {
	return &Endpoint{Addr: r.Address, Kind: kind, Res: r, SourceOnly: true, Listens: func(string, int) bool { return false }}
}

// listensOn is Endpoint.Listens for a service that answers on ports alone.
func listensOn(ports []int) func(string, int) bool {
	return func(_ string, port int) bool { return slices.Contains(ports, port) }
}

// portKnown reports whether r's port is known: set, or its engine's. A
// port not known statically may be any, whatever the engine.
func portKnown(r *tf.Resource) bool {
	if unknown(r.Values, "port") {
		return false
	}
	_, engine := tf.EnginePort(str(r.Values, "engine"))
	return num(r.Values, "port", 0) > 0 || engine
}

func enginePort(r *tf.Resource, def int) int {
	if p := num(r.Values, "port", 0); p > 0 {
		return p
	}
	if p, ok := tf.EnginePort(str(r.Values, "engine")); ok {
		return p
	}
	return def
}

func (m *Model) subnetsOf(refs []string) []*Subnet {
	var out []*Subnet
	for _, s := range refs {
		if sub := m.subnets[m.addr(s)]; sub != nil {
			out = append(out, sub)
		}
	}
	return out
}

// sgsIn returns the security groups that attrs of vals name, and why they
// may be any group. An element not known statically that can only be a
// group of the project (an index not known statically into counted
// groups) is each group it may be, all read as attached: together they
// admit the most any of them does. One that may be any group (a variable
// without a value, an ID computed elsewhere) makes why say so: the
// endpoint's groups are then read as admitting everything (SGsUnknown).
func (m *Model) sgsIn(vals map[string]any, attrs ...string) (out []*SG, why string) {
	for _, a := range attrs {
		out = append(out, m.sgsOf(strList(vals, a))...)
		unk, from := unknownRefs(vals, a)
		if !unk {
			continue
		}
		if gs := instancesOf(m, from, m.SGs, func(g *SG) *tf.Resource { return g.Res }); gs != nil {
			for _, g := range gs {
				m.sgUsed[g.Addr] = true
			}
			out = append(out, gs...)
			continue
		}
		if why == "" {
			why = a + " not known statically: assumed to admit every address"
		}
	}
	return out, why
}

// attachSGs adds to e the security groups that attrs of vals name
// (sgsIn).
func (m *Model) attachSGs(e *Endpoint, vals map[string]any, attrs ...string) {
	gs, why := m.sgsIn(vals, attrs...)
	e.SGs = append(e.SGs, gs...)
	if why != "" && e.SGsUnknown == "" {
		e.SGsUnknown = why
	}
}

// sgsOf returns the security groups refs name. A group no group of the
// scanned code is (an ID of one made elsewhere) may admit anything: it is
// read as admitting every address on every port, and said so.
func (m *Model) sgsOf(refs []string) []*SG {
	var out []*SG
	for _, s := range refs {
		a := m.addr(s)
		m.sgUsed[a] = true
		switch g := m.sgs[a]; {
		case g != nil:
			out = append(out, g)
		case a == "default":
			// The name of every VPC's default group, which an endpoint
			// naming no group has too (sgHop).
		case a != "":
			out = append(out, m.sgElsewhere(a))
		}
	}
	return out
}

// sgElsewhere is the stand-in for a security group that is not in the
// scanned code, one for each ID.
func (m *Model) sgElsewhere(id string) *SG {
	if g := m.elsewhere[id]; g != nil {
		return g
	}
	why := fmt.Sprintf("security group %q is not in the scanned code: assumed to admit every address", id)
	open := SGRule{Proto: "all", From: 0, To: 65535, Assumed: why, Where: id}
	g := &SG{Addr: id, Ingress: []SGRule{open}, Egress: []SGRule{open}}
	if m.elsewhere == nil {
		m.elsewhere = map[string]*SG{}
	}
	m.elsewhere[id] = g
	return g
}

// unknownRefs tells whether attr k of vals, a reference or a list of
// them, holds one not known statically, and the resources such a one can
// only come from (tf.Unknown.From); from is nil when it may be anything.
func unknownRefs(vals map[string]any, k string) (unk bool, from []string) {
	var us []tf.Unknown
	switch v := vals[k].(type) {
	case tf.Unknown:
		us = append(us, v)
	case []any:
		for _, x := range v {
			switch x := x.(type) {
			case tf.Unknown:
				us = append(us, x)
			case []any:
				// A list in the list, as Terraform 0.11 wrote one
				// (["${var.subnets}"]): its elements not known
				// statically are unknown here too, and a known one is
				// no ID that can be read.
				for _, y := range x {
					u, ok := y.(tf.Unknown)
					if !ok {
						return true, nil
					}
					us = append(us, u)
				}
			case map[string]any:
				return true, nil
			}
		}
	}
	for _, u := range us {
		if len(u.From) == 0 {
			return true, nil
		}
		from = append(from, u.From...)
	}
	return len(us) > 0, from
}

// refAddrs returns the addresses of the resources that attr of vals names:
// each one known, and for one not known statically every instance of the
// resources its expression can only name (element(x[*].id, count.index)
// under a count not known statically: any of x's), taken from all. anyRef
// reports one that may name anything.
func (m *Model) refAddrs(vals map[string]any, attr string, all []*tf.Resource) (out []string, anyRef bool) {
	for _, s := range strList(vals, attr) {
		if a := m.addr(s); a != "" {
			out = append(out, a)
		}
	}
	unk, from := unknownRefs(vals, attr)
	if !unk {
		return out, false
	}
	rs := instancesOf(m, from, all, func(r *tf.Resource) *tf.Resource { return r })
	for _, r := range rs {
		out = append(out, r.Address)
	}
	return out, rs == nil
}

// subnetsIn returns the subnets that attr of vals names. One not known
// statically may be any of those its expression names, else any subnet:
// recorded on e (SubnetsUnknown) for reach to try, and said so. An Azure
// endpoint's any subnet is any Azure subnet of the configuration, each
// tried (a subnet outside it is reached from nothing modelled).
func (m *Model) subnetsIn(e *Endpoint, vals map[string]any, attr string) []*Subnet {
	subs := m.subnetsOf(strList(vals, attr))
	unk, from := unknownRefs(vals, attr)
	if !unk {
		return subs
	}
	if found, rest := m.defaultSubnetsFrom(from); len(found) > 0 && len(rest) == 0 && !m.defaultSubnetsPrivate(found[0].VPC) {
		// Every subnet it may be is a default subnet of the default VPC,
		// and every one of those is alike.
		return append(subs, found...)
	}
	maybe := m.subnetsFrom(from)
	if maybe == nil && e.Azure {
		for _, s := range m.Subnets {
			if s.Res != nil && strings.HasPrefix(s.Res.Type, "azurerm_") {
				maybe = append(maybe, s)
			}
		}
		if maybe != nil {
			e.SubnetsMaybe = append(e.SubnetsMaybe, maybe...)
			e.SubnetsUnknown = attr + " has a subnet not known statically: assumed to be any subnet of the configuration"
			return subs
		}
	}
	if maybe == nil {
		e.SubnetsAny = true
		e.SubnetsUnknown = attr + " has a subnet not known statically: assumed to be any subnet"
		return subs
	}
	names := make([]string, len(maybe))
	for i, s := range maybe {
		names[i] = s.Addr
	}
	e.SubnetsMaybe = append(e.SubnetsMaybe, maybe...)
	if !e.SubnetsAny {
		e.SubnetsUnknown = attr + " has a subnet not known statically: assumed to be any of " + strings.Join(names, ", ")
	}
	return subs
}

// groupSubnets resolves a subnet group named by attr to its subnets; one
// of its subnets not known statically is recorded on e (subnetsIn). A
// resource that names no group is in AWS's default group, the default
// VPC's default subnets, which Unplaced says. A cluster's instance reads
// its cluster's group after its own: one that names a group clears what
// its instance said.
func (m *Model) groupSubnets(e *Endpoint, r *tf.Resource, attr string) []*Subnet {
	if !has(r.Values, attr) {
		if len(e.Subnets) == 0 {
			e.Unplaced = inDefaultSubnets
		}
		return nil
	}
	e.Unplaced = ""
	g := m.lookup(m.ref(r.Values, attr))
	if g == nil {
		return nil
	}
	return m.subnetsIn(e, g.Values, "subnet_ids")
}

// launchedSubnets is subnetsIn for the subnets attr of vals names, or,
// when it names none, the subnet the network interface of launch template
// t names (templateInterface).
func (m *Model) launchedSubnets(e *Endpoint, t *tf.Resource, vals map[string]any, attr string) []*Subnet {
	if ni := templateInterface(t); ni != nil && !has(vals, attr) {
		return m.subnetsIn(e, ni, "subnet_id")
	}
	return m.subnetsIn(e, vals, attr)
}

// templateSGs adds to e the security groups of launch template or
// configuration t (nil: none): a template's network interfaces' too. One
// not known statically may name any group: e's are then read as admitting
// everything.
func (m *Model) templateSGs(e *Endpoint, t *tf.Resource, known bool) {
	switch {
	case !known:
		if e.SGsUnknown == "" {
			e.SGsUnknown = templateNotKnown + ": its security groups are assumed to admit every address"
		}
	case t == nil:
	case t.Type == "aws_launch_configuration":
		m.attachSGs(e, t.Values, "security_groups")
	default:
		m.attachSGs(e, t.Values, "vpc_security_group_ids")
		for _, ni := range blocks(t.Values, "network_interfaces") {
			m.attachSGs(e, ni, "security_groups")
		}
	}
}

// inDefaultSubnets says where a data store that names no subnet group is.
const inDefaultSubnets = "no subnet group is named: AWS places it in default subnets of the default VPC, which AWS makes routed to an internet gateway, with a network ACL that allows all; the default VPC is not in the scanned code, so that is assumed"

var allInternet = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

func (m *Model) buildEndpoints(byType map[string][]*tf.Resource) {
	for _, r := range byType["aws_default_subnet"] {
		if unknown(r.Values, "map_public_ip_on_launch") || has(r.Values, "map_public_ip_on_launch") && !boolean(r.Values, "map_public_ip_on_launch", true) {
			if m.privateDefaults == nil {
				m.privateDefaults = map[string]bool{}
			}
			m.privateDefaults[m.configs[r.Address]] = true
			if az := str(r.Values, "availability_zone"); az != "" {
				if m.defaultAZs == nil {
					m.defaultAZs = map[string]string{}
				}
				m.defaultAZs[az] = "off"
				if unknown(r.Values, "map_public_ip_on_launch") {
					m.defaultAZs[az] = "unknown"
				}
			}
		}
	}
	for _, r := range byType["aws_eip"] {
		for _, k := range []string{"instance", "network_interface"} {
			if v := str(r.Values, k); v != "" {
				m.eips[m.addr(v)] = true
			}
		}
	}
	for _, r := range byType["aws_eip_association"] {
		for _, k := range []string{"instance_id", "network_interface_id"} {
			if v := str(r.Values, k); v != "" {
				m.eips[m.addr(v)] = true
			}
		}
	}
	add := func(e *Endpoint) { m.Endpoints = append(m.Endpoints, e) }
	m.markSGRefs(byType)
	// An Elastic IP of an instance is its primary interface's: an
	// interface the instance attaches at device index 0.
	for _, r := range byType["aws_instance"] {
		for _, ni := range blocks(r.Values, "network_interface") {
			if num(ni, "device_index", -1) == 0 && m.eips[r.Address] {
				m.eips[m.addr(str(ni, "network_interface_id"))] = true
			}
		}
	}
	for _, r := range byType["aws_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "instance", Res: r}
		t, known := m.launchTemplate(block(r.Values, "launch_template"))
		e.Subnets = m.launchedSubnets(e, t, r.Values, "subnet_id")
		e.SGs, e.SGsUnknown = m.sgsIn(r.Values, "vpc_security_group_ids", "security_groups")
		if !has(r.Values, "vpc_security_group_ids") && !has(r.Values, "security_groups") {
			m.templateSGs(e, t, known) // its own groups replace the template's
		}
		// An interface it attaches is an endpoint of its own, with its
		// own groups and address.
		if why, _, assumed := m.instancePublicIP(r); why != "" && !has(r.Values, "network_interface") {
			e.Public, e.PublicAssumed, e.Why = true, assumed, why
		} else if why == "" && unknown(r.Values, "associate_public_ip_address") {
			e.Public, e.PublicAssumed, e.Why = true, true, "associate_public_ip_address not known statically: assumed true"
		}
		if !has(r.Values, "network_interface") {
			ipv6Address(e, r.Values)
			if !has(r.Values, "subnet_id") && templateInterface(t) == nil {
				e.Unplaced = noSubnetNamed
			}
		}
		add(e)
	}
	// A group attached to an interface by a resource of its own. A group
	// not known statically may be any; an interface not known statically
	// may be any of those its expression names (else any): each such
	// interface's groups are read as admitting everything.
	eniSGs, eniSGsUnknown := map[string][]string{}, map[string]string{}
	for _, r := range byType["aws_network_interface_sg_attachment"] {
		eni := m.addr(m.ref(r.Values, "network_interface_id"))
		if eni == "" {
			enis := instancesOf(m, unknownFrom(r.Values, "network_interface_id"), byType["aws_network_interface"], func(r *tf.Resource) *tf.Resource { return r })
			if enis == nil {
				enis = byType["aws_network_interface"]
			}
			for _, n := range enis {
				eniSGsUnknown[n.Address] = r.Address + " attaches a security group to a network interface not known statically: assumed to attach it here, admitting every address"
			}
			continue
		}
		if unknown(r.Values, "security_group_id") {
			eniSGsUnknown[eni] = r.Address + ": security_group_id not known statically: assumed to admit every address"
			continue
		}
		eniSGs[eni] = append(eniSGs[eni], str(r.Values, "security_group_id"))
	}
	// The instance that attaches an interface, by a network_interface
	// block of its own or an attachment.
	owner := map[string]string{}
	for _, r := range byType["aws_instance"] {
		for _, ni := range blocks(r.Values, "network_interface") {
			owner[m.addr(str(ni, "network_interface_id"))] = r.Address
		}
	}
	for _, r := range byType["aws_network_interface_attachment"] {
		if i := m.lookup(str(r.Values, "instance_id")); i != nil && i.Type == "aws_instance" {
			owner[m.addr(str(r.Values, "network_interface_id"))] = i.Address
		}
	}
	for _, r := range byType["aws_network_interface"] {
		e := &Endpoint{Addr: r.Address, Kind: "eni", Res: r, SGs: m.sgsOf(eniSGs[r.Address]), SGsUnknown: eniSGsUnknown[r.Address], For: owner[r.Address]}
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
		m.attachSGs(e, r.Values, "security_groups")
		if m.eips[r.Address] {
			e.Public, e.Why = true, "an Elastic IP is associated"
		}
		ipv6Address(e, r.Values)
		add(e)
	}
	templates := map[string]*tf.Resource{}
	for _, r := range byType["aws_launch_template"] {
		templates[r.Address] = r
		for _, s := range strList(r.Values, "vpc_security_group_ids") {
			m.sgUsed[m.addr(s)] = true
		}
		for _, ni := range blocks(r.Values, "network_interfaces") {
			for _, s := range strList(ni, "security_groups") {
				m.sgUsed[m.addr(s)] = true
			}
		}
	}
	for _, r := range byType["aws_autoscaling_group"] {
		e := &Endpoint{Addr: r.Address, Kind: "asg", Res: r}
		t, known := m.asgTemplate(r)
		e.Subnets = m.launchedSubnets(e, t, r.Values, "vpc_zone_identifier")
		if !has(r.Values, "vpc_zone_identifier") && !unknown(r.Values, "vpc_zone_identifier") && templateInterface(t) == nil && known {
			// Its availability_zones' default subnets.
			e.Unplaced = noSubnetNamed
		}
		m.templateSGs(e, t, known)
		if why, _, assumed := m.asgPublicIP(r); why != "" {
			e.Public, e.PublicAssumed, e.Why = true, assumed, why
		}
		add(e)
	}
	m.fleets(byType, add)
	listeners, anyListener := m.listeners(byType)
	protocols := m.listenerProtocols(byType)
	forwards := m.forwards(byType)
	for _, typ := range []string{"aws_lb", "aws_alb", "aws_elb"} {
		for _, r := range byType[typ] {
			e := &Endpoint{Addr: r.Address, Kind: "lb", Gateway: true, Res: r}
			e.Subnets = m.subnetsIn(e, r.Values, "subnets")
			m.attachSGs(e, r.Values, "security_groups")
			// A classic load balancer's listener on a port not known
			// statically may be on any port.
			lbPortUnknown := blocksUnknown(r.Values, "listener")
			for _, l := range blocks(r.Values, "listener") { // aws_elb
				lbPortUnknown = lbPortUnknown || unknown(l, "lb_port")
				listeners[r.Address] = append(listeners[r.Address], num(l, "lb_port", 0))
				if p := strings.ToUpper(str(l, "lb_protocol")); p == "HTTP" || p == "HTTPS" {
					e.HTTPPorts = setPort(e.HTTPPorts, num(l, "lb_port", 0), p)
				}
			}
			if ports := listeners[r.Address]; !lbPortUnknown && (len(ports) > 0 || !anyListener) {
				sort.Ints(ports)
				e.Ports = ports
				e.Listens = listensOn(ports)
			}
			switch t := str(r.Values, "load_balancer_type"); {
			case t == "network":
				e.Forwards = forwards[r.Address]
			case r.Type != "aws_elb" && !unknown(r.Values, "load_balancer_type") && (t == "" || t == "application"):
				for _, p := range listeners[r.Address] {
					e.HTTPPorts = setPort(e.HTTPPorts, p, protocols[r.Address][p])
				}
			}
			for _, sm := range blocks(r.Values, "subnet_mapping") {
				e.Subnets = append(e.Subnets, m.subnetsIn(e, sm, "subnet_id")...)
			}
			if r.Type == "aws_elb" && !has(r.Values, "subnets") {
				// Its availability_zones' default subnets.
				e.Unplaced = noSubnetNamed
			}
			if !boolean(r.Values, "internal", false) {
				e.Public, e.Why = true, "internet-facing load balancer"
			}
			add(e)
		}
	}
	for _, r := range byType["aws_db_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "db", DataTier: true, Res: r, Ports: []int{enginePort(r, 5432)}}
		e.Subnets = m.groupSubnets(e, r, "db_subnet_group_name")
		m.attachSGs(e, r.Values, "vpc_security_group_ids")
		if portKnown(r) {
			e.Listens = listensOn(e.Ports)
		}
		publicFlag(e, r.Values, "publicly_accessible")
		add(e)
	}
	clusters := map[string]*tf.Resource{}
	withInstances := map[string]bool{}
	for _, r := range byType["aws_rds_cluster"] {
		clusters[r.Address] = r
		m.sgsOf(strList(r.Values, "vpc_security_group_ids"))
	}
	for _, r := range byType["aws_rds_cluster_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "db", DataTier: true, Res: r}
		e.Subnets = m.groupSubnets(e, r, "db_subnet_group_name")
		if c := clusters[m.addr(str(r.Values, "cluster_identifier"))]; c != nil {
			e.For = c.Address
			withInstances[c.Address] = true
			m.attachSGs(e, c.Values, "vpc_security_group_ids")
			e.Ports = []int{enginePort(c, 3306)}
			if portKnown(c) {
				e.Listens = listensOn(e.Ports)
			}
			if len(e.Subnets) == 0 {
				e.Subnets = m.groupSubnets(e, c, "db_subnet_group_name")
			}
		} else {
			e.Ports = []int{enginePort(r, 3306)}
		}
		publicFlag(e, r.Values, "publicly_accessible")
		add(e)
	}
	// An Aurora Serverless v1 cluster takes no instances: it answers at
	// its own endpoint, in its subnet group behind its groups, never
	// publicly.
	for _, r := range byType["aws_rds_cluster"] {
		if !withInstances[r.Address] && !unknown(r.Values, "engine_mode") && strings.EqualFold(str(r.Values, "engine_mode"), "serverless") {
			add(m.clusterEndpoint(r))
		}
	}
	// A MemoryDB cluster, like an ElastiCache one, answers in its subnet
	// group's subnets behind its groups and takes no public address; its
	// port, unset, is 6379 whichever engine it runs.
	for _, typ := range []string{"aws_elasticache_cluster", "aws_elasticache_replication_group", "aws_memorydb_cluster"} {
		for _, r := range byType[typ] {
			e := &Endpoint{Addr: r.Address, Kind: "cache", DataTier: true, Res: r, Ports: []int{enginePort(r, 6379)}}
			e.Subnets = m.groupSubnets(e, r, "subnet_group_name")
			m.attachSGs(e, r.Values, "security_group_ids")
			if portKnown(r) || typ == "aws_memorydb_cluster" && !unknown(r.Values, "port") {
				e.Listens = listensOn(e.Ports)
			}
			add(e)
		}
	}
	// An ElastiCache serverless cache is interfaces in its subnets (when
	// it names none, default subnets of the default VPC) behind its groups
	// (the VPC's default group when it names none), answering its
	// engine's port and the next, which serves reads from replicas: 6379
	// and 6380, or Memcached's 11211 and 11212. It takes no public address.
	for _, r := range byType["aws_elasticache_serverless_cache"] {
		e := &Endpoint{Addr: r.Address, Kind: "cache", DataTier: true, Res: r, Ports: []int{6379, 6380}}
		if has(r.Values, "subnet_ids") {
			e.Subnets = m.subnetsIn(e, r.Values, "subnet_ids")
		} else {
			e.Unplaced = noSubnetNamed
		}
		m.attachSGs(e, r.Values, "security_group_ids")
		if p, ok := tf.EnginePort(str(r.Values, "engine")); ok && !unknown(r.Values, "engine") {
			e.Ports = []int{p, p + 1}
			e.Listens = listensOn(e.Ports)
		}
		add(e)
	}
	for _, r := range byType["aws_redshift_cluster"] {
		e := &Endpoint{Addr: r.Address, Kind: "redshift", DataTier: true, Res: r, Ports: []int{num(r.Values, "port", 5439)}}
		e.Subnets = m.groupSubnets(e, r, "cluster_subnet_group_name")
		m.attachSGs(e, r.Values, "vpc_security_group_ids")
		// The AWS provider defaults publicly_accessible to true before
		// 5.0, to false since.
		if !has(r.Values, "publicly_accessible") {
			if why, before := m.providerBefore("aws", "5.0.0"); before {
				e.Public, e.Why = true, "publicly_accessible is not set, and the provider is "+why+": before 5.0 it defaults to true"
			}
		} else {
			publicFlag(e, r.Values, "publicly_accessible")
		}
		add(e)
	}
	// A Redshift Serverless workgroup answers in its subnets behind its
	// groups, publicly only when publicly_accessible says so (false unless
	// set).
	for _, r := range byType["aws_redshiftserverless_workgroup"] {
		e := &Endpoint{Addr: r.Address, Kind: "redshift", DataTier: true, Res: r, Ports: []int{num(r.Values, "port", 5439)}}
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_ids")
		m.attachSGs(e, r.Values, "security_group_ids")
		publicFlag(e, r.Values, "publicly_accessible")
		add(e)
	}
	for _, r := range byType["aws_msk_cluster"] {
		bg := block(r.Values, "broker_node_group_info")
		e := &Endpoint{Addr: r.Address, Kind: "kafka", DataTier: true, Res: r, Ports: []int{9092, 9094, 9096, 9098}}
		e.Subnets = m.subnetsIn(e, bg, "client_subnets")
		m.attachSGs(e, bg, "security_groups")
		// Public access, on, gives the brokers public addresses that
		// answer on ports of their own; one not known statically (a
		// dynamic block over a variable, as modules write it) may be.
		ci := block(bg, "connectivity_info")
		pa := block(ci, "public_access")
		switch t := str(pa, "type"); {
		case blocksUnknown(bg, "connectivity_info") || blocksUnknown(ci, "public_access") || unknown(pa, "type"):
			e.Public, e.PublicAssumed, e.Why = true, true, "connectivity_info.public_access.type not known statically: assumed SERVICE_PROVIDED_EIPS"
			e.Ports = []int{9194, 9196, 9198}
		case t != "" && !strings.EqualFold(t, "DISABLED"):
			e.Public, e.Why = true, "connectivity_info.public_access.type = "+t
			e.Ports = []int{9194, 9196, 9198}
		}
		add(e)
	}
	for _, r := range byType["aws_dms_replication_instance"] {
		// It opens connections to its source and target endpoints and
		// answers none: public, it has a public path, but no port.
		e := sourceOnly(r, "dms")
		e.DataTier = true
		e.Subnets = m.groupSubnets(e, r, "replication_subnet_group_id")
		m.attachSGs(e, r.Values, "vpc_security_group_ids")
		// The DMS API makes an instance public unless told otherwise, but
		// the AWS provider always sends the attribute, false when unset.
		publicFlag(e, r.Values, "publicly_accessible")
		add(e)
	}
	// An RDS proxy is interfaces in its subnets, behind its groups,
	// answering its engine family's port alone; it takes no public
	// address, so it matters for paths from peers and for --reach.
	for _, r := range byType["aws_db_proxy"] {
		port, ok := proxyPorts[strings.ToUpper(str(r.Values, "engine_family"))]
		e := &Endpoint{Addr: r.Address, Kind: "db proxy", DataTier: true, Res: r, Ports: []int{port}}
		e.Subnets = m.subnetsIn(e, r.Values, "vpc_subnet_ids")
		m.attachSGs(e, r.Values, "vpc_security_group_ids")
		if ok {
			e.Listens = listensOn(e.Ports)
		}
		add(e)
	}
	// A Lambda function in a VPC has interfaces in its subnets behind its
	// groups. They take no inbound connection: the function reaches
	// others (a source for --reach and for the groups that name its own),
	// never the reverse.
	for _, r := range byType["aws_lambda_function"] {
		vc := block(r.Values, "vpc_config")
		if vc == nil {
			continue
		}
		e := sourceOnly(r, "lambda")
		e.Subnets = m.subnetsIn(e, vc, "subnet_ids")
		m.attachSGs(e, vc, "security_group_ids")
		add(e)
	}
	// An EMR Serverless application's workers, likewise: their
	// interfaces in the subnets of its network_configuration open
	// connections (to data stores, the metastore) and take none.
	for _, r := range byType["aws_emrserverless_application"] {
		nc := block(r.Values, "network_configuration")
		if nc == nil && !blocksUnknown(r.Values, "network_configuration") {
			continue // outside any VPC of the project
		}
		e := sourceOnly(r, "EMR Serverless")
		e.Subnets = m.subnetsIn(e, nc, "subnet_ids")
		m.attachSGs(e, nc, "security_group_ids")
		add(e)
	}
	// An App Runner VPC connector's interfaces, likewise: the service's
	// connections into the VPC leave from them, behind the connector's
	// groups (the VPC's default group when it names none).
	for _, r := range byType["aws_apprunner_vpc_connector"] {
		e := sourceOnly(r, "App Runner VPC connector")
		e.Subnets = m.subnetsIn(e, r.Values, "subnets")
		m.attachSGs(e, r.Values, "security_groups")
		add(e)
	}
	// An HTTP API's VPC link, likewise: API Gateway's connections to the
	// integration's targets leave from its interfaces, behind its groups.
	for _, r := range byType["aws_apigatewayv2_vpc_link"] {
		e := sourceOnly(r, "VPC link")
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_ids")
		m.attachSGs(e, r.Values, "security_group_ids")
		add(e)
	}
	// An Amazon MQ broker. A public RabbitMQ broker is reached through an
	// endpoint AWS runs outside the VPC, which takes no security group; a
	// public ActiveMQ broker has a public address in its subnet, behind its
	// groups. Either answers on its engine's ports alone.
	for _, r := range byType["aws_mq_broker"] {
		e := &Endpoint{Addr: r.Address, Kind: "message broker", DataTier: true, Res: r, Ports: []int{5671, 8162, 8883, 61614, 61617, 61619}}
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_ids")
		m.attachSGs(e, r.Values, "security_groups")
		// An engine not known statically answers on either engine's
		// ports, and public is read as RabbitMQ, whose public broker no
		// security group guards.
		engineUnknown := unknown(r.Values, "engine_type")
		rabbit := strings.EqualFold(str(r.Values, "engine_type"), "RabbitMQ") || engineUnknown
		publicFlag(e, r.Values, "publicly_accessible")
		switch {
		case engineUnknown && !e.Public:
			e.Ports = append([]int{443}, e.Ports...)
		case rabbit:
			e.Ports = []int{443, 5671}
		}
		e.Listens = listensOn(e.Ports)
		if e.Public && rabbit {
			e.Managed, e.Why = true, e.Why+" (a public RabbitMQ broker takes no security group)"
			if engineUnknown {
				e.PublicAssumed = true
				e.Why += "; engine_type not known statically: read as RabbitMQ"
			}
			e.Allowed = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		}
		add(e)
	}
	m.transferServers(byType, add)
	// DocumentDB has no public-access setting: its instances are reached
	// only through their VPC, so they matter for paths from peers. An
	// instance answers on its cluster's port alone (27017 unless set).
	for _, r := range byType["aws_docdb_cluster_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "docdb", DataTier: true, Res: r, Ports: []int{27017}}
		if c := m.lookup(m.ref(r.Values, "cluster_identifier")); c != nil {
			e.For = c.Address
			m.attachSGs(e, c.Values, "vpc_security_group_ids")
			e.Subnets = m.groupSubnets(e, c, "db_subnet_group_name")
			e.Ports = []int{num(c.Values, "port", 27017)}
			if !unknown(c.Values, "port") {
				e.Listens = listensOn(e.Ports)
			}
		}
		add(e)
	}
	for _, r := range byType["aws_neptune_cluster_instance"] {
		e := &Endpoint{Addr: r.Address, Kind: "neptune", DataTier: true, Res: r, Ports: []int{num(r.Values, "port", 8182)}}
		e.Subnets = m.groupSubnets(e, r, "neptune_subnet_group_name")
		if c := m.lookup(m.ref(r.Values, "cluster_identifier")); c != nil {
			e.For = c.Address
			m.attachSGs(e, c.Values, "vpc_security_group_ids")
			if len(e.Subnets) == 0 {
				e.Subnets = m.groupSubnets(e, c, "neptune_subnet_group_name")
			}
		}
		publicFlag(e, r.Values, "publicly_accessible")
		add(e)
	}
	// An EFS mount target is an interface in its subnet, behind its groups
	// (its VPC's default group when it names none), answering NFS on 2049
	// alone; it never has a public address, so it matters for paths from
	// peers and for --reach.
	for _, r := range byType["aws_efs_mount_target"] {
		e := &Endpoint{Addr: r.Address, Kind: "efs", DataTier: true, Res: r, Ports: []int{2049}, Interior: "EFS mount targets never have a public address"}
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
		m.attachSGs(e, r.Values, "security_groups")
		e.Listens = listensOn(e.Ports)
		add(e)
	}
	searchPolicies := m.searchPolicies(byType)
	for _, typ := range []string{"aws_opensearch_domain", "aws_elasticsearch_domain"} {
		for _, r := range byType[typ] {
			// A domain's endpoint answers HTTPS on 443, and HTTP on 80
			// unless it requires HTTPS; never Elasticsearch's own 9200.
			ports := []int{443}
			if https, _ := searchHTTPS(r.Values); !https {
				ports = []int{80, 443}
			}
			e := &Endpoint{Addr: r.Address, Kind: "search", DataTier: true, Res: r, Ports: ports}
			if vo := block(r.Values, "vpc_options"); vo != nil {
				e.Subnets = m.subnetsIn(e, vo, "subnet_ids")
				m.attachSGs(e, vo, "security_group_ids")
			} else {
				e.Managed, e.Public, e.Why, e.Allowed = true, true, "domain has no vpc_options: its endpoint is public", allInternet
				if why := m.searchGate(r, searchPolicies[r.Address]); why != "" {
					e.Gate, e.GateSev = why+", so the internet at large reaches the endpoint but gets in only with credentials, and no network control stands in their way", Medium
				}
			}
			add(e)
		}
	}
	m.ecsServices(byType, add)
	// Managed data services answer on their own ports alone.
	for _, e := range m.Endpoints {
		switch e.Kind {
		case "redshift", "neptune", "kafka", "search":
			if e.Listens == nil && len(e.Ports) > 0 && !unknown(e.Res.Values, "port") {
				e.Listens = listensOn(e.Ports)
			}
		}
	}
	m.nodeGroups(byType, templates)
	m.beanstalkEnvironments(byType, add)
	m.lightsailInstances(byType, add)
	m.emrClusters(byType, add)
	m.batchEnvironments(byType, add)
	m.clientVPNs(byType, add)
	m.instanceConnectEndpoints(byType, add)
	m.nlbForwarding(byType)
	for _, r := range byType["aws_eks_cluster"] {
		vc := block(r.Values, "vpc_config")
		if vc == nil {
			continue
		}
		m.sgsOf(strList(vc, "security_group_ids"))
		// The API answers on 443 alone, publicly and privately.
		e := &Endpoint{Addr: r.Address, Kind: "eks", Res: r, Ports: []int{443}, Listens: listensOn([]int{443})}
		public := boolean(vc, "endpoint_public_access", true)
		if !public || boolean(vc, "endpoint_private_access", false) || unknown(vc, "endpoint_private_access") {
			// Private access (alone, as EKS takes no cluster without one
			// of them, or beside public access): the API answers on 443
			// on interfaces EKS puts in the cluster's subnets, behind
			// the groups it names and the cluster group EKS makes, which
			// admits its own members. With public access too, the VPC's
			// own addresses reach these, not the public allow-list.
			e.Subnets = m.subnetsIn(e, vc, "subnet_ids")
			m.attachSGs(e, vc, "security_group_ids")
			if g := m.sgs[tf.EKSClusterSG(r.Address)]; g != nil {
				e.SGs = append(e.SGs, g)
			}
			if public {
				e.InVPC = true
				if unknown(vc, "endpoint_private_access") {
					e.InVPCAssumed = "endpoint_private_access not known statically: assumed true"
				}
			}
		}
		if public {
			e.Managed, e.Public, e.Why = true, true, "endpoint_public_access = true"
			e.Gate, e.GateSev, e.Fix = kubeGate("tokens of IAM principals, service accounts or OIDC providers the cluster trusts", rbacAnonymous), High, eksFix
			if unknown(vc, "endpoint_public_access") {
				e.PublicAssumed, e.Why = true, "endpoint_public_access not known statically: assumed true"
			}
			cidrs, unk := strs(vc, "public_access_cidrs")
			if !has(vc, "public_access_cidrs") {
				cidrs = []string{"0.0.0.0/0"}
			}
			bits, sized := unknownBits(vc, "public_access_cidrs")
			if !sized {
				bits = nil
			}
			m.allowFrom(e, "public_access_cidrs", cidrs, unk, bits)
		}
		add(e)
	}
}

// kubeGate says what stands between the addresses a public Kubernetes API
// endpoint (EKS's, AKS's) admits and the cluster: the API takes only the
// credentials the cluster trusts (creds), and an anonymous request reaches
// what anon says, but an open control plane still takes every attempt
// with stolen credentials and on the API server's flaws, so the internet
// at large reaching it is high (Endpoint.GateSev). more says what else
// the cluster's settings leave to those attempts.
func kubeGate(creds, anon string, more ...string) string {
	return strings.Join(append([]string{"the Kubernetes API authenticates every request (" + creds + "; " + anon + "), so every address the endpoint admits reaches the cluster's control plane with only credentials in the way, and may try stolen or leaked ones and the API server's own flaws"}, more...), "; ")
}

// rbacAnonymous is what an anonymous request gets from a Kubernetes API
// whose authorizer is RBAC, by default.
const rbacAnonymous = "an anonymous request gets only what RBAC grants system:anonymous, by default the version and health endpoints"

// eksFix is the remedy for an EKS public API endpoint, naming its settings.
const eksFix = "Set endpoint_public_access = false and endpoint_private_access = true in vpc_config, reaching the API from the VPC or networks joined to it (a VPN, peering, a bastion); while it must stay public, set public_access_cidrs to the ranges that administer the cluster alone."

// ipv6Address makes an instance or interface public over IPv6 when it gets
// an IPv6 address, which is global: ipv6_address_count or ipv6_addresses,
// or its subnet's assign_ipv6_address_on_creation when it says neither.
// Without a public IPv4 address it is reached from the IPv6 internet only.
func ipv6Address(e *Endpoint, vals map[string]any) {
	why := ""
	switch ips, _ := strs(vals, "ipv6_addresses"); {
	case num(vals, "ipv6_address_count", 0) > 0:
		why = "ipv6_address_count > 0"
	case len(ips) > 0:
		why = "ipv6_addresses"
	case has(vals, "ipv6_address_count") || has(vals, "ipv6_addresses"):
	default:
		for _, s := range e.Subnets {
			if s.AssignIPv6 {
				why = s.Addr + " has assign_ipv6_address_on_creation = true"
				break
			}
		}
	}
	if why == "" {
		if e.Public {
			// A public IPv4 address alone: the IPv6 internet has
			// nothing to reach.
			e.Families = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		}
		return
	}
	why = "a global IPv6 address (" + why + ")"
	if e.Public {
		e.Why += "; " + why
		return
	}
	e.Public, e.Why, e.Families = true, why, []netip.Prefix{netip.MustParsePrefix("::/0")}
}

// publicFlag makes e public when attribute k of vals is true, and when it
// is not known statically, saying it was assumed.
func publicFlag(e *Endpoint, vals map[string]any, k string) {
	switch {
	case unknown(vals, k):
		e.Public, e.PublicAssumed, e.Why = true, true, k+" not known statically: assumed true"
	case boolean(vals, k, false):
		e.Public, e.Why = true, k+" = true"
	}
}

// publicIP decides whether the instances of an EKS node group get a public
// address: its launch template's interface says so (ni), else its subnets
// (subnetsPublicIP on the group's subnet_ids), one not known statically
// assumed to.
func (m *Model) publicIP(e *Endpoint, ni, group map[string]any) {
	if m.eips[e.Addr] {
		e.Public, e.Why = true, "an Elastic IP is associated"
		return
	}
	// The provider takes "true", "false" or "" (the subnet decides).
	if unknown(ni, "associate_public_ip_address") || str(ni, "associate_public_ip_address") != "" {
		publicFlag(e, ni, "associate_public_ip_address")
		return
	}
	if !has(group, "subnet_ids") {
		return
	}
	if why, assumed := m.subnetsPublicIP(group, "subnet_ids"); why != "" {
		e.Public, e.PublicAssumed, e.Why = true, assumed, why
	}
}

// listeners returns the ports each load balancer listens on, and whether
// some listener's load balancer is not known statically (then a load
// balancer without a known listener may listen anywhere).
func (m *Model) listeners(byType map[string][]*tf.Resource) (map[string][]int, bool) {
	out := map[string][]int{}
	anyLB := false
	for _, typ := range []string{"aws_lb_listener", "aws_alb_listener"} {
		for _, r := range byType[typ] {
			if unknown(r.Values, "load_balancer_arn") || unknown(r.Values, "port") {
				anyLB = true
				continue
			}
			lb := m.addr(str(r.Values, "load_balancer_arn"))
			out[lb] = append(out[lb], num(r.Values, "port", 0))
		}
	}
	return out, anyLB
}

// listenerProtocols returns, for each load balancer, the protocol of each
// of its listener ports, upper-cased: "" where it is not known statically,
// "HTTP" where it is unset (an application load balancer's default).
func (m *Model) listenerProtocols(byType map[string][]*tf.Resource) map[string]map[int]string {
	out := map[string]map[int]string{}
	for _, typ := range []string{"aws_lb_listener", "aws_alb_listener"} {
		for _, r := range byType[typ] {
			if unknown(r.Values, "load_balancer_arn") || unknown(r.Values, "port") || unknown(r.Values, "protocol") {
				continue
			}
			lb := m.addr(str(r.Values, "load_balancer_arn"))
			if out[lb] == nil {
				out[lb] = map[int]string{}
			}
			out[lb][num(r.Values, "port", 0)] = strings.ToUpper(cmp.Or(str(r.Values, "protocol"), "HTTP"))
		}
	}
	return out
}

// setPort records that an HTTP or HTTPS listener, of protocol proto ("" when
// not known statically), answers on port p.
func setPort(ports map[int]string, p int, proto string) map[int]string {
	if ports == nil {
		ports = map[int]string{}
	}
	if proto != "HTTP" && proto != "HTTPS" {
		proto = "HTTP or HTTPS"
	}
	ports[p] = proto
	return ports
}

// forwards returns, for each load balancer, the ports of the target
// groups each of its listener ports forwards to by its default action,
// where the listener, its port and the group's port are known.
func (m *Model) forwards(byType map[string][]*tf.Resource) map[string]map[int][]int {
	out := map[string]map[int][]int{}
	for _, typ := range []string{"aws_lb_listener", "aws_alb_listener"} {
		for _, r := range byType[typ] {
			if unknown(r.Values, "load_balancer_arn") || unknown(r.Values, "port") {
				continue
			}
			lb, port := m.addr(str(r.Values, "load_balancer_arn")), num(r.Values, "port", 0)
			for _, a := range blocks(r.Values, "default_action") {
				tg := m.byRef[str(a, "target_group_arn")]
				if tg == nil || unknown(tg.Values, "port") || !has(tg.Values, "port") {
					continue
				}
				if out[lb] == nil {
					out[lb] = map[int][]int{}
				}
				out[lb][port] = append(out[lb][port], num(tg.Values, "port", 0))
			}
		}
	}
	return out
}

// eksRemoteAccessSG stands for the group EKS creates for a node group's
// remote_access block without source_security_group_ids: SSH from
// everywhere.
func eksRemoteAccessSG(r *tf.Resource) *SG {
	return &SG{Addr: r.Address + ":remote-access", Res: r, Made: "the group EKS makes for its remote_access, without source_security_group_ids", Ingress: []SGRule{{Proto: "tcp", From: 22, To: 22,
		CIDRs: allInternet, Where: r.Address + " remote_access (EKS opens SSH to 0.0.0.0/0 without source_security_group_ids)"}}}
}

// names reports whether list attribute k of vals names anything, or may.
func names(vals map[string]any, k string) bool {
	s, unk := strs(vals, k)
	return len(s) > 0 || unk
}

// nodeGroups adds EKS managed node groups: instances in their subnets that
// listen on SSH (with remote_access), the kubelet and the NodePort range.
func (m *Model) nodeGroups(byType map[string][]*tf.Resource, templates map[string]*tf.Resource) {
	for _, r := range byType["aws_eks_node_group"] {
		e := &Endpoint{Addr: r.Address, Kind: "eks-nodes", Res: r, Ports: []int{10250}}
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_ids")
		vals := map[string]any{}
		own := false // the launch template names groups
		if lt := block(r.Values, "launch_template"); lt != nil {
			if t := templates[m.addr(str(lt, "id"))]; t != nil {
				m.attachSGs(e, t.Values, "vpc_security_group_ids")
				own = names(t.Values, "vpc_security_group_ids")
				if ni := block(t.Values, "network_interfaces"); ni != nil {
					m.attachSGs(e, ni, "security_groups")
					own = own || names(ni, "security_groups")
					vals = ni
				}
			} else if unknown(lt, "id") || unknown(lt, "name") {
				e.SGsUnknown = "launch template not known statically: its security groups are assumed to admit every address"
			}
		}
		// Without groups of its launch template's, EKS puts the nodes in
		// its cluster's group.
		if g := m.sgs[tf.EKSClusterSG(m.addrOf("aws_eks_cluster", m.ref(r.Values, "cluster_name")))]; g != nil && !own {
			e.SGs = append(e.SGs, g)
		}
		if ra := block(r.Values, "remote_access"); ra != nil {
			e.Ports = append(e.Ports, 22)
			if srcs, unk := strs(ra, "source_security_group_ids"); len(srcs) == 0 && !unk {
				e.SGs = append(e.SGs, eksRemoteAccessSG(r))
			}
		}
		m.publicIP(e, vals, r.Values)
		m.Endpoints = append(m.Endpoints, e)
	}
}

// clusterEndpoint is the endpoint of an RDS, DocumentDB or Neptune
// cluster with no instance declared (nil for any other resource): it
// answers in its subnet group's subnets (default subnets of the default
// VPC when it names none), behind its groups, on its engine's port. It
// is in the model's endpoints only for an Aurora Serverless v1 cluster,
// which takes no instances; for others, the instances that answer there
// are not in the scanned code, and --reach answers for it on its address.
func (m *Model) clusterEndpoint(r *tf.Resource) *Endpoint {
	var group string
	var port int
	known := !unknown(r.Values, "port")
	switch r.Type {
	case "aws_rds_cluster":
		group, port, known = "db_subnet_group_name", enginePort(r, 3306), portKnown(r)
	case "aws_docdb_cluster":
		group, port = "db_subnet_group_name", num(r.Values, "port", 27017)
	case "aws_neptune_cluster":
		group, port = "neptune_subnet_group_name", num(r.Values, "port", 8182)
	default:
		return nil
	}
	e := &Endpoint{Addr: r.Address, Kind: "db", DataTier: true, Res: r, Ports: []int{port}}
	e.Subnets = m.groupSubnets(e, r, group)
	m.attachSGs(e, r.Values, "vpc_security_group_ids")
	if known {
		e.Listens = listensOn(e.Ports)
	}
	return e
}
