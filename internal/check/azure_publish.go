package check

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"moat/internal/check/tf"
)

// azMachine is a virtual machine or scale set as a backend can name it.
type azMachine struct {
	e       *Endpoint
	nics    map[string]bool
	static  map[netip.Addr]bool
	dynamic []*Subnet // subnets where it takes an address Azure assigns
	// elsewhere: it takes an address Azure assigns in a subnet not in
	// the scanned code (or not known statically), which may hold any.
	elsewhere bool
	pools     []string        // application gateway backend pools named inline
	poolUnk   bool            // some pool ID named inline is not known statically
	lbPools   map[string]bool // load balancer backend pools
	// lbPoolUnk: some load balancer backend pool it is put in is not
	// known statically.
	lbPoolUnk bool
}

// azureMachines reads the project's machines with their interfaces and
// private addresses.
func (m *Model) azureMachines(byType map[string][]*tf.Resource, lbs *azureLBModel) []*azMachine {
	ends := map[string]*Endpoint{}
	for _, e := range m.Endpoints {
		if e.Azure && (e.Kind == "vm" || e.Kind == "scale set") {
			ends[e.Addr] = e
		}
	}
	nics := map[string]*tf.Resource{}
	for _, r := range byType["azurerm_network_interface"] {
		nics[r.Address] = r
	}
	ipc := func(mc *azMachine, b map[string]any) {
		subs := m.subnetsOf(strList(b, "subnet_id"))
		a, err := netip.ParseAddr(str(b, "private_ip_address"))
		if err == nil && !strings.EqualFold(str(b, "private_ip_address_allocation"), "Dynamic") {
			mc.static[a] = true
		} else {
			mc.dynamic = append(mc.dynamic, subs...)
			mc.elsewhere = mc.elsewhere || len(subs) == 0
		}
		for _, k := range []string{"load_balancer_backend_address_pool_ids", "load_balancer_backend_address_pools_ids"} {
			for _, id := range strList(b, k) {
				mc.lbPools[m.addr(id)] = true
			}
			if unk, _ := unknownRefs(b, k); unk {
				mc.lbPoolUnk = true
			}
		}
		for _, k := range []string{"application_gateway_backend_address_pool_ids", "application_gateway_backend_address_pools_ids"} {
			ids, unk := strs(b, k)
			for _, id := range ids {
				mc.pools = append(mc.pools, m.addr(id))
			}
			mc.poolUnk = mc.poolUnk || unk
		}
	}
	var out []*azMachine
	for _, typ := range []string{"azurerm_linux_virtual_machine", "azurerm_windows_virtual_machine", "azurerm_virtual_machine"} {
		for _, r := range byType[typ] {
			mc := &azMachine{e: ends[r.Address], nics: map[string]bool{}, static: map[netip.Addr]bool{}, lbPools: map[string]bool{}}
			if mc.e == nil {
				continue
			}
			for _, id := range strList(r.Values, "network_interface_ids") {
				a := m.addr(id)
				mc.nics[a] = true
				for _, p := range lbs.nicPools[a] {
					mc.lbPools[p] = true
				}
				mc.lbPoolUnk = mc.lbPoolUnk || len(lbs.nicPoolsFrom[a]) > 0
				if n := nics[a]; n != nil {
					for _, b := range blocks(n.Values, "ip_configuration") {
						ipc(mc, b)
					}
				}
			}
			out = append(out, mc)
		}
	}
	for _, typ := range []string{"azurerm_linux_virtual_machine_scale_set", "azurerm_windows_virtual_machine_scale_set", "azurerm_orchestrated_virtual_machine_scale_set", "azurerm_virtual_machine_scale_set"} {
		for _, r := range byType[typ] {
			mc := &azMachine{e: ends[r.Address], nics: map[string]bool{}, static: map[netip.Addr]bool{}, lbPools: map[string]bool{}}
			if mc.e == nil {
				continue
			}
			for _, k := range []string{"network_interface", "network_profile"} {
				for _, ni := range blocks(r.Values, k) {
					for _, b := range blocks(ni, "ip_configuration") {
						b = withoutStatic(b) // each instance's address is Azure's
						ipc(mc, b)
					}
				}
			}
			out = append(out, mc)
		}
	}
	return out
}

func withoutStatic(b map[string]any) map[string]any {
	c := map[string]any{}
	for k, v := range b {
		if k != "private_ip_address" {
			c[k] = v
		}
	}
	return c
}

// byAddress returns the machines a translated or backend address v names:
// the one whose interface it is assigned to (tf.PrivateIPOf), the one
// whose interface holds it statically, or else any that takes an
// address Azure assigns in a subnet holding it; every machine when v is
// not known statically. why says what was assumed ("" when proven).
func byAddress(ms []*azMachine, v any) (out []*azMachine, why string) {
	s, ok := v.(string)
	for _, mc := range ms {
		for nic := range mc.nics {
			if ok && s == tf.PrivateIPOf(nic) {
				out = append(out, mc)
			}
		}
	}
	if len(out) > 0 {
		return out, "" // the address Azure assigns the machine's interface
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if !ok || err != nil {
		if _, unk := v.(tf.Unknown); unk || !ok {
			return ms, "not known statically: assumed to be any machine of the project"
		}
		return nil, "" // a name: not a machine's address
	}
	for _, mc := range ms {
		if mc.static[a] {
			out = append(out, mc)
		}
	}
	if len(out) > 0 {
		return out, ""
	}
	for _, mc := range ms {
		if mc.elsewhere || slices.ContainsFunc(mc.dynamic, func(sub *Subnet) bool { return !sub.CIDR.IsValid() || sub.CIDR.Contains(a) }) {
			out = append(out, mc)
		}
	}
	return out, fmt.Sprintf("%s is held statically by no interface in the project: assumed to be any machine with an address Azure assigns in a subnet that holds it or in one not in the scanned code", a)
}

// azureLBAddresses places the machines that a load balancer's pool names by
// address (azurerm_lb_backend_address_pool_address) in that pool: an
// internal balancer's rules then reach them, and a public one forwards its
// rules' ports to them, as it does to interfaces it names.
func (m *Model) azureLBAddresses(byType map[string][]*tf.Resource, ms []*azMachine, lbs *azureLBModel) {
	for _, r := range byType["azurerm_lb_backend_address_pool_address"] {
		pool := m.addr(str(r.Values, "backend_address_pool_id"))
		targets, why := byAddress(ms, r.Values["ip_address"])
		if why != "" {
			m.note(r, "ip_address %s", why)
		}
		for _, mc := range targets {
			mc.lbPools[pool] = true
			lb := lbs.pools[pool]
			if !lbs.public[lb] || mc.e.Public {
				continue
			}
			f := lbs.poolForward(pool)
			if len(f.ports) == 0 {
				continue
			}
			f.apply(mc.e)
			mc.e.Families = reachFamilies(false, nil, f)
			if why != "" {
				mc.e.PublicAssumed = true
				mc.e.Why += " (" + r.Address + ": ip_address " + why + ")"
			}
		}
	}
}

// notKnown names a block whose list is not known statically.
const notKnown = "(not known statically)"

// unknownRule stands for DNAT rules not known statically (a dynamic block
// over a variable): from any address, to any machine, on any port.
var unknownRule = map[string]any{"name": notKnown, "source_addresses": tf.Unknown{}, "translated_address": tf.Unknown{},
	"translated_port": tf.Unknown{}, "protocols": tf.Unknown{}}

// blocksOr reads the nested blocks k of vals, or stand when their list is
// not known statically.
func blocksOr(vals map[string]any, k string, stand map[string]any) []map[string]any {
	if unknown(vals, k) {
		return []map[string]any{stand}
	}
	return blocks(vals, k)
}

// azTarget is a machine that a translated or backend address reaches, on
// port, through hops (an internal load balancer's rule).
type azTarget struct {
	mc   *azMachine
	port int
	hops []Hop
	// assumed says why the machine is read as a target it may not be.
	assumed string
}

// ilbRule is a rule of an internal load balancer: what its frontend
// forwards on front to its pools on back (anyPort: not known statically;
// 0 on both: HA ports, every port as it came).
type ilbRule struct {
	lb, name, proto string
	front, back     int
	pools           map[string]bool
	poolsUnk        bool // some pool it forwards to is not known statically
}

// internalLBs returns the rules of the project's load balancers by the
// private addresses of their frontends: a static private_ip_address, and
// the stand-in of what the balancer exports (tf.PrivateIPOf).
func (m *Model) internalLBs(byType map[string][]*tf.Resource) map[string][]ilbRule {
	keys := map[[2]string][]string{} // balancer, frontend name → addresses
	for _, r := range byType["azurerm_lb"] {
		for i, fe := range blocks(r.Values, "frontend_ip_configuration") {
			if has(fe, "public_ip_address_id") || has(fe, "public_ip_prefix_id") {
				continue
			}
			k := [2]string{r.Address, str(fe, "name")}
			if a := str(fe, "private_ip_address"); a != "" {
				keys[k] = append(keys[k], a)
			}
			if i == 0 {
				keys[k] = append(keys[k], tf.PrivateIPOf(r.Address))
			}
		}
	}
	out := map[string][]ilbRule{}
	for _, r := range byType["azurerm_lb_rule"] {
		lb := m.addr(str(r.Values, "loadbalancer_id"))
		addrs := keys[[2]string{lb, str(r.Values, "frontend_ip_configuration_name")}]
		pools, poolsUnk := map[string]bool{}, false
		for _, k := range []string{"backend_address_pool_ids", "backend_address_pool_id"} {
			for _, id := range strList(r.Values, k) {
				pools[m.addr(id)] = true
			}
			if unk, _ := unknownRefs(r.Values, k); unk {
				poolsUnk = true
			}
		}
		front, back := portOf(r.Values, "frontend_port"), portOf(r.Values, "backend_port")
		for _, proto := range lbProtos(str(r.Values, "protocol")) {
			for _, a := range addrs {
				out[a] = append(out[a], ilbRule{lb, str(r.Values, "name"), proto, front, back, pools, poolsUnk})
			}
		}
	}
	return out
}

// resolve returns the machines that address v, on proto/port, reaches:
// through an internal load balancer whose frontend it is, or directly
// (byAddress). why says what was assumed.
func resolve(ms []*azMachine, ilbs map[string][]ilbRule, v any, proto string, port int) ([]azTarget, string) {
	var out []azTarget
	if s, ok := v.(string); ok && len(ilbs[s]) > 0 {
		why := ""
		for _, ru := range ilbs[s] {
			if ru.proto != proto || ru.front >= 0 && port >= 0 && ru.front != 0 && ru.front != port {
				continue
			}
			back := ru.back
			if ru.front == 0 && ru.back == 0 {
				back = port // HA ports: as it came
			}
			if ru.front < 0 || port < 0 {
				why = "(an internal load balancer's frontend): its rule's port or the translated port is not known statically: assumed to match"
			}
			hop := Hop{Kind: "lb", Addr: ru.lb, Detail: fmt.Sprintf("internal load balancer rule %s forwards %s to its backend pool on %s", ru.name, protoPort(proto, port), protoPort(proto, back))}
			for _, mc := range ms {
				in := false
				for p := range ru.pools {
					in = in || mc.lbPools[p]
				}
				// A pool not known statically, the rule's or the
				// machine's, may be the one: assumed.
				t := azTarget{mc: mc, port: back, hops: []Hop{hop}}
				if !in && (mc.lbPoolUnk || ru.poolsUnk && len(mc.lbPools) > 0) {
					in = true
					t.assumed = fmt.Sprintf("%s rule %s: a backend pool not known statically is assumed to hold %s", ru.lb, ru.name, mc.e.Addr)
				}
				if in {
					out = append(out, t)
				}
			}
		}
		return out, why
	}
	mcs, why := byAddress(ms, v)
	for _, mc := range mcs {
		out = append(out, azTarget{mc: mc, port: port})
	}
	return out, why
}

func fwProtos(b map[string]any) []string {
	ps, unk := strs(b, "protocols")
	if unk || len(ps) == 0 {
		return []string{"tcp", "udp"}
	}
	var out []string
	for _, p := range ps {
		out = append(out, lbProtos(p)...)
	}
	return dedup(out)
}

// portOf reads a port that may be written as a number or a string; -1
// when it is not known statically.
func portOf(b map[string]any, k string) int {
	if n, err := strconv.Atoi(strings.TrimSpace(str(b, k))); err == nil {
		return n
	}
	return -1
}

// azureFirewalls publishes the machines that Azure Firewall DNAT rules
// translate to: classic NAT rule collections and the NAT rule collections
// of a firewall policy (inherited by child policies).
func (m *Model) azureFirewalls(byType map[string][]*tf.Resource, ms []*azMachine, ilbs map[string][]ilbRule, pips map[string]bool, family map[string][]netip.Prefix) {
	type fw struct {
		r      *tf.Resource
		subnet *Subnet
		front  string
	}
	fws := map[string]*fw{}
	byPolicy := map[string][]*fw{}
	var order []string
	for _, r := range byType["azurerm_firewall"] {
		f := &fw{r: r}
		for _, b := range blocks(r.Values, "ip_configuration") {
			if ss := m.subnetsOf(strList(b, "subnet_id")); len(ss) > 0 && f.subnet == nil {
				f.subnet = ss[0]
			}
			if p := m.addr(str(b, "public_ip_address_id")); pips[p] && f.front == "" {
				f.front = p
			}
		}
		fws[r.Address] = f
		order = append(order, r.Address)
		if p := str(r.Values, "firewall_policy_id"); p != "" {
			byPolicy[m.addr(p)] = append(byPolicy[m.addr(p)], f)
		}
	}
	// A child policy inherits its base policy's rules.
	base := map[string]string{}
	for _, r := range byType["azurerm_firewall_policy"] {
		if b := str(r.Values, "base_policy_id"); b != "" {
			base[r.Address] = m.addr(b)
		}
	}
	firewallsOf := func(policy string) []*fw {
		var out []*fw
		seen := map[string]bool{}
		var walk func(p string, depth int)
		walk = func(p string, depth int) {
			if depth > 8 || seen[p] {
				return
			}
			seen[p] = true
			out = append(out, byPolicy[p]...)
			for child, b := range base {
				if b == p {
					walk(child, depth+1)
				}
			}
		}
		walk(policy, 0)
		return out
	}
	type rule struct {
		res  *tf.Resource
		name string // collection/rule
		b    map[string]any
		fws  []*fw
	}
	var rules []rule
	for _, r := range byType["azurerm_firewall_nat_rule_collection"] {
		var on []*fw
		if a := m.addrOf("azurerm_firewall", m.ref(r.Values, "azure_firewall_name")); fws[a] != nil {
			on = append(on, fws[a])
		}
		if !strings.EqualFold(str(r.Values, "action"), "Dnat") && !unknown(r.Values, "action") {
			continue
		}
		for _, b := range blocksOr(r.Values, "rule", unknownRule) {
			rules = append(rules, rule{r, str(r.Values, "name") + "/" + str(b, "name"), b, on})
		}
	}
	for _, r := range byType["azurerm_firewall_policy_rule_collection_group"] {
		on := firewallsOf(m.addr(str(r.Values, "firewall_policy_id")))
		for _, c := range blocksOr(r.Values, "nat_rule_collection", map[string]any{"name": notKnown, "rule": tf.Unknown{}}) {
			for _, b := range blocksOr(c, "rule", unknownRule) {
				rules = append(rules, rule{r, str(c, "name") + "/" + str(b, "name"), b, on})
			}
		}
	}
	for _, ru := range rules {
		src, srcAssumed, _ := m.azurePrefixes(ru.res, ru.b, "", "source_addresses", nil)
		if ids, unk := strs(ru.b, "source_ip_groups"); unk || len(ids) > 0 {
			if ranges, ok := m.ipGroupRanges(byType, ids, unk); ok {
				src = append(src, ranges...)
			} else {
				src, srcAssumed = allAddresses, "source IP groups not known statically or not in the scanned code: assumed to be every address"
			}
		}
		if len(src) == 0 || srcAssumed == "" && empty(intersect(setOf(src...), m.Internet().Set)) {
			// No internet address among its clients: it publishes
			// nothing to the internet.
			continue
		}
		port := portOf(ru.b, "translated_port")
		targetsOf := func(proto string) ([]azTarget, []string) {
			var ts []azTarget
			var why string
			switch {
			case has(ru.b, "translated_address"):
				if ts, why = resolve(ms, ilbs, ru.b["translated_address"], proto, port); why != "" {
					why = "address " + why
				}
			case has(ru.b, "translated_fqdn"):
				// A name resolved when the firewall runs: any machine.
				ts, _ = resolve(ms, nil, tf.Unknown{}, proto, port)
				why = fmt.Sprintf("FQDN %s is not resolved statically: assumed to be any machine of the project", orUnknown(str(ru.b, "translated_fqdn")))
			}
			var assumed []string
			if why != "" {
				assumed = append(assumed, ru.res.Address+" ("+ru.name+"): translated "+why)
			}
			if srcAssumed != "" {
				assumed = append(assumed, ru.res.Address+" ("+ru.name+"): "+srcAssumed)
			}
			if len(ts) == 0 {
				m.note(ru.res, "DNAT rule %s: %s reaches no machine of the project (by an interface's address or an internal load balancer's rule)", ru.name, translated(ru.b, port))
			}
			return ts, assumed
		}
		on := ru.fws
		if len(on) == 0 {
			on = []*fw{{}} // a firewall outside the scanned code
		}
		dports := strings.Join(strList(ru.b, "destination_ports"), ", ")
		if dports == "" {
			dports = "(not known statically)"
		}
		for _, f := range on {
			name := "a firewall outside the scanned code"
			var from Source
			if f.r != nil {
				name = f.r.Address
				if f.subnet != nil {
					from = m.SubnetSource(f.subnet)
					from.Name = f.r.Address + " (in " + f.subnet.Addr + ")"
				}
			}
			gw, front := name, f.front
			// The internet reaches the firewall from its public IPs'
			// address family (either when not known).
			sources := setOf(src...)
			if fam, ok := family[front]; ok {
				sources = intersect(sources, setOf(fam...))
			}
			for _, proto := range fwProtos(ru.b) {
				hop := Hop{Kind: "firewall", Addr: ru.res.Address, Detail: fmt.Sprintf("DNAT rule %s on %s translates %s %s to %s",
					ru.name, gw, proto, dports, translated(ru.b, port))}
				frontFn := func(inet Source) Result {
					got := intersect(inet.Set, sources)
					start := Hop{Kind: "source", Detail: inet.Name}
					if empty(got) {
						return Result{Path: []Hop{start, {Kind: "firewall", Addr: ru.res.Address, Detail: "the rule admits no internet address"}}}
					}
					at := "its public IP"
					if front != "" {
						at = "public IP " + front
					}
					return Result{Reachable: true, From: got, Path: []Hop{start,
						{Kind: "firewall", Addr: gw, Detail: fmt.Sprintf("Azure Firewall, %s, admits %s (rule %s)", at, m.describe(got), ru.name)}}}
				}
				targets, assumed := targetsOf(proto)
				for _, t := range targets {
					as := assumed
					if t.assumed != "" {
						as = append(append([]string(nil), assumed...), t.assumed)
					}
					t.mc.e.Published = append(t.mc.e.Published, Publish{Proto: proto, Port: t.port, front: frontFn, Hops: append([]Hop{hop}, t.hops...), From: from, Gateway: gw, Assumed: as})
				}
			}
		}
	}
}

func translated(b map[string]any, port int) string {
	addr := str(b, "translated_address")
	if addr == "" {
		addr = str(b, "translated_fqdn")
	}
	if addr == "" {
		addr = "(address not known statically)"
	}
	if port < 0 {
		return addr + ":(port not known statically)"
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// azureAppGateways makes each Application Gateway an endpoint (a gateway,
// public when a frontend has a public IP, listening on its listeners'
// ports) and publishes the machines of its backend pools on the ports of
// the backend settings that its routing rules pair with public listeners.
func (m *Model) azureAppGateways(byType map[string][]*tf.Resource, ms []*azMachine, ilbs map[string][]ilbRule, pips map[string]bool, family map[string][]netip.Prefix) {
	// Pools named by association resources: the interface's machine.
	nicPools := map[string][]string{} // interface → pool IDs ("" when not known)
	for _, r := range byType["azurerm_network_interface_application_gateway_backend_address_pool_association"] {
		id := m.addr(str(r.Values, "backend_address_pool_id"))
		if unknown(r.Values, "backend_address_pool_id") {
			id = ""
		}
		ifaces, _ := m.refAddrs(r.Values, "network_interface_id", byType["azurerm_network_interface"])
		for _, nic := range ifaces {
			nicPools[nic] = append(nicPools[nic], id)
		}
	}
	gws := byType["azurerm_application_gateway"]
	pools := 0
	for _, r := range gws {
		pools += len(blocks(r.Values, "backend_address_pool"))
	}
	for _, r := range gws {
		e := &Endpoint{Addr: r.Address, Kind: "application gateway", Res: r, Azure: true, Gateway: true}
		for _, b := range blocks(r.Values, "gateway_ip_configuration") {
			known, maybe := m.ifaceSubnets(b)
			e.Subnets = append(e.Subnets, known...)
			maybeSubnets(e, r.Address, maybe)
		}
		publicFE := map[string]bool{}
		for _, b := range blocks(r.Values, "frontend_ip_configuration") {
			if p := m.addr(str(b, "public_ip_address_id")); pips[p] || unknown(b, "public_ip_address_id") {
				publicFE[str(b, "name")] = true
				e.Public, e.Why = true, "public frontend "+str(b, "name")
				if f, ok := family[p]; ok {
					e.Families = append(e.Families, f...)
				} else {
					e.Families = append(e.Families, allInternet...)
				}
			}
		}
		fports := map[string]int{}
		for _, b := range blocks(r.Values, "frontend_port") {
			fports[str(b, "name")] = portOf(b, "port")
		}
		listeners := map[string]int{} // public listener → its port
		for _, b := range blocksOr(r.Values, "http_listener", map[string]any{"name": notKnown, "frontend_ip_configuration_name": tf.Unknown{}}) {
			fe := str(b, "frontend_ip_configuration_name")
			if publicFE[fe] || fe == "" && len(publicFE) > 0 || unknown(b, "frontend_ip_configuration_name") && len(publicFE) > 0 {
				p, ok := fports[str(b, "frontend_port_name")]
				if !ok {
					p = -1
				}
				listeners[str(b, "name")] = p
			}
		}
		var ports []int
		unset := false
		for _, p := range listeners {
			if p < 0 {
				unset = true
			} else {
				ports = append(ports, p)
			}
		}
		sort.Ints(ports)
		e.Ports = ports
		if !unset {
			e.Listens = listensOn(ports)
		}
		m.Endpoints = append(m.Endpoints, e)
		if !e.Public {
			continue
		}
		settings := map[string]int{}
		for _, b := range blocks(r.Values, "backend_http_settings") {
			settings[str(b, "name")] = portOf(b, "port")
		}
		// What is not known statically routes every public listener to
		// every pool, on every port, said on the path.
		var unk []string
		for _, k := range []string{"backend_http_settings", "backend_address_pool", "request_routing_rule", "url_path_map"} {
			if unknown(r.Values, k) {
				unk = append(unk, k)
			}
		}
		if unknown(r.Values, "backend_http_settings") {
			settings = map[string]int{notKnown: -1}
		}
		var poolNames, setNames []string
		for _, b := range blocksOr(r.Values, "backend_address_pool", map[string]any{"name": notKnown}) {
			poolNames = append(poolNames, str(b, "name"))
		}
		for n := range settings {
			setNames = append(setNames, n)
		}
		sort.Strings(setNames)
		every := func() [][2]string {
			var out [][2]string
			for _, p := range poolNames {
				for _, st := range setNames {
					out = append(out, [2]string{p, st})
				}
			}
			return out
		}
		named := func(name string, known map[string]int) string {
			if _, ok := known[name]; !ok && unknown(r.Values, "backend_http_settings") {
				return notKnown
			}
			return name
		}
		paths := map[string][][2]string{} // url path map → (pool, settings) pairs
		for _, b := range blocks(r.Values, "url_path_map") {
			pairs := [][2]string{{str(b, "default_backend_address_pool_name"), str(b, "default_backend_http_settings_name")}}
			for _, pr := range blocks(b, "path_rule") {
				pairs = append(pairs, [2]string{str(pr, "backend_address_pool_name"), str(pr, "backend_http_settings_name")})
			}
			paths[str(b, "name")] = pairs
		}
		poolTargets := map[string][]*azMachine{} // by membership
		poolAddrs := map[string][]any{}          // by address, resolved with the settings' port
		poolWhy := map[string]string{}
		for _, b := range blocksOr(r.Values, "backend_address_pool", map[string]any{"name": notKnown, "ip_addresses": tf.Unknown{}}) {
			name := str(b, "name")
			addrs := b["ip_addresses"]
			if list, ok := addrs.([]any); ok {
				poolAddrs[name] = list
			} else if _, unk := addrs.(tf.Unknown); unk {
				poolTargets[name], poolWhy[name] = ms, "backend addresses not known statically: assumed to be any machine of the project"
			}
			for _, mc := range ms {
				named := false
				for _, id := range mc.pools {
					named = named || id == r.Address
				}
				for nic := range mc.nics {
					for _, id := range nicPools[nic] {
						if id == r.Address {
							named = true
						} else if id == "" {
							named = true
							if pools > 1 {
								poolWhy[name] = "an association's backend pool is not known statically: assumed to be any pool of the project's application gateways"
							}
						}
					}
				}
				if mc.poolUnk {
					named = true
					if pools > 1 {
						poolWhy[name] = "a scale set's backend pool is not known statically: assumed to be any pool of the project's application gateways"
					}
				}
				if named {
					poolTargets[name] = append(poolTargets[name], mc)
				}
			}
		}
		var from Source
		if len(e.Subnets) > 0 {
			from = m.SubnetSource(e.Subnets[0])
			from.Name = r.Address + " (in " + e.Subnets[0].Addr + ")"
		}
		gw := e
		routing := blocks(r.Values, "request_routing_rule")
		if unknown(r.Values, "request_routing_rule") {
			for l := range listeners {
				routing = append(routing, map[string]any{"name": notKnown, "http_listener_name": l})
			}
		}
		for _, rr := range routing {
			var ls []string
			switch l := str(rr, "http_listener_name"); {
			case unknown(rr, "http_listener_name"):
				for l := range listeners {
					ls = append(ls, l)
				}
				sort.Strings(ls)
			case len(listeners) == 1 && listeners[notKnown] != 0:
				ls = []string{notKnown} // listeners not known statically
			default:
				ls = []string{l}
			}
			pools, sets := []string{str(rr, "backend_address_pool_name")}, []string{named(str(rr, "backend_http_settings_name"), settings)}
			var unkRule []string
			if unknown(rr, "http_listener_name") {
				unkRule = append(unkRule, "http_listener_name")
			}
			if unknown(rr, "backend_address_pool_name") {
				pools, unkRule = poolNames, append(unkRule, "backend_address_pool_name")
			}
			if unknown(rr, "backend_http_settings_name") {
				sets, unkRule = setNames, append(unkRule, "backend_http_settings_name")
			}
			var pairs [][2]string
			for _, p := range pools {
				for _, st := range sets {
					pairs = append(pairs, [2]string{p, st})
				}
			}
			switch pm := str(rr, "url_path_map_name"); {
			case str(rr, "name") == notKnown, unknown(rr, "url_path_map_name"):
				pairs = every()
			case pm != "" && unknown(r.Values, "url_path_map"):
				pairs = every()
			case pm != "":
				pairs = paths[pm]
			}
			for _, l := range ls {
				lport, ok := listeners[l]
				if !ok {
					continue // a private listener's
				}
				for _, pr := range pairs {
					if unknown(r.Values, "backend_address_pool") {
						pr[0] = notKnown
					}
					bport, ok := settings[named(pr[1], settings)]
					if !ok {
						continue // a redirect
					}
					var targets []azTarget
					for _, mc := range poolTargets[pr[0]] {
						targets = append(targets, azTarget{mc: mc, port: bport})
					}
					whys := []string{poolWhy[pr[0]]}
					if len(unk) > 0 {
						whys = append(whys, strings.Join(unk, ", ")+" not known statically: read as routing every public listener to every pool on every port")
					}
					if len(unkRule) > 0 {
						whys = append(whys, "request_routing_rule "+strings.Join(unkRule, ", ")+" not known statically: read as every listener, pool or settings")
					}
					for _, a := range poolAddrs[pr[0]] {
						t, why := resolve(ms, ilbs, a, "tcp", bport)
						targets = append(targets, t...)
						if why != "" {
							whys = append(whys, "backend address "+why)
						}
					}
					var assumed []string
					for _, w := range dedup(whys) {
						if w != "" {
							assumed = append(assumed, r.Address+" (pool "+pr[0]+"): "+w)
						}
					}
					// Named by its listener: the gateway itself is the
					// hop before.
					hop := Hop{Kind: "gateway", Addr: r.Address + ":" + l, Detail: fmt.Sprintf("listener %s (%s) routes to backend pool %s on %s (request_routing_rule %s)",
						l, portLabel(lport), pr[0], portLabel(bport), str(rr, "name"))}
					lp := lport
					front := func(inet Source) Result {
						p := lp
						if p < 0 {
							p = 443
						}
						return m.reach(inet, gw, "tcp", p)
					}
					seen := map[*azMachine]bool{}
					for _, t := range targets {
						if !seen[t.mc] {
							seen[t.mc] = true
							as := assumed
							if t.assumed != "" {
								as = append(append([]string(nil), assumed...), t.assumed)
							}
							t.mc.e.Published = append(t.mc.e.Published, Publish{Proto: "tcp", Port: t.port, front: front, Hops: append([]Hop{hop}, t.hops...), From: from, Gateway: r.Address, Assumed: as})
						}
					}
				}
			}
		}
	}
}

func portLabel(p int) string { return protoPort("tcp", p) }

func protoPort(proto string, p int) string {
	if p < 0 {
		return proto + " (a port not known statically)"
	}
	return fmt.Sprintf("%s %d", proto, p)
}

// exposureFix returns the remediation of an exposed port reached on paths
// (one a port): the endpoint's own when it has one; for an Azure machine
// reached through something that publishes its port (a firewall's DNAT
// rule, a public load balancer's rule, an application gateway's
// listener, a Front Door origin), one that names it, and the public IP too when some path
// reaches the machine's own; "" (the rule's, which removes the public IP)
// when every path does.
func (e *Endpoint) exposureFix(paths [][]Hop) string {
	if e.Fix != "" || !e.Azure {
		return e.Fix
	}
	var dnat, lb, gw, fd []string
	ownIP := false
	for _, path := range paths {
		published := false
		for _, h := range path {
			switch {
			case h.Kind == "firewall" && strings.HasPrefix(h.Detail, "DNAT rule "):
				rule, _, _ := strings.Cut(strings.TrimPrefix(h.Detail, "DNAT rule "), " translates ")
				dnat, published = append(dnat, rule+", in "+h.Addr), true
			case h.Kind == "lb" && strings.HasPrefix(h.Detail, "public load balancer forwards "):
				_, rules, _ := strings.Cut(h.Detail, " to it (")
				lb, published = append(lb, strings.TrimSuffix(rules, ")")+" of "+h.Addr), true
			case h.Kind == "gateway" && strings.HasPrefix(h.Detail, "Azure Front Door origin "):
				fd, published = append(fd, h.Addr), true
			case h.Kind == "gateway" && strings.HasPrefix(h.Detail, "private link service "):
				// The way in of the Front Door origin before it.
			case h.Kind == "gateway":
				gw, published = append(gw, h.Addr), true
			}
		}
		ownIP = ownIP || !published
	}
	if len(dnat)+len(lb)+len(gw)+len(fd) == 0 {
		return ""
	}
	var what []string
	if len(dnat) > 0 {
		what = append(what, "the Azure Firewall DNAT rules that translate it to the machine ("+strings.Join(dedup(dnat), "; ")+"), or narrow their source addresses to known ranges")
	}
	if len(lb) > 0 {
		what = append(what, "the public load balancer's rules that forward it ("+strings.Join(dedup(lb), "; ")+")")
	}
	if len(gw) > 0 {
		what = append(what, "the application gateway listeners that route to it ("+strings.Join(dedup(gw), ", ")+")")
	}
	if len(fd) > 0 {
		what = append(what, "the Front Door origins that reach it through a private link service ("+strings.Join(dedup(fd), ", ")+"), or the load balancer rules that forward the port")
	}
	if ownIP {
		what = append(what, "the machine's public IP")
	}
	return "Stop publishing the port: remove " + strings.Join(what, "; remove ") + "; reach the machine through Azure Bastion, a VPN or the moat gateway, and allow the port in the NSGs only from known ranges or application security groups."
}

// ipGroupRanges returns the ranges of the IP groups ids name
// (azurerm_ip_group's cidrs and the azurerm_ip_group_cidr that add to
// them); false when one is not known statically or not in the scanned
// code (unk: the list holds an element not known statically), or when a
// range added to any group may be added to one of these.
func (m *Model) ipGroupRanges(byType map[string][]*tf.Resource, ids []string, unk bool) ([]netip.Prefix, bool) {
	if unk {
		return nil, false
	}
	parse := func(v string) (netip.Prefix, bool) {
		if p, err := netip.ParsePrefix(v); err == nil {
			return p.Masked(), true
		}
		if a, err := netip.ParseAddr(v); err == nil {
			return netip.PrefixFrom(a, a.BitLen()), true
		}
		return netip.Prefix{}, false
	}
	var out []netip.Prefix
	for _, id := range ids {
		g := m.lookup(m.addr(id))
		if g == nil || g.Type != "azurerm_ip_group" {
			return nil, false
		}
		cidrs, unk := strs(g.Values, "cidrs")
		if unk {
			return nil, false
		}
		for _, r := range byType["azurerm_ip_group_cidr"] {
			if unknown(r.Values, "ip_group_id") || m.addr(str(r.Values, "ip_group_id")) == g.Address {
				if unknown(r.Values, "cidr") {
					return nil, false
				}
				cidrs = append(cidrs, str(r.Values, "cidr"))
			}
		}
		for _, c := range cidrs {
			p, ok := parse(c)
			if !ok {
				return nil, false
			}
			out = append(out, p)
		}
	}
	return out, true
}
