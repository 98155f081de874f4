package check

import (
	"fmt"
	"strings"

	"moat/internal/check/tf"
)

// maxAcceleratorPorts is the widest listener port range followed port by
// port; a wider one is read as every port, and said so.
const maxAcceleratorPorts = 1024

// accelerators publishes what each Global Accelerator's endpoint groups
// name: the internet reaches the accelerator's listener on its ports (an
// accelerator is always internet-facing, unless enabled = false), and the
// accelerator opens its own connection to the endpoint from the
// endpoint's subnet, whatever its routes: an instance or an internal
// balancer in a private subnet is reached too. With client IP
// preservation (client_ip_preservation_enabled, which AWS keeps on for
// instances and internal balancers) the endpoint sees the client's own
// address, so its groups must admit the internet; without it, the
// accelerator's address in the subnet. A balancer forwards on to its
// targets. An endpoint given by an Elastic IP is public already; one not
// known statically is not followed, and a note says so.
func (m *Model) accelerators(byType map[string][]*tf.Resource, f *frontModel) {
	// A custom routing accelerator maps its listener's ports to addresses
	// and ports of the instances in the subnets its endpoint groups name,
	// as far as the traffic allowed to them through the API says: not
	// followed, and said so.
	for _, g := range byType["aws_globalaccelerator_custom_routing_endpoint_group"] {
		m.note(g, "custom routing endpoint group: the internet reaches the instances in the subnets it names on the destination ports AWS allows them through its API, which this reader does not follow: what it reaches is not evaluated")
	}
	listeners := map[string]*tf.Resource{}
	for _, l := range byType["aws_globalaccelerator_listener"] {
		listeners[l.Address] = l
	}
	inet := m.Internet()
	for _, g := range byType["aws_globalaccelerator_endpoint_group"] {
		l := listeners[m.addr(str(g.Values, "listener_arn"))]
		if l == nil {
			m.note(g, "its listener is not in the scanned code: the endpoints it names are not followed")
			continue
		}
		acc := m.lookup(m.addr(str(l.Values, "accelerator_arn")))
		door := l.Address
		if acc != nil {
			if has(acc.Values, "enabled") && !unknown(acc.Values, "enabled") && !boolean(acc.Values, "enabled", true) {
				continue // a disabled accelerator takes no traffic
			}
			door = acc.Address
		}
		// IPv4 alone unless the accelerator is dual-stack (or that is
		// not known statically).
		fam := setOf(allInternet[0])
		if acc == nil || unknown(acc.Values, "ip_address_type") || strings.EqualFold(str(acc.Values, "ip_address_type"), "DUAL_STACK") {
			fam = setOf(allInternet...)
		}
		proto := strings.ToLower(str(l.Values, "protocol"))
		if proto != "udp" {
			proto = "tcp"
		}
		var ports []int
		for _, pr := range blocks(l.Values, "port_range") {
			from, to := num(pr, "from_port", -1), num(pr, "to_port", -1)
			if unknown(pr, "from_port") || unknown(pr, "to_port") || from < 0 || to < from || to-from >= maxAcceleratorPorts {
				ports = append(ports, -1)
				continue
			}
			for p := from; p <= to; p++ {
				ports = append(ports, p)
			}
		}
		if blocksUnknown(l.Values, "port_range") {
			ports = append(ports, -1)
		}
		override := map[int]int{}
		for _, o := range blocks(g.Values, "port_override") {
			if !unknown(o, "listener_port") && !unknown(o, "endpoint_port") {
				override[num(o, "listener_port", -1)] = num(o, "endpoint_port", -1)
			}
		}
		for _, ec := range blocks(g.Values, "endpoint_configuration") {
			if unknown(ec, "endpoint_id") {
				m.note(g, "an endpoint_configuration's endpoint_id is not known statically: what the accelerator reaches there is not followed")
				continue
			}
			e := f.byAddr[m.addr(str(ec, "endpoint_id"))]
			if e == nil {
				continue // outside the scanned code, or an Elastic IP: public already
			}
			preserved := boolean(ec, "client_ip_preservation_enabled", true) || unknown(ec, "client_ip_preservation_enabled") || e.Kind != "lb"
			name := "Global Accelerator " + door
			via := m.frontSource(name, e.Subnets, nil)
			if preserved && via.Name != "" {
				// The client's own address, arriving in the subnet.
				via.Name, via.Set = name+" (client addresses preserved)", intersect(inet.Set, fam)
			}
			for _, lport := range ports {
				port := lport
				if p, ok := override[lport]; ok {
					port = p
				}
				detail := fmt.Sprintf("listener %s on %s %d", l.Address, proto, lport)
				if lport < 0 {
					detail = fmt.Sprintf("listener %s on every %s port of its range", l.Address, proto)
				}
				toDoor := m.internetTo(door, "Global Accelerator, "+detail, nil)
				front := func(src Source) Result {
					src.Set = intersect(src.Set, fam)
					return toDoor(src)
				}
				hop := Hop{Kind: "gateway", Addr: g.Address, Detail: fmt.Sprintf("endpoint group forwards %s to %s on %d", detail, e.Addr, port)}
				if e.Kind == "lb" {
					m.publishLB(f, e, nil, front, hop, via, g.Address, nil)
					continue
				}
				e.Published = append(e.Published, Publish{Proto: proto, Port: port, front: front, Hops: []Hop{hop}, From: via, Gateway: g.Address})
			}
		}
	}
}
