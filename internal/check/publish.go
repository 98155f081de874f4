package check

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// A machine without a public address of its own is published to the
// internet by a gateway in front of it that ends the client's connection
// and opens its own: on Azure, a Firewall's DNAT rule or an Application
// Gateway (azure_publish.go); on AWS, an API Gateway VPC link, a
// CloudFront origin or the balancer Elastic Beanstalk makes, and the
// private balancer such a door reaches (aws_front.go, aws_beanstalk.go).
// Such a path has two legs: the internet to the gateway, filtered by what
// stands in front of it, and the gateway's own connection to the machine,
// from the gateway's subnet, filtered by the machine's NSGs or security
// groups and the routes between the networks. Translations whose target
// is not known statically are read as reaching every machine they could,
// and the path says so.

// Publish is one way a gateway publishes an endpoint to the internet.
type Publish struct {
	Proto string
	Port  int // the endpoint's port; -1: every port (not known statically)
	// front answers the first leg, from the internet to the gateway.
	front func(inet Source) Result
	Hops  []Hop // the gateway's translation (and an internal balancer's)
	// From is where the gateway's own connection comes from: its subnet.
	// Zero Name: the gateway's subnet is not in the scanned code.
	From    Source
	Gateway string
	Assumed []string
}

// reachPublished answers whether the internet opens proto/port on e
// through a gateway that publishes it.
func (m *Model) reachPublished(inet Source, e *Endpoint, proto string, port int) (Result, bool) {
	var best Result
	found := false
	for _, p := range e.Published {
		if p.Proto != proto || p.Port >= 0 && p.Port != port {
			continue
		}
		r, ok := m.reachPublishedOne(inet, e, p, port)
		if !ok {
			continue
		}
		if !found || len(best.Assumed) > 0 && len(r.Assumed) == 0 {
			best, found = r, true
		}
	}
	return best, found
}

// reachPublishedOne answers whether the internet reaches port of e
// through p.
func (m *Model) reachPublishedOne(inet Source, e *Endpoint, p Publish, port int) (Result, bool) {
	front := p.front(inet)
	if !front.Reachable {
		return Result{}, false
	}
	src := p.From
	var assumed []string
	if src.Name == "" {
		// Read as a source inside the endpoint's own network that any
		// rule admitting some address lets in.
		sgs := src.SGs
		if sgs == nil {
			sgs = map[string]bool{}
		}
		src = Source{Name: p.Gateway + " (its subnet is not in the scanned code)", Set: setOf(allAddresses...), SGs: sgs}
		if subs := append(slices.Clip(e.Subnets), e.SubnetsMaybe...); len(subs) > 0 {
			src.VPC = subs[0].VPC
		}
		what := "security groups"
		if e.Azure {
			what = "NSGs"
		}
		assumed = append(assumed, fmt.Sprintf("%s: its subnet is not in the scanned code: assumed to be in the network of %s and admitted by its %s", p.Gateway, e.Addr, what))
	}
	var back Result
	if len(e.Subnets) == 0 && (len(e.SubnetsMaybe) == 0 || e.SubnetsAny) {
		// Placed in no subnet of the model, not even one it may be in.
		back = m.reachUnplacedFrom(src, e, p.Proto, port)
	} else {
		back = m.reach(src, e, p.Proto, port)
	}
	if !back.Reachable {
		return Result{}, false
	}
	path := append(append(append([]Hop(nil), front.Path...), p.Hops...), back.Path[1:]...)
	assumed = append(append(append(assumed, front.Assumed...), p.Assumed...), back.Assumed...)
	if p.Port < 0 {
		assumed = append(assumed, p.Hops[0].Addr+": translated port not known statically: assumed to be every port")
	}
	return Result{Reachable: true, Path: path, From: front.From, Assumed: assumed}, true
}

// reachUnplacedFrom answers for a gateway's connection to a machine whose
// subnet is not in the scanned code (a module input, a data source): any
// network may route the gateway to it and its subnet may have no NSG (on
// AWS, a network ACL that allows all), so only its interfaces' NSGs (its
// security groups) are known to stand in the way. A path found is not
// proven.
func (m *Model) reachUnplacedFrom(src Source, e *Endpoint, proto string, port int) Result {
	why := "subnet not in the scanned code: assumed routed from the gateway, without an NSG"
	if !e.Azure {
		why = "subnet not in the scanned code: assumed routed from the gateway, with a network ACL that allows all"
	}
	path := []Hop{{Kind: "source", Detail: src.Name}, {Kind: "subnet", Detail: why}}
	set := src.Set
	assumed := []string{e.Addr + ": " + why}
	if !e.Azure {
		got, hop, as, ok := m.sgHop(e, nil, src, proto, port, set)
		if !ok {
			return Result{Path: append(path, hop)}
		}
		set, path, assumed = got, append(path, hop), append(assumed, as...)
	}
	for _, g := range e.NSGs {
		got, hits, blocker := naclPass(g.Ingress, proto, port, set)
		if empty(got) {
			return Result{Path: append(path, Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + blocker})}
		}
		set = got
		assumed = append(assumed, assumedHits(g.Addr, hits)...)
		path = append(path, Hop{Kind: "nsg", Addr: g.Addr, Detail: "inbound (network interface) " + strings.Join(hits, "; ")})
	}
	return Result{Reachable: true, From: set, Assumed: assumed, Path: append(path,
		Hop{Kind: "endpoint", Addr: e.Addr, Detail: fmt.Sprintf("%s, %s reached from %s", e.Kind, portText(proto, port, port), m.describe(set))})}
}

// allAddresses is every IPv4 and IPv6 address.
var allAddresses = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
