package check

import (
	"fmt"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// API Gateway and CloudFront face the internet without being load
// balancers of the VPC: an API's VPC link and a distribution's VPC origin
// reach a private load balancer or instance from inside the VPC, and what
// that balancer forwards to is reached in turn. Each becomes a gateway that
// publishes what it fronts (Publish): the internet to the front door, the
// front door's connection into the VPC (the link's interfaces, filtered by
// the balancer's groups), then the balancer's own connection to each
// target it forwards a listener to, filtered by the target's groups. A
// PRIVATE REST API publishes nothing; an endpoint type, integration,
// listener or target group not known statically is read at its worst and
// said so. Public origins and integrations (an internet-facing balancer or
// instance) are reached from the internet on their own and need no second
// path.

// tgTarget is one target a target group sends to, on port (-1: not
// known statically).
type tgTarget struct {
	e    *Endpoint
	port int
}

// frontModel holds what the front doors are read against.
type frontModel struct {
	byAddr    map[string]*Endpoint
	targets   map[string][]tgTarget // by target group address
	listeners map[string][]*tf.Resource
	rules     map[string][]*tf.Resource // listener rules by listener
}

func (m *Model) newFrontModel(byType map[string][]*tf.Resource) *frontModel {
	f := &frontModel{byAddr: map[string]*Endpoint{}, targets: map[string][]tgTarget{},
		listeners: map[string][]*tf.Resource{}, rules: map[string][]*tf.Resource{}}
	for _, e := range m.Endpoints {
		f.byAddr[e.Addr] = e
	}
	tgPort := func(tg string) int {
		g := m.lookup(tg)
		if g == nil || unknown(g.Values, "port") {
			return -1
		}
		return num(g.Values, "port", -1)
	}
	put := func(tgs []string, e *Endpoint, port int) {
		if e == nil {
			return
		}
		for _, tg := range tgs {
			p := port
			if p == 0 {
				p = tgPort(tg)
			}
			f.targets[tg] = append(f.targets[tg], tgTarget{e, p})
		}
	}
	// refsOf reads a target group reference: one not known statically is
	// each target group its expression may name.
	refsOf := func(vals map[string]any, k string) []string {
		var out []string
		for _, ref := range strList(vals, k) {
			out = append(out, m.addr(ref))
		}
		if _, from := unknownRefs(vals, k); from != nil {
			for _, ref := range from {
				out = append(out, m.addr(ref))
			}
		}
		return out
	}
	for _, r := range byType["aws_lb_target_group_attachment"] {
		port := num(r.Values, "port", 0)
		if unknown(r.Values, "port") {
			port = -1
		}
		put(refsOf(r.Values, "target_group_arn"), f.byAddr[m.addr(str(r.Values, "target_id"))], port)
	}
	for _, r := range byType["aws_autoscaling_group"] {
		put(refsOf(r.Values, "target_group_arns"), f.byAddr[r.Address], 0)
	}
	for _, r := range byType["aws_autoscaling_attachment"] {
		e := f.byAddr[m.addr(str(r.Values, "autoscaling_group_name"))]
		put(append(refsOf(r.Values, "lb_target_group_arn"), refsOf(r.Values, "alb_target_group_arn")...), e, 0)
	}
	for _, r := range byType["aws_ecs_service"] {
		for _, b := range blocks(r.Values, "load_balancer") {
			port := num(b, "container_port", 0)
			if unknown(b, "container_port") {
				port = -1
			}
			put(refsOf(b, "target_group_arn"), f.byAddr[r.Address], port)
		}
	}
	for _, typ := range []string{"aws_lb_listener", "aws_alb_listener"} {
		for _, l := range byType[typ] {
			lb := m.addr(str(l.Values, "load_balancer_arn"))
			f.listeners[lb] = append(f.listeners[lb], l)
		}
	}
	for _, typ := range []string{"aws_lb_listener_rule", "aws_alb_listener_rule"} {
		for _, r := range byType[typ] {
			l := m.addr(str(r.Values, "listener_arn"))
			f.rules[l] = append(f.rules[l], r)
		}
	}
	return f
}

// forwardsOf returns the target groups listener l forwards to, by its
// default action and its rules' actions.
func (m *Model) forwardsOf(f *frontModel, l *tf.Resource) []string {
	var tgs []string
	read := func(actions []map[string]any) {
		for _, a := range actions {
			if t := str(a, "type"); t != "" && !strings.EqualFold(t, "forward") {
				continue
			}
			if tg := str(a, "target_group_arn"); tg != "" {
				tgs = append(tgs, m.addr(tg))
			}
			if _, from := unknownRefs(a, "target_group_arn"); from != nil {
				for _, ref := range from {
					tgs = append(tgs, m.addr(ref))
				}
			}
			for _, fw := range blocks(a, "forward") {
				for _, t := range blocks(fw, "target_group") {
					tgs = append(tgs, m.addr(str(t, "arn")))
				}
			}
		}
	}
	read(blocks(l.Values, "default_action"))
	for _, r := range f.rules[l.Address] {
		read(blocks(r.Values, "action"))
	}
	slices.Sort(tgs)
	return slices.Compact(tgs)
}

// frontSource is where a front door's or a balancer's own connection into
// the VPC comes from: its subnets, as a member of its groups. Zero Name:
// its subnets are not in the scanned code (reachPublished then reads it as
// inside the network of what it reaches).
func (m *Model) frontSource(name string, subnets []*Subnet, sgs []string) Source {
	src := Source{Name: name, SGs: map[string]bool{}}
	for _, g := range sgs {
		src.SGs[g] = true
	}
	var known []*Subnet
	for _, s := range subnets {
		if s.CIDR.IsValid() || s.VPC != nil {
			known = append(known, s)
		}
	}
	if len(known) == 0 {
		src.Name = ""
		return src
	}
	src.Subnet, src.VPC = known[0], known[0].VPC
	for _, s := range known {
		src.Set = union(src.Set, m.SubnetSource(s).Set)
	}
	return src
}

func sgAddrs(sgs []*SG) []string {
	out := make([]string, len(sgs))
	for i, g := range sgs {
		out[i] = g.Addr
	}
	return out
}

// publishLB publishes load balancer lb, reached by a front door from via
// (front answering the leg from the internet to the front door, hop naming
// how it leads to lb), on the ports of its listeners (only, when set), and
// each target those listeners forward to on the target's port.
func (m *Model) publishLB(f *frontModel, lb *Endpoint, only []string, front func(Source) Result, hop Hop, via Source, gateway string, assumed []string) {
	for _, l := range f.listeners[lb.Addr] {
		if only != nil && !slices.Contains(only, l.Address) {
			continue
		}
		lport := num(l.Values, "port", -1)
		if unknown(l.Values, "port") {
			lport = -1
		}
		lb.Published = append(lb.Published, Publish{Proto: "tcp", Port: lport, front: front, Hops: []Hop{hop}, From: via, Gateway: gateway, Assumed: assumed})
		if lport < 0 {
			continue // the leg to the balancer needs its port
		}
		// The balancer's leg: the front door reaching its listener.
		toLB := func(inet Source) Result {
			r, ok := m.reachPublishedOne(inet, lb, Publish{Proto: "tcp", Port: lport, front: front, Hops: []Hop{hop}, From: via, Gateway: gateway, Assumed: assumed}, lport)
			if !ok {
				return Result{Path: []Hop{{Kind: "source", Detail: inet.Name}, {Kind: "lb", Addr: lb.Addr, Detail: "not reached from " + gateway}}}
			}
			return r
		}
		from := m.frontSource(lb.Addr, lb.Subnets, sgAddrs(lb.SGs))
		for _, tg := range m.forwardsOf(f, l) {
			for _, t := range f.targets[tg] {
				h := Hop{Kind: "lb", Addr: l.Address, Detail: fmt.Sprintf("%s listener on tcp %d forwards to %s, %s", lb.Addr, lport, tg, t.e.Addr)}
				t.e.Published = append(t.e.Published, Publish{Proto: "tcp", Port: t.port, front: toLB, Hops: []Hop{h}, From: from, Gateway: lb.Addr})
			}
		}
	}
}

// frontDoors publishes what internet-facing load balancers, API Gateway
// VPC links, CloudFront VPC origins and Global Accelerators lead to.
func (m *Model) frontDoors(byType map[string][]*tf.Resource) {
	if len(byType["aws_lb_listener"])+len(byType["aws_alb_listener"])+len(byType["aws_elb"])+len(byType["aws_api_gateway_integration"])+
		len(byType["aws_apigatewayv2_integration"])+len(byType["aws_cloudfront_distribution"])+len(byType["aws_vpc_endpoint_service"])+
		len(byType["aws_globalaccelerator_endpoint_group"])+len(byType["aws_globalaccelerator_custom_routing_endpoint_group"]) == 0 {
		return
	}
	f := m.newFrontModel(byType)
	m.publicBalancers(byType, f)
	m.restAPIs(byType, f)
	m.endpointServices(byType, f)
	m.endpointConsumers(byType)
	m.httpAPIs(byType, f)
	m.distributions(byType, f)
	m.accelerators(byType, f)
}

// publicBalancers publishes what each internet-facing load balancer of
// the project forwards to, as a gateway: the internet reaches a listener
// by the balancer's own path (its subnets' routes and ACLs, its groups),
// then the balancer's connection reaches each target of the target groups
// the listener forwards to, on the target's port. An application load
// balancer opens that connection from its subnets as a member of its
// groups; a network load balancer's targets see the client's address or
// the balancer's, as their target group says (nlbSource). A balancer that is not
// internet-facing publishes nothing: the internet does not reach it. A
// listener whose port is not known statically is followed all the same:
// what it forwards does not depend on its port; the leg to the balancer is
// read as reaching it on any port the balancer admits (anyListenerPort),
// and the path says so. One whose protocol is not known statically is
// read as TCP and, on a network load balancer, UDP. A classic load balancer forwards each listener's
// lb_port to its instance_port on the instances it names, those
// aws_elb_attachment adds and those of the auto scaling groups whose
// load_balancers name it, from its subnets and groups; a listener port of
// either side not known statically is read as any (anyListenerPort, every
// port of the instance), and said so.
func (m *Model) publicBalancers(byType map[string][]*tf.Resource, f *frontModel) {
	m.classicBalancers(byType)
	for _, lb := range m.Endpoints {
		if lb.Kind != "lb" || !lb.Public || lb.Res == nil {
			continue
		}
		from := m.frontSource(lb.Addr, lb.Subnets, sgAddrs(lb.SGs))
		network := strings.EqualFold(str(lb.Res.Values, "load_balancer_type"), "network")
		for _, l := range f.listeners[lb.Addr] {
			lport := num(l.Values, "port", -1)
			portUnknown := unknown(l.Values, "port")
			protos := []string{"tcp"}
			switch strings.ToUpper(str(l.Values, "protocol")) {
			case "UDP":
				protos = []string{"udp"}
			case "TCP_UDP":
				protos = []string{"tcp", "udp"}
			}
			if unknown(l.Values, "protocol") && network {
				protos = []string{"tcp", "udp"}
			}
			for _, proto := range protos {
				front := func(inet Source) Result { return m.Reach(inet, lb, proto, lport) }
				on := fmt.Sprintf("%s %d", proto, lport)
				if portUnknown {
					front = func(inet Source) Result { return m.anyListenerPort(inet, lb, l.Address, proto) }
					on = proto + " (port not known statically)"
				}
				for _, tg := range m.forwardsOf(f, l) {
					src := from
					if network {
						src = m.nlbSource(lb, from, m.lookup(tg))
					}
					for _, t := range f.targets[tg] {
						h := Hop{Kind: "lb", Addr: l.Address, Detail: fmt.Sprintf("%s listener on %s forwards to %s, %s", lb.Addr, on, tg, t.e.Addr)}
						t.e.Published = append(t.e.Published, Publish{Proto: proto, Port: t.port, front: front, Hops: []Hop{h}, From: src, Gateway: lb.Addr})
					}
				}
			}
		}
	}
}

// anyListenerPort answers the leg from the internet to balancer lb for a
// listener whose port is not known statically: the listener may be on any
// port, so it is read as on the first port the balancer is reached on from
// inet, trying its HTTP and HTTPS ports and the ports its groups' and
// network ACLs' rules admit, and the result says it was assumed.
func (m *Model) anyListenerPort(inet Source, lb *Endpoint, listener, proto string) Result {
	ports := []int{80, 443}
	for _, g := range lb.SGs {
		for _, r := range g.Ingress {
			ports = append(ports, r.From, r.To)
		}
	}
	for _, s := range lb.Subnets {
		if acl := s.ACL(); acl != nil {
			for _, r := range acl.Ingress {
				if r.Allow {
					ports = append(ports, r.From, r.To)
				}
			}
		}
	}
	var last Result
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || p > 65535 || seen[p] {
			continue
		}
		seen[p] = true
		last = m.Reach(inet, lb, proto, p)
		if last.Reachable {
			last.Assumed = append(last.Assumed, fmt.Sprintf("%s: port not known statically: assumed to be one the balancer admits (%s %d)", listener, proto, p))
			return last
		}
	}
	return last
}

func (m *Model) classicBalancers(byType map[string][]*tf.Resource) {
	if len(byType["aws_elb"]) == 0 {
		return
	}
	byAddr := map[string]*Endpoint{}
	for _, e := range m.Endpoints {
		byAddr[e.Addr] = e
	}
	targets := map[string][]*Endpoint{}
	put := func(lb string, e *Endpoint) {
		if e != nil && !slices.Contains(targets[lb], e) {
			targets[lb] = append(targets[lb], e)
		}
	}
	for _, r := range byType["aws_elb"] {
		for _, ref := range strList(r.Values, "instances") {
			put(r.Address, byAddr[m.addr(ref)])
		}
	}
	for _, r := range byType["aws_elb_attachment"] {
		put(m.addr(str(r.Values, "elb")), byAddr[m.addr(str(r.Values, "instance"))])
	}
	for _, r := range byType["aws_autoscaling_group"] {
		for _, ref := range strList(r.Values, "load_balancers") {
			put(m.addr(ref), byAddr[r.Address])
		}
	}
	for _, r := range byType["aws_autoscaling_attachment"] {
		put(m.addr(str(r.Values, "elb")), byAddr[m.addr(str(r.Values, "autoscaling_group_name"))])
	}
	for _, r := range byType["aws_elb"] {
		lb := byAddr[r.Address]
		if lb == nil || !lb.Public || len(targets[r.Address]) == 0 {
			continue
		}
		from := m.frontSource(lb.Addr, lb.Subnets, sgAddrs(lb.SGs))
		for _, l := range blocks(r.Values, "listener") {
			if strings.EqualFold(str(l, "lb_protocol"), "udp") {
				continue
			}
			// A port not known statically: the balancer's any port it
			// admits, the instance's every port (Publish.Port -1), each
			// said so on the path.
			lport, iport := num(l, "lb_port", -1), num(l, "instance_port", -1)
			front := func(inet Source) Result { return m.Reach(inet, lb, "tcp", lport) }
			on, to := fmt.Sprintf("tcp %d", lport), fmt.Sprintf("%d", iport)
			if unknown(l, "lb_port") {
				front = func(inet Source) Result { return m.anyListenerPort(inet, lb, lb.Addr+" listener", "tcp") }
				on = "tcp (port not known statically)"
			}
			if unknown(l, "instance_port") {
				iport, to = -1, "a port not known statically"
			}
			for _, t := range targets[r.Address] {
				h := Hop{Kind: "lb", Addr: lb.Addr, Detail: fmt.Sprintf("listener on %s forwards to %s on %s", on, t.Addr, to)}
				t.Published = append(t.Published, Publish{Proto: "tcp", Port: iport, front: front, Hops: []Hop{h}, From: from, Gateway: lb.Addr})
			}
		}
	}
}

// internetTo is the leg from the internet to a front door: every internet
// address reaches it.
func (m *Model) internetTo(addr, detail string, assumed []string) func(Source) Result {
	return func(inet Source) Result {
		return Result{Reachable: true, From: inet.Set, Assumed: assumed, Path: []Hop{{Kind: "source", Detail: inet.Name},
			{Kind: "gateway", Addr: addr, Detail: detail + ", admits " + m.describe(inet.Set)}}}
	}
}

// restAPIs publishes the network load balancers a REST API's VPC link
// integrations reach. The link enters the balancer through PrivateLink,
// from inside its VPC.
func (m *Model) restAPIs(byType map[string][]*tf.Resource, f *frontModel) {
	for _, in := range byType["aws_api_gateway_integration"] {
		if !strings.EqualFold(str(in.Values, "connection_type"), "VPC_LINK") && !unknown(in.Values, "connection_type") {
			continue
		}
		api := m.lookup(m.addr(str(in.Values, "rest_api_id")))
		var assumed []string
		detail, door := "REST API", in.Address
		if api == nil {
			assumed = append(assumed, in.Address+": its REST API is not in the scanned code: assumed not PRIVATE")
		} else {
			ec := block(api.Values, "endpoint_configuration")
			types, unk := strs(ec, "types")
			if slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, "PRIVATE") }) {
				continue
			}
			switch {
			case unk:
				assumed = append(assumed, api.Address+": endpoint type not known statically: assumed not PRIVATE")
			case len(types) == 0:
				detail = "REST API " + api.Address + " (EDGE endpoint, the default)"
			default:
				detail = fmt.Sprintf("REST API %s (%s endpoint)", api.Address, strings.Join(types, ", "))
			}
			detail, door = detail+m.openMethods(byType, in), api.Address
		}
		if unknown(in.Values, "connection_type") {
			assumed = append(assumed, in.Address+": connection_type not known statically: assumed VPC_LINK")
		}
		front := m.internetTo(door, detail, assumed)
		for _, lt := range m.linkTargets(byType, in) {
			lb := f.byAddr[lt.lb]
			if lb == nil || lb.Kind != "lb" {
				continue
			}
			hop := Hop{Kind: "gateway", Addr: in.Address, Detail: fmt.Sprintf("VPC link %s to %s (PrivateLink)", lt.link, lb.Addr)}
			// PrivateLink delivers to the balancer's own interfaces.
			name := "VPC link " + lt.link + " (PrivateLink into " + lb.Addr + ")"
			via := m.frontSource(name, lb.Subnets, nil)
			if via.Name == "" {
				via = Source{Name: name, Set: setOf(allAddresses...), SGs: map[string]bool{}}
			}
			m.publishLB(f, lb, nil, front, hop, via, in.Address, lt.assumed)
		}
	}
}

// endpointServices publishes the network load balancers of a VPC endpoint
// service that every AWS account may connect to without acceptance:
// allowed_principals (or an aws_vpc_endpoint_service_allowed_principal)
// holding "*", and acceptance_required false. Anyone opens an account, so
// the service's door is read as the internet's; PrivateLink delivers to
// the balancer's own interfaces. Principals or acceptance not known
// statically are read so, and said so; named accounts are not followed.
func (m *Model) endpointServices(byType map[string][]*tf.Resource, f *frontModel) {
	extra := map[string][]*tf.Resource{}
	for _, r := range byType["aws_vpc_endpoint_service_allowed_principal"] {
		svc := m.addr(str(r.Values, "vpc_endpoint_service_id"))
		extra[svc] = append(extra[svc], r)
	}
	for _, svc := range byType["aws_vpc_endpoint_service"] {
		var assumed []string
		switch {
		case unknown(svc.Values, "acceptance_required"):
			assumed = append(assumed, svc.Address+": acceptance_required not known statically: assumed false, connections accepted without review")
		case boolean(svc.Values, "acceptance_required", true):
			continue // each connection waits for the owner's acceptance
		}
		open := false
		principals, unk := strs(svc.Values, "allowed_principals")
		if unk {
			assumed = append(assumed, svc.Address+": allowed_principals not known statically: assumed to hold \"*\", every AWS account")
			open = true
		}
		for _, r := range extra[svc.Address] {
			p, u := strs(r.Values, "principal_arn")
			if u {
				assumed = append(assumed, r.Address+": principal_arn not known statically: assumed \"*\", every AWS account")
				open = true
			}
			principals = append(principals, p...)
		}
		open = open || slices.Contains(principals, "*")
		if !open {
			continue
		}
		front := m.internetTo(svc.Address, "VPC endpoint service open to every AWS account (allowed principal \"*\"), each reaching it from an interface endpoint of its own", assumed)
		for _, ref := range strList(svc.Values, "network_load_balancer_arns") {
			lb := f.byAddr[m.addr(ref)]
			if lb == nil || lb.Kind != "lb" {
				continue
			}
			hop := Hop{Kind: "gateway", Addr: "an interface endpoint of any AWS account", Detail: "PrivateLink through " + svc.Address + " into " + lb.Addr}
			name := svc.Address + " (PrivateLink into " + lb.Addr + ")"
			via := m.frontSource(name, lb.Subnets, nil)
			if via.Name == "" {
				via = Source{Name: name, Set: setOf(allAddresses...), SGs: map[string]bool{}}
			}
			m.publishLB(f, lb, nil, front, hop, via, svc.Address, assumed)
		}
	}
}

// endpointConsumers notes each interface endpoint connected to a VPC
// endpoint service of the project (its service_name the service's, or one
// not known statically that can only be): the endpoint's subnets hold the
// service's door in the consumer's network, whose sources reach what the
// service's network load balancers forward to, which is not evaluated.
// An endpoint of type GatewayLoadBalancer is an inspection hop, read with
// the routes that name it (inspector).
func (m *Model) endpointConsumers(byType map[string][]*tf.Resource) {
	for _, r := range byType["aws_vpc_endpoint"] {
		if !unknown(r.Values, "vpc_endpoint_type") && !strings.EqualFold(str(r.Values, "vpc_endpoint_type"), "Interface") {
			continue
		}
		var svcs []*tf.Resource
		if s := m.lookup(str(r.Values, "service_name")); s != nil && s.Type == "aws_vpc_endpoint_service" {
			svcs = append(svcs, s)
		} else if unk, from := unknownRefs(r.Values, "service_name"); unk {
			for _, ref := range from {
				for _, s := range byType["aws_vpc_endpoint_service"] {
					if s.Address == ref || strings.HasPrefix(s.Address, ref+"[") {
						svcs = append(svcs, s)
					}
				}
			}
		}
		for _, s := range svcs {
			lbs := "its network load balancers (not known statically) forward"
			refs := strList(s.Values, "network_load_balancer_arns")
			unk, _ := unknownRefs(s.Values, "network_load_balancer_arns")
			unk = unk || unknown(s.Values, "network_load_balancer_arns")
			if len(refs) == 0 && !unk {
				continue // a Gateway Load Balancer's service, which takes no interface endpoint
			}
			if len(refs) > 0 && !unk {
				var names []string
				for _, ref := range refs {
					names = append(names, m.addr(ref))
				}
				lbs = "its network load balancer " + names[0] + " forwards"
				if len(names) > 1 {
					lbs = "its network load balancers " + strings.Join(names, ", ") + " forward"
				}
			}
			m.note(r, "connects the network of its subnets to VPC endpoint service %s: what %s to is reached from there through PrivateLink, which is not evaluated", s.Address, lbs)
		}
	}
}

// linkTarget is a balancer a REST integration's VPC link may lead to.
type linkTarget struct {
	link, lb string
	assumed  []string
}

// linkTargets reads the balancers integration in reaches through its VPC
// link: the link's target_arns. A link not known statically is any its
// expression names, else any REST VPC link of the project; a target not
// known statically any its expression names, else any network load
// balancer of the project.
func (m *Model) linkTargets(byType map[string][]*tf.Resource, in *tf.Resource) []linkTarget {
	var links []*tf.Resource
	var assumed []string
	if l := m.lookup(m.addr(str(in.Values, "connection_id"))); l != nil {
		links = append(links, l)
	} else if unk, from := unknownRefs(in.Values, "connection_id"); unk {
		for _, ref := range from {
			if l := m.lookup(m.addr(ref)); l != nil {
				links = append(links, l)
			}
		}
		if from == nil {
			links = byType["aws_api_gateway_vpc_link"]
			assumed = append(assumed, in.Address+": connection_id not known statically: assumed to be any REST VPC link of the project")
		}
	}
	var out []linkTarget
	for _, l := range links {
		for _, t := range strList(l.Values, "target_arns") {
			out = append(out, linkTarget{l.Address, m.addr(t), assumed})
		}
		unk, from := unknownRefs(l.Values, "target_arns")
		if !unk {
			continue
		}
		for _, ref := range from {
			out = append(out, linkTarget{l.Address, m.addr(ref), assumed})
		}
		if from != nil {
			continue
		}
		why := append(append([]string(nil), assumed...), l.Address+": target_arns not known statically: assumed to be any network load balancer of the project")
		for _, typ := range []string{"aws_lb", "aws_alb"} {
			for _, r := range byType[typ] {
				if strings.EqualFold(str(r.Values, "load_balancer_type"), "network") || unknown(r.Values, "load_balancer_type") {
					out = append(out, linkTarget{l.Address, r.Address, why})
				}
			}
		}
	}
	return out
}

func linkAddr(r *tf.Resource) string {
	if r == nil {
		return ""
	}
	return r.Address
}

// openMethods says when the integration's method takes no authorization.
func (m *Model) openMethods(byType map[string][]*tf.Resource, in *tf.Resource) string {
	for _, me := range byType["aws_api_gateway_method"] {
		if m.addr(str(me.Values, "rest_api_id")) != m.addr(str(in.Values, "rest_api_id")) ||
			m.addr(str(me.Values, "resource_id")) != m.addr(str(in.Values, "resource_id")) ||
			str(me.Values, "http_method") != str(in.Values, "http_method") {
			continue
		}
		if strings.EqualFold(str(me.Values, "authorization"), "NONE") && !boolean(me.Values, "api_key_required", false) {
			return fmt.Sprintf("; method %s %s takes no authorization (authorization = \"NONE\")", me.Address, str(me.Values, "http_method"))
		}
	}
	return ""
}

// httpAPIs publishes what an HTTP API's VPC link integrations reach: a
// load balancer listener, from the link's interfaces in its subnets,
// members of its security groups.
func (m *Model) httpAPIs(byType map[string][]*tf.Resource, f *frontModel) {
	for _, in := range byType["aws_apigatewayv2_integration"] {
		if !strings.EqualFold(str(in.Values, "connection_type"), "VPC_LINK") && !unknown(in.Values, "connection_type") {
			continue
		}
		var assumed []string
		if unknown(in.Values, "connection_type") {
			assumed = append(assumed, in.Address+": connection_type not known statically: assumed VPC_LINK")
		}
		api := m.lookup(m.addr(str(in.Values, "api_id")))
		detail, door := "HTTP API", in.Address
		if api != nil {
			detail, door = "HTTP API "+api.Address, api.Address
		}
		front := m.internetTo(door, detail, assumed)
		link := m.lookup(m.addr(str(in.Values, "connection_id")))
		var via Source
		name := "VPC link " + orUnknown(linkAddr(link))
		if link != nil {
			sgs := strList(link.Values, "security_group_ids")
			for i := range sgs {
				sgs[i] = m.addr(sgs[i])
			}
			via = m.frontSource(name+" (its interfaces)", m.subnetsOf(strList(link.Values, "subnet_ids")), sgs)
		} else {
			via = Source{SGs: map[string]bool{}}
		}
		// The integration names a listener (an ALB's or NLB's).
		uri := m.addr(str(in.Values, "integration_uri"))
		refs := []string{uri}
		var uriAssumed []string
		switch unk, from := unknownRefs(in.Values, "integration_uri"); {
		case from != nil:
			refs = nil
			for _, r := range from {
				refs = append(refs, m.addr(r))
			}
		case unk:
			// Any listener or Cloud Map service of the project.
			refs = nil
			for _, typ := range []string{"aws_lb_listener", "aws_alb_listener", "aws_service_discovery_service"} {
				for _, r := range byType[typ] {
					refs = append(refs, r.Address)
				}
			}
			uriAssumed = []string{in.Address + ": integration_uri not known statically: assumed to be any listener or Cloud Map service of the project"}
		}
		for _, ref := range refs {
			l := m.lookup(ref)
			if l != nil && l.Type == "aws_service_discovery_service" {
				m.publishRegistered(byType, f, l, front, in.Address, name, via, uriAssumed)
				continue
			}
			if l == nil || l.Type != "aws_lb_listener" && l.Type != "aws_alb_listener" {
				continue
			}
			lb := f.byAddr[m.addr(str(l.Values, "load_balancer_arn"))]
			if lb == nil {
				continue
			}
			hop := Hop{Kind: "gateway", Addr: in.Address, Detail: fmt.Sprintf("%s to listener %s of %s", name, l.Address, lb.Addr)}
			m.publishLB(f, lb, []string{l.Address}, front, hop, via, in.Address, uriAssumed)
		}
	}
}

// publishRegistered publishes the ECS services that register their tasks
// in Cloud Map service sd (service_registries), which an HTTP API's VPC
// link integration reaches from the link's interfaces, on the registered
// port (service_registries' port, else its container_port; one not known
// statically is every port).
func (m *Model) publishRegistered(byType map[string][]*tf.Resource, f *frontModel, sd *tf.Resource, front func(Source) Result, gateway, link string, via Source, assumed []string) {
	for _, r := range byType["aws_ecs_service"] {
		e := f.byAddr[r.Address]
		if e == nil {
			continue
		}
		for _, b := range blocks(r.Values, "service_registries") {
			if m.addr(str(b, "registry_arn")) != sd.Address {
				continue
			}
			port := -1
			for _, k := range []string{"port", "container_port"} {
				if has(b, k) {
					if !unknown(b, k) {
						port = num(b, k, -1)
					}
					break
				}
			}
			hop := Hop{Kind: "gateway", Addr: gateway, Detail: fmt.Sprintf("%s to Cloud Map service %s, where %s registers its tasks", link, sd.Address, e.Addr)}
			e.Published = append(e.Published, Publish{Proto: "tcp", Port: port, front: front, Hops: []Hop{hop}, From: via, Gateway: gateway, Assumed: assumed})
		}
	}
}

// distributions publishes the load balancers and instances CloudFront
// reaches through a VPC origin (aws_cloudfront_vpc_origin), on the port
// its protocol policy uses, from CloudFront's interfaces in the origin's
// VPC.
func (m *Model) distributions(byType map[string][]*tf.Resource, f *frontModel) {
	for _, d := range byType["aws_cloudfront_distribution"] {
		front := m.internetTo(d.Address, "CloudFront distribution", nil)
		for _, o := range blocks(d.Values, "origin") {
			if co := block(o, "custom_origin_config"); co != nil {
				m.customOrigin(f, d, o, co, front)
			}
			for _, vc := range blocks(o, "vpc_origin_config") {
				vo := m.lookup(m.addr(str(vc, "vpc_origin_id")))
				if vo == nil {
					continue
				}
				ec := block(vo.Values, "vpc_origin_endpoint_config")
				e := f.byAddr[m.addr(str(ec, "arn"))]
				if e == nil {
					continue
				}
				ports := originPorts(ec)
				hop := Hop{Kind: "gateway", Addr: vo.Address, Detail: fmt.Sprintf("VPC origin of %s to %s (%s)", d.Address, e.Addr, originPolicy(ec))}
				via := Source{Name: "CloudFront's interfaces for " + vo.Address, SGs: map[string]bool{}}
				if len(e.Subnets) > 0 && e.Subnets[0].VPC != nil {
					via.VPC, via.Set = e.Subnets[0].VPC, setOf(e.Subnets[0].VPC.CIDRs...)
				} else {
					via.Name = ""
				}
				if e.Kind != "lb" {
					for _, p := range ports {
						e.Published = append(e.Published, Publish{Proto: "tcp", Port: p, front: front, Hops: []Hop{hop}, From: via, Gateway: vo.Address})
					}
					continue
				}
				var only []string
				for _, l := range f.listeners[e.Addr] {
					if p := num(l.Values, "port", -1); unknown(l.Values, "port") || slices.Contains(ports, p) || slices.Contains(ports, -1) {
						only = append(only, l.Address)
					}
				}
				if only != nil {
					m.publishLB(f, e, only, front, hop, via, vo.Address, nil)
				}
			}
		}
	}
}

// CloudFrontOrigins is the AWS-managed prefix list of the addresses
// CloudFront connects to public origins from.
const CloudFrontOrigins = "com.amazonaws.global.cloudfront.origin-facing"

// customOrigin publishes the balancer or instance a distribution's custom
// origin names by its address (domain_name = aws_lb.web.dns_name), reached
// over the internet from CloudFront's origin-facing servers: a group that
// admits their managed prefix list admits them. A name outside the project
// (a literal host name) publishes nothing here.
func (m *Model) customOrigin(f *frontModel, d *tf.Resource, o, co map[string]any, front func(Source) Result) {
	refs := []string{m.addr(str(o, "domain_name"))}
	if _, from := unknownRefs(o, "domain_name"); from != nil {
		refs = nil
		for _, r := range from {
			refs = append(refs, m.addr(r))
		}
	}
	via := Source{Name: "CloudFront's origin-facing servers (" + CloudFrontOrigins + ")", Internet: true, Set: m.Internet().Set, Service: CloudFrontOrigins}
	for _, ref := range refs {
		e := f.byAddr[ref]
		if e == nil || e.Managed {
			continue
		}
		hop := Hop{Kind: "gateway", Addr: d.Address, Detail: fmt.Sprintf("custom origin %q to %s over the internet (%s)", str(o, "origin_id"), e.Addr, originPolicy(co))}
		for _, p := range originPorts(co) {
			e.Published = append(e.Published, Publish{Proto: "tcp", Port: p, front: front, Hops: []Hop{hop}, From: via, Gateway: d.Address})
		}
	}
}

// originPolicy names a CloudFront origin's protocol policy.
func originPolicy(ec map[string]any) string {
	if unknown(ec, "origin_protocol_policy") {
		return "origin_protocol_policy not known statically"
	}
	return "origin_protocol_policy = " + str(ec, "origin_protocol_policy")
}

// originPorts are the ports CloudFront opens to an origin: http_port
// (80), https_port (443) or both (match-viewer, or a policy not known
// statically); -1 for a port not known statically.
func originPorts(ec map[string]any) []int {
	port := func(k string, def int) int {
		if unknown(ec, k) {
			return -1
		}
		return num(ec, k, def)
	}
	switch str(ec, "origin_protocol_policy") {
	case "http-only":
		return []int{port("http_port", 80)}
	case "https-only":
		return []int{port("https_port", 443)}
	}
	return []int{port("http_port", 80), port("https_port", 443)}
}
