package check

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// Azure load balancers: a machine without a public IP of its own is
// reached from the internet through a public load balancer's rules (its
// interface in a backend pool) and inbound NAT rules, on their backend
// ports. A Standard SKU balancer, like a Standard public IP, admits
// nothing until an NSG allows it; a Basic one (the default before azurerm
// 4.0, and what an unset sku is read as) admits what its rules forward.

type lbPort struct {
	proto string
	port  int // anyPort: not known statically
}

// lbVia is a rule of a public balancer that forwards a port: "rule X" or
// "inbound NAT rule X", and the balancer.
type lbVia struct {
	rule, lb string
}

// lbRulePort is a backend port with the rule that forwards to it.
type lbRulePort struct {
	lbPort
	rule string
}

const anyPort = -1

// lbForward is what public load balancers forward to one interface.
type lbForward struct {
	ports []lbPort
	via   []string // the balancers
	basic bool     // some balancer is open without an NSG
	// families: of the balancers' public frontends (ip_version of their
	// public IPs; both when one is not known).
	families []netip.Prefix
	// assumed says why the interface is read as in a pool it may not be
	// in: a backend pool not known statically.
	assumed string
	// nat: some port is an inbound NAT rule's, which forwards a frontend
	// port to one machine as a public address of its own would.
	nat bool
	// by: for each port, the rules that forward it.
	by map[lbPort][]lbVia
}

// forward records that the rule (described) of balancer lb forwards p.
func (f *lbForward) forward(p lbPort, rule, lb string) {
	f.ports = append(f.ports, p)
	if f.by == nil {
		f.by = map[lbPort][]lbVia{}
	}
	f.by[p] = append(f.by[p], lbVia{rule, lb})
}

func (f *lbForward) add(g lbForward) {
	f.ports = append(f.ports, g.ports...)
	for p, rs := range g.by {
		if f.by == nil {
			f.by = map[lbPort][]lbVia{}
		}
		f.by[p] = append(f.by[p], rs...)
	}
	f.via = append(f.via, g.via...)
	f.basic = f.basic || g.basic
	f.nat = f.nat || g.nat
	f.families = append(f.families, g.families...)
	if f.assumed == "" {
		f.assumed = g.assumed
	}
}

// apply makes e public through the balancers, on their backend ports.
func (f *lbForward) apply(e *Endpoint) {
	ports := map[lbPort]bool{}
	var list []string
	for _, p := range f.ports {
		if !ports[p] && p.port == anyPort {
			list = append(list, p.proto+" (a port not known statically)")
		} else if !ports[p] {
			list = append(list, fmt.Sprintf("%s %d", p.proto, p.port))
		}
		ports[p] = true
	}
	sort.Strings(list)
	e.Public = true
	e.Balanced = !f.nat
	// A port not known statically makes every port forwarded, unproven.
	for p := range ports {
		e.PublicAssumed = e.PublicAssumed || p.port == anyPort
	}
	e.Why = "forwarded " + strings.Join(list, ", ") + " by public load balancer " + strings.Join(dedup(f.via), ", ")
	if f.assumed != "" {
		e.PublicAssumed = true
		e.Why += " (" + f.assumed + ")"
	}
	e.Forwarded = map[lbPort][]lbVia{}
	for p := range ports {
		e.Forwarded[p] = f.by[p]
	}
	e.InternetPorts = func(proto string, port int) bool {
		return ports[lbPort{proto, port}] || ports[lbPort{"all", port}] || ports[lbPort{proto, anyPort}]
	}
}

// balancerHop is the hop of the public load balancers that forward proto
// port to e, naming their rules; false when none does (e is not reached
// through a balancer, or not on that port).
func (e *Endpoint) balancerHop(proto string, port int) (Hop, bool) {
	var vias []lbVia
	for _, p := range []lbPort{{proto, port}, {"all", port}, {proto, anyPort}} {
		vias = append(vias, e.Forwarded[p]...)
	}
	if len(vias) == 0 {
		return Hop{}, false
	}
	var lbs, rules []string
	for _, v := range vias {
		lbs = append(lbs, v.lb)
		rules = append(rules, v.rule)
	}
	lbs, rules = dedup(lbs), dedup(rules)
	return Hop{Kind: "lb", Addr: strings.Join(lbs, ", "), Detail: fmt.Sprintf("public load balancer forwards %s to it (%s)", portText(proto, port, port), strings.Join(rules, ", "))}, true
}

type azureLBModel struct {
	public   map[string]bool // balancer address → has a public frontend
	basic    map[string]bool
	families map[string][]netip.Prefix // balancer → its public frontends' families
	pools    map[string]string         // backend pool → balancer
	poolPort map[string][]lbRulePort   // backend pool → its rules' backend ports
	natPort  map[string]lbPort         // NAT rule → its backend port
	natLB    map[string]string         // NAT rule → balancer
	// poolNATs: backend pool → the NAT rules that name it
	// (backend_address_pool_id), which forward to each of its members;
	// poolNATWhy says so of those whose pool is not known statically.
	poolNATs   map[string][]string
	poolNATWhy map[string]string
	nicPools   map[string][]string // interface → pools (association resources)
	nicNATs    map[string][]string // interface → NAT rules
	// nicPoolsFrom: interface → for each association whose pool is not
	// known statically, the pools its expression names (nil: any).
	nicPoolsFrom map[string][][]string
	poolRes      []*tf.Resource
	// poolPortMaybe: backend pool → the backend ports of rules whose pool
	// is not known statically and may be it, with why.
	poolPortMaybe map[string][]lbRulePort
	poolMaybeWhy  map[string]string
	// nicNATsFrom: interface → for each NAT rule association whose rule is
	// not known statically, the rules its expression names (nil: any).
	nicNATsFrom map[string][][]string
	natRes      []*tf.Resource
}

func lbProtos(p string) []string {
	switch strings.ToLower(p) {
	case "udp":
		return []string{"udp"}
	case "tcp":
		return []string{"tcp"}
	}
	return []string{"tcp", "udp"}
}

func (m *Model) azureLBs(byType map[string][]*tf.Resource, pips, standard map[string]bool, family map[string][]netip.Prefix) *azureLBModel {
	l := &azureLBModel{public: map[string]bool{}, basic: map[string]bool{}, families: map[string][]netip.Prefix{}, pools: map[string]string{},
		poolPort: map[string][]lbRulePort{}, natPort: map[string]lbPort{}, natLB: map[string]string{},
		nicPools: map[string][]string{}, nicNATs: map[string][]string{}, nicPoolsFrom: map[string][][]string{},
		poolPortMaybe: map[string][]lbRulePort{}, poolMaybeWhy: map[string]string{}, nicNATsFrom: map[string][][]string{},
		poolNATs: map[string][]string{}, poolNATWhy: map[string]string{}}
	for _, r := range byType["azurerm_lb"] {
		for _, fe := range blocks(r.Values, "frontend_ip_configuration") {
			if p := m.addr(str(fe, "public_ip_address_id")); pips[p] || unknown(fe, "public_ip_address_id") {
				l.public[r.Address] = true
				if f, ok := family[p]; ok {
					l.families[r.Address] = append(l.families[r.Address], f...)
				} else {
					l.families[r.Address] = append(l.families[r.Address], allInternet...)
				}
				if !standard[p] && !strings.EqualFold(str(r.Values, "sku"), "Standard") {
					l.basic[r.Address] = true
				}
			}
		}
	}
	for _, r := range byType["azurerm_lb_backend_address_pool"] {
		l.pools[r.Address] = m.addr(str(r.Values, "loadbalancer_id"))
		l.poolRes = append(l.poolRes, r)
	}
	// A backend port not known statically is read as every port
	// (anyPort), and said so.
	backendPort := func(r *tf.Resource) int {
		port := num(r.Values, "backend_port", -1)
		if port < 0 || unknown(r.Values, "backend_port") {
			m.note(r, "backend port not known statically: read as forwarding every port")
			return anyPort
		}
		return port
	}
	for _, r := range byType["azurerm_lb_rule"] {
		port := backendPort(r)
		pools := strList(r.Values, "backend_address_pool_ids")
		pools = append(pools, strList(r.Values, "backend_address_pool_id")...)
		// A pool not known statically may be any its expression names,
		// else any of the rule's balancer (any, when that is not known).
		for _, k := range []string{"backend_address_pool_ids", "backend_address_pool_id"} {
			unk, from := unknownRefs(r.Values, k)
			if !unk {
				continue
			}
			ps := instancesOf(m, from, l.poolRes, func(r *tf.Resource) *tf.Resource { return r })
			if ps == nil {
				lb := m.addr(str(r.Values, "loadbalancer_id"))
				for _, p := range l.poolRes {
					if lb == "" || l.pools[p.Address] == lb {
						ps = append(ps, p)
					}
				}
			}
			for _, p := range ps {
				for _, proto := range lbProtos(str(r.Values, "protocol")) {
					l.poolPortMaybe[p.Address] = append(l.poolPortMaybe[p.Address], lbRulePort{lbPort{proto, port}, r.Address})
				}
				l.poolMaybeWhy[p.Address] = r.Address + "'s backend pool is not known statically: assumed to be " + p.Address
			}
		}
		for _, pool := range pools {
			for _, proto := range lbProtos(str(r.Values, "protocol")) {
				a := m.addr(pool)
				l.poolPort[a] = append(l.poolPort[a], lbRulePort{lbPort{proto, port}, r.Address})
			}
		}
	}
	// A NAT pool (a scale set's inbound NAT rules, one per instance) is
	// named where NAT rules are.
	for _, typ := range []string{"azurerm_lb_nat_rule", "azurerm_lb_nat_pool"} {
		for _, r := range byType[typ] {
			protos := lbProtos(str(r.Values, "protocol"))
			l.natPort[r.Address] = lbPort{protos[0], backendPort(r)}
			l.natRes = append(l.natRes, r)
			l.natLB[r.Address] = m.addr(str(r.Values, "loadbalancer_id"))
		}
	}
	// A NAT rule that names a backend pool maps a frontend port of its
	// range to each member of the pool; one whose pool is not known
	// statically may name any its expression names, else any of its
	// balancer's.
	for _, r := range byType["azurerm_lb_nat_rule"] {
		if pool := m.addr(str(r.Values, "backend_address_pool_id")); pool != "" {
			l.poolNATs[pool] = append(l.poolNATs[pool], r.Address)
		}
		unk, from := unknownRefs(r.Values, "backend_address_pool_id")
		if !unk {
			continue
		}
		ps := instancesOf(m, from, l.poolRes, func(r *tf.Resource) *tf.Resource { return r })
		if ps == nil {
			for _, p := range l.poolRes {
				if l.pools[p.Address] == l.natLB[r.Address] || l.natLB[r.Address] == "" {
					ps = append(ps, p)
				}
			}
		}
		for _, p := range ps {
			l.poolNATs[p.Address] = append(l.poolNATs[p.Address], r.Address)
			l.poolNATWhy[p.Address+" "+r.Address] = r.Address + "'s backend pool is not known statically: assumed to be " + p.Address
		}
	}
	// An association whose interface is not known statically joins each
	// interface its expression can only name (refAddrs) to the pool or
	// rule: forwarded to, as the most any of them may be.
	nics := byType["azurerm_network_interface"]
	for _, r := range byType["azurerm_network_interface_backend_address_pool_association"] {
		ifaces, _ := m.refAddrs(r.Values, "network_interface_id", nics)
		for _, nic := range ifaces {
			if pool := m.addr(m.ref(r.Values, "backend_address_pool_id")); pool == "" && unknown(r.Values, "backend_address_pool_id") {
				l.nicPoolsFrom[nic] = append(l.nicPoolsFrom[nic], unknownFrom(r.Values, "backend_address_pool_id"))
				continue
			}
			l.nicPools[nic] = append(l.nicPools[nic], m.addr(str(r.Values, "backend_address_pool_id")))
		}
	}
	for _, r := range byType["azurerm_network_interface_nat_rule_association"] {
		ifaces, _ := m.refAddrs(r.Values, "network_interface_id", nics)
		for _, nic := range ifaces {
			if nat := m.addr(m.ref(r.Values, "nat_rule_id")); nat == "" && unknown(r.Values, "nat_rule_id") {
				l.nicNATsFrom[nic] = append(l.nicNATsFrom[nic], unknownFrom(r.Values, "nat_rule_id"))
				continue
			}
			l.nicNATs[nic] = append(l.nicNATs[nic], m.addr(str(r.Values, "nat_rule_id")))
		}
	}
	return l
}

// of returns what public balancers forward to the interface at nic (by
// association resources) or with these ip_configuration blocks (inline
// pool and NAT rule IDs: azurerm 1.x interfaces, scale sets).
func (l *azureLBModel) of(m *Model, nic string, ipcs []map[string]any) lbForward {
	pools := append([]string(nil), l.nicPools[nic]...)
	nats := append([]string(nil), l.nicNATs[nic]...)
	maybe := append([][]string(nil), l.nicPoolsFrom[nic]...)
	for _, ipc := range ipcs {
		for _, k := range []string{"load_balancer_backend_address_pool_ids", "load_balancer_backend_address_pools_ids"} {
			for _, id := range strList(ipc, k) {
				pools = append(pools, m.addr(id))
			}
			if unk, from := unknownRefs(ipc, k); unk {
				maybe = append(maybe, from)
			}
		}
		for _, k := range []string{"load_balancer_inbound_nat_rules_ids", "load_balancer_inbound_nat_rule_ids"} {
			for _, id := range strList(ipc, k) {
				nats = append(nats, m.addr(id))
			}
		}
	}
	var f lbForward
	// A pool not known statically may be any its expression names, else
	// any of the project's: the interface is read as in each, unproven.
	for _, from := range maybe {
		ps := instancesOf(m, from, l.poolRes, func(r *tf.Resource) *tf.Resource { return r })
		if ps == nil {
			ps = l.poolRes
		}
		var names []string
		for _, p := range ps {
			if l.public[l.pools[p.Address]] {
				names = append(names, p.Address)
			}
		}
		if len(names) > 0 {
			f.assumed = "a backend pool not known statically is assumed to be any of " + strings.Join(names, ", ")
			pools = append(pools, names...)
		}
	}
	for _, p := range pools {
		for _, n := range l.poolNATs[p] {
			nats = append(nats, n)
			if why := l.poolNATWhy[p+" "+n]; why != "" && f.assumed == "" {
				f.assumed = why
			}
		}
		g := l.poolForward(p)
		if more := l.poolPortMaybe[p]; len(more) > 0 && l.public[l.pools[p]] {
			for _, x := range more {
				g.forward(x.lbPort, "rule "+x.rule, l.pools[p])
			}
			if f.assumed == "" {
				f.assumed = l.poolMaybeWhy[p]
			}
		}
		f.add(g)
	}
	// Likewise a NAT rule not known statically: any its expression names,
	// else any of the project's.
	for _, from := range l.nicNATsFrom[nic] {
		ns := instancesOf(m, from, l.natRes, func(r *tf.Resource) *tf.Resource { return r })
		if ns == nil {
			ns = l.natRes
		}
		var names []string
		for _, n := range ns {
			if l.public[l.natLB[n.Address]] {
				names = append(names, n.Address)
			}
		}
		if len(names) > 0 {
			if f.assumed == "" {
				f.assumed = "an inbound NAT rule not known statically is assumed to be any of " + strings.Join(names, ", ")
			}
			nats = append(nats, names...)
		}
	}
	for _, n := range nats {
		lb := l.natLB[n]
		if !l.public[lb] {
			continue
		}
		f.forward(l.natPort[n], "inbound NAT rule "+n, lb)
		f.nat = true
		f.via = append(f.via, lb)
		f.basic = f.basic || l.basic[lb]
		f.families = append(f.families, l.families[lb]...)
	}
	return f
}

// poolForward returns what the load-balancing rules of a public balancer
// forward to the members of backend pool p (nothing for an internal one).
func (l *azureLBModel) poolForward(p string) lbForward {
	var f lbForward
	lb := l.pools[p]
	if !l.public[lb] {
		return f
	}
	for _, x := range l.poolPort[p] {
		f.forward(x.lbPort, "rule "+x.rule, lb)
	}
	f.via = []string{lb}
	f.basic = l.basic[lb]
	f.families = append(f.families, l.families[lb]...)
	return f
}

// gatewayInfraPorts returns the ports Azure keeps for the infrastructure of
// the application gateways behind n: when n is associated with subnets alone
// and each holds an application gateway (Azure gives gateways subnets of
// their own), 65200-65535 for v2 gateways and 65503-65534 for v1 (the
// narrower when the SKU is not known statically). Azure requires them open
// to its GatewayManager and locks them with its own certificates, so
// admitting the internet there, as many write it, reaches nothing.
func (m *Model) gatewayInfraPorts(n *NACL, nicUsers bool) []portRange {
	if nicUsers {
		return nil
	}
	gws := map[*Subnet][]*tf.Resource{}
	for _, e := range m.Endpoints {
		if e.Kind != "application gateway" {
			continue
		}
		for _, s := range e.Subnets {
			gws[s] = append(gws[s], e.Res)
		}
	}
	lo, found := 65200, false
	for _, s := range m.Subnets {
		if s.NACL != n {
			continue
		}
		if len(gws[s]) == 0 {
			return nil
		}
		found = true
		for _, r := range gws[s] {
			sku := block(r.Values, "sku")
			if tier := str(sku, "tier") + str(sku, "name"); !strings.Contains(strings.ToLower(tier), "_v2") {
				lo = 65503 // v1, or not known statically
			}
		}
	}
	if !found {
		return nil
	}
	hi := 65535
	if lo == 65503 {
		hi = 65534
	}
	return []portRange{{"tcp", lo, hi}, {"udp", lo, hi}}
}
