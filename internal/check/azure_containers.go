package check

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// Azure Container Instances: a container group whose ip_address_type is
// Public (the provider's default) gets an address of the internet that
// forwards its exposed ports to the containers, with no network security
// group in the way: only the ports stand between the internet and the
// containers. A Private group sits in its subnets (subnet_ids), behind
// their NSGs; a group of type None takes no inbound traffic.

// aciPort is one port a container group exposes.
type aciPort struct {
	proto string // tcp or udp
	port  int
}

// aciPorts reads the ports a container group exposes: its exposed_port
// blocks, or, without them, every port its containers declare. why is set
// when one is not known statically: the group is then read as exposing
// every port.
func aciPorts(vals map[string]any) (out []aciPort, why string) {
	read := func(b map[string]any, where string) {
		if unknown(b, "port") || unknown(b, "protocol") || num(b, "port", 0) <= 0 {
			why = where + " has a port not known statically: assumed to expose every port"
			return
		}
		proto := "tcp"
		if strings.EqualFold(str(b, "protocol"), "udp") {
			proto = "udp"
		}
		out = append(out, aciPort{proto, num(b, "port", 0)})
	}
	if has(vals, "exposed_port") {
		if blocksUnknown(vals, "exposed_port") {
			return nil, "exposed_port is not known statically: assumed to expose every port"
		}
		for _, b := range blocks(vals, "exposed_port") {
			read(b, "exposed_port")
		}
		return out, why
	}
	if blocksUnknown(vals, "container") {
		return nil, "container is not known statically: assumed to expose every port"
	}
	for _, c := range blocks(vals, "container") {
		if blocksUnknown(c, "ports") {
			return nil, "container.ports is not known statically: assumed to expose every port"
		}
		for _, b := range blocks(c, "ports") {
			read(b, "container.ports")
		}
	}
	return out, why
}

// azureContainerGroups adds container groups as endpoints: a public one
// reached from every IPv4 address on its exposed ports, a private one in
// its subnets.
func (m *Model) azureContainerGroups(byType map[string][]*tf.Resource) {
	for _, r := range byType["azurerm_container_group"] {
		typ := str(r.Values, "ip_address_type")
		if strings.EqualFold(typ, "None") {
			continue // no address: nothing reaches the containers
		}
		e := &Endpoint{Addr: r.Address, Kind: "container group", Res: r, Azure: true, AppPorts: true}
		ports, why := aciPorts(r.Values)
		if why != "" {
			m.note(r, "%s", why)
			e.PortsAssumed = why
			for _, s := range sensitivePorts {
				e.Ports = append(e.Ports, s.Port)
			}
		} else {
			for _, p := range ports {
				if !slices.Contains(e.Ports, p.port) {
					e.Ports = append(e.Ports, p.port)
				}
			}
			sort.Ints(e.Ports)
			names := make([]string, len(ports))
			for i, p := range ports {
				names[i] = protoPort(p.proto, p.port)
			}
			e.ListensOn = "it exposes " + orNone(strings.Join(names, ", "))
			e.Listens = func(proto string, port int) bool {
				return slices.Contains(ports, aciPort{proto, port})
			}
		}
		switch {
		case strings.EqualFold(typ, "Private"):
			e.Subnets = m.subnetsIn(e, r.Values, "subnet_ids")
			m.aciProfileSubnets(e, r)
		case unknown(r.Values, "ip_address_type"):
			e.Managed, e.Public, e.PublicAssumed = true, true, true
			e.Why = "ip_address_type is not known statically: read as Public"
			e.Allowed = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		default:
			e.Managed, e.Public = true, true
			e.Why = "ip_address_type is Public (the default): the group's public address forwards its exposed ports, with no network security group in the way"
			if typ != "" {
				e.Why = fmt.Sprintf("ip_address_type is %s: the group's public address forwards its exposed ports, with no network security group in the way", typ)
			}
			e.Allowed = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
		}
		m.Endpoints = append(m.Endpoints, e)
	}
}

// aciProfileSubnets places a private container group that names its
// subnet through network_profile_id (azurerm before 3.16) in the subnets
// of its profile's container network interfaces; a profile outside the
// scanned code, or not known statically, places it nowhere, said so.
func (m *Model) aciProfileSubnets(e *Endpoint, r *tf.Resource) {
	if !has(r.Values, "network_profile_id") {
		return
	}
	p := m.lookup(m.ref(r.Values, "network_profile_id"))
	if p == nil {
		m.note(r, "its network profile is not in the scanned code: the group is placed in no subnet, and what reaches it there is not evaluated")
		return
	}
	for _, cni := range blocks(p.Values, "container_network_interface") {
		for _, ipc := range blocks(cni, "ip_configuration") {
			e.Subnets = append(e.Subnets, m.subnetsIn(e, ipc, "subnet_id")...)
		}
	}
}

func orNone(s string) string {
	if s == "" {
		return "no port"
	}
	return s
}
