package check

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"moat/internal/check/tf"
)

// ebSettings reads an Elastic Beanstalk environment's setting blocks:
// each namespace and name's values, and whether one is not known
// statically (those values, as read, in unknowns).
type ebSettings struct {
	vals     map[[2]string][]string
	unknown  map[[2]string]bool
	unknowns map[[2]string][]any
}

func readEBSettings(r *tf.Resource) ebSettings {
	s := ebSettings{vals: map[[2]string][]string{}, unknown: map[[2]string]bool{}, unknowns: map[[2]string][]any{}}
	for _, b := range blocks(r.Values, "setting") {
		k := [2]string{str(b, "namespace"), str(b, "name")}
		if unknown(b, "value") {
			s.unknown[k] = true
			s.unknowns[k] = append(s.unknowns[k], b["value"])
			continue
		}
		s.vals[k] = append(s.vals[k], str(b, "value"))
	}
	return s
}

// list returns a setting's values, each a comma-separated list, as one;
// an element written in quotes ('subnet-1','subnet-2') is read without.
func (s ebSettings) list(ns, name string) []string {
	var out []string
	for _, v := range s.vals[[2]string{ns, name}] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.Trim(strings.TrimSpace(p), `'"`); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// namespaces returns the namespaces the settings name.
func (s ebSettings) namespaces() map[string]bool {
	out := map[string]bool{}
	for k := range s.vals {
		out[k[0]] = true
	}
	for k := range s.unknown {
		out[k[0]] = true
	}
	return out
}

// ebSubnets returns the subnets an aws:ec2:vpc setting (Subnets,
// ELBSubnets) names, every setting of that name and each element of its
// list; one not known statically is recorded on e (subnetsIn).
func (m *Model) ebSubnets(e *Endpoint, s ebSettings, name string) []*Subnet {
	var vals []any
	for _, v := range s.list("aws:ec2:vpc", name) {
		vals = append(vals, v)
	}
	attr := "setting " + name
	return m.subnetsIn(e, map[string]any{attr: append(vals, s.unknowns[[2]string{"aws:ec2:vpc", name}]...)}, attr)
}

func (s ebSettings) has(ns, name string) bool {
	k := [2]string{ns, name}
	return len(s.vals[k]) > 0 || s.unknown[k]
}

const ebLaunch = "aws:autoscaling:launchconfiguration"

// beanstalkEnvironments adds the instances of each Elastic Beanstalk
// environment as an endpoint, read from its settings: its subnets
// (aws:ec2:vpc Subnets), its public addresses (AssociatePublicIpAddress,
// else its subnets' mapping) and its security groups (SecurityGroups, and,
// unless DisableDefaultEC2SecurityGroup, the group Beanstalk makes, which
// admits SSH from SSHSourceRestriction, every address by default, when a
// key pair is set).
func (m *Model) beanstalkEnvironments(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, r := range byType["aws_elastic_beanstalk_environment"] {
		s := readEBSettings(r)
		e := &Endpoint{Addr: r.Address, Kind: "beanstalk instance", Res: r, SGs: m.sgsOf(s.list(ebLaunch, "SecurityGroups"))}
		e.Subnets = m.ebSubnets(e, s, "Subnets")
		if s.unknown[[2]string{ebLaunch, "SecurityGroups"}] {
			e.SGsUnknown = "setting SecurityGroups not known statically: assumed to admit every address"
		}
		switch pub := s.list("aws:ec2:vpc", "AssociatePublicIpAddress"); {
		case s.unknown[[2]string{"aws:ec2:vpc", "AssociatePublicIpAddress"}]:
			e.Public, e.PublicAssumed, e.Why = true, true, "setting AssociatePublicIpAddress not known statically: assumed true"
		case len(pub) > 0:
			if strings.EqualFold(pub[0], "true") {
				e.Public, e.Why = true, "setting AssociatePublicIpAddress = true"
			}
		default:
			for _, sn := range e.Subnets {
				if why := sn.mapsPublicIP(); why != "" {
					e.Public, e.Why = true, "launched in "+sn.Addr+", "+why
					break
				}
			}
		}
		if !strings.EqualFold(strings.Join(s.list(ebLaunch, "DisableDefaultEC2SecurityGroup"), ""), "true") {
			e.SGs = append(e.SGs, m.beanstalkGroup(r, s))
		}
		add(e)
		m.beanstalkBalancer(r, s, e)
	}
}

// beanstalkGroup is the security group Beanstalk makes for an
// environment's instances, as far as SSH goes: with a key pair, SSH from
// SSHSourceRestriction ("tcp, 22, 22, 0.0.0.0/0" unless set).
func (m *Model) beanstalkGroup(r *tf.Resource, s ebSettings) *SG {
	g := &SG{Addr: r.Address + " (the security group Beanstalk makes)", Res: r}
	m.sgUsed[g.Addr] = true
	if !s.has(ebLaunch, "EC2KeyName") {
		return g
	}
	where := g.Addr + " (SSHSourceRestriction, 0.0.0.0/0 unless set)"
	rule := SGRule{Proto: "tcp", From: 22, To: 22, Where: where, Res: r, CIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	restrict := s.list(ebLaunch, "SSHSourceRestriction")
	switch {
	case s.unknown[[2]string{ebLaunch, "SSHSourceRestriction"}]:
		rule.CIDRs, rule.Assumed = nil, "SSHSourceRestriction not known statically: assumed to admit every address"
		m.note(r, "%s", rule.Assumed)
	case len(restrict) == 4:
		// protocol, from port, to port, source (a CIDR block or a group).
		rule.Proto = protoName(restrict[0])
		fmt.Sscan(restrict[1], &rule.From)
		fmt.Sscan(restrict[2], &rule.To)
		if p, err := netip.ParsePrefix(restrict[3]); err == nil {
			rule.CIDRs = []netip.Prefix{p.Masked()}
		} else {
			rule.CIDRs, rule.SGs = nil, []string{m.addr(restrict[3])}
		}
	case len(restrict) > 0:
		rule.CIDRs, rule.Assumed = nil, fmt.Sprintf("SSHSourceRestriction %q not read: assumed to admit every address", strings.Join(restrict, ","))
		m.note(r, "%s", rule.Assumed)
	}
	g.Ingress = []SGRule{rule}
	return g
}

// ebListener is one listener of the load balancer Beanstalk makes, and the
// instance port it forwards to.
type ebListener struct{ port, instance int }

// beanstalkBalancer reads the load balancer Beanstalk makes for a
// load-balanced web environment (EnvironmentType LoadBalanced, the
// default; tier WebServer) as the gateway that publishes its instances,
// not an endpoint of its own (what it exposes, its instances' findings
// say): in ELBSubnets (else the
// instances' subnets), internet-facing unless ELBScheme is internal, behind
// the group Beanstalk makes for it, which admits its listener ports from
// every address (none for a network load balancer), and SecurityGroups.
// Its listeners (aws:elb:listener for a classic balancer, the default
// LoadBalancerType; aws:elbv2:listener for an application or network one)
// forward to the instances, which the group Beanstalk makes for them
// admits on the instance port from the balancer's groups: the instances
// are published through it. A setting not known statically is read at its
// worst and said so.
func (m *Model) beanstalkBalancer(r *tf.Resource, s ebSettings, inst *Endpoint) {
	var assumed []string
	env := "aws:elasticbeanstalk:environment"
	switch t := strings.ToLower(str(r.Values, "tier")); {
	case unknown(r.Values, "tier"):
		assumed = append(assumed, r.Address+": tier not known statically: assumed WebServer")
	case t == "worker":
		return
	}
	switch t := strings.ToLower(strings.Join(s.list(env, "EnvironmentType"), "")); {
	case s.unknown[[2]string{env, "EnvironmentType"}]:
		assumed = append(assumed, r.Address+": EnvironmentType not known statically: assumed LoadBalanced")
	case t == "singleinstance":
		return
	}
	kind := strings.ToLower(strings.Join(s.list(env, "LoadBalancerType"), ""))
	if s.unknown[[2]string{env, "LoadBalancerType"}] {
		kind = "application"
		assumed = append(assumed, r.Address+": LoadBalancerType not known statically: assumed application")
	}
	if kind == "" {
		kind = "classic"
	}
	lb := &Endpoint{Addr: r.Address + " (the load balancer Beanstalk makes)", Kind: "lb", Gateway: true, Res: r}
	if s.has("aws:ec2:vpc", "ELBSubnets") {
		lb.Subnets = m.ebSubnets(lb, s, "ELBSubnets")
	} else {
		lb.Subnets, lb.SubnetsMaybe, lb.SubnetsAny, lb.SubnetsUnknown = inst.Subnets, inst.SubnetsMaybe, inst.SubnetsAny, inst.SubnetsUnknown
	}
	switch scheme := strings.ToLower(strings.Join(s.list("aws:ec2:vpc", "ELBScheme"), "")); {
	case s.unknown[[2]string{"aws:ec2:vpc", "ELBScheme"}]:
		lb.Public, lb.PublicAssumed, lb.Why = true, true, "setting ELBScheme not known statically: assumed public"
	case scheme != "internal":
		lb.Public, lb.Why = true, "internet-facing load balancer (ELBScheme "+orDefault(scheme, "public, the default")+")"
	}
	ns := "aws:elbv2:loadbalancer"
	if kind == "classic" {
		ns = "aws:elb:loadbalancer"
	}
	ls := beanstalkListeners(s, kind)
	made := &SG{Addr: r.Address + " (the security group Beanstalk makes for its load balancer)", Res: r}
	if kind != "network" {
		for _, l := range ls {
			made.Ingress = append(made.Ingress, SGRule{Proto: "tcp", From: l.port, To: l.port, Res: r, Where: made.Addr,
				CIDRs: allAddresses[:1]})
		}
		lb.SGs = append(lb.SGs, made)
	}
	lb.SGs = append(lb.SGs, m.sgsOf(s.list(ns, "SecurityGroups"))...)
	if s.unknown[[2]string{ns, "SecurityGroups"}] {
		lb.SGsUnknown = "setting SecurityGroups not known statically: assumed to admit every address"
	}
	for _, l := range ls {
		lb.Ports = append(lb.Ports, l.port)
	}
	lb.Listens = listensOn(lb.Ports)
	// The instances' group admits the instance ports from the balancer.
	if g := inst.beanstalkMadeGroup(); g != nil {
		for _, l := range ls {
			g.Ingress = append(g.Ingress, SGRule{Proto: "tcp", From: l.instance, To: l.instance, Res: r, Where: g.Addr + " (from the load balancer)",
				SGs: sgAddrs(lb.SGs)})
		}
	}
	from := m.frontSource(lb.Addr, lb.Subnets, sgAddrs(lb.SGs))
	for _, l := range ls {
		port := l.port
		front := func(inet Source) Result { return m.Reach(inet, lb, "tcp", port) }
		h := Hop{Kind: "lb", Addr: lb.Addr, Detail: fmt.Sprintf("%s listener on tcp %d forwards to the instances on %d", kind, l.port, l.instance)}
		inst.Published = append(inst.Published, Publish{Proto: "tcp", Port: l.instance, front: front, Hops: []Hop{h}, From: from, Gateway: lb.Addr, Assumed: assumed})
	}
}

// beanstalkMadeGroup is the group Beanstalk makes for an environment's
// instances, when they have it.
func (e *Endpoint) beanstalkMadeGroup() *SG {
	for _, g := range e.SGs {
		if strings.HasSuffix(g.Addr, "(the security group Beanstalk makes)") {
			return g
		}
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// beanstalkListeners reads the listeners of an environment's balancer:
// port 80 to instance port 80 unless disabled, and each listener
// namespace's port (aws:elb:listener:443, aws:elbv2:listener:443), to its
// InstancePort (classic) or its process's Port (default process: 80). A
// port not known statically is not read.
func beanstalkListeners(s ebSettings, kind string) []ebListener {
	ns := "aws:elbv2:listener"
	if kind == "classic" {
		ns = "aws:elb:listener"
	}
	enabled := func(n string) bool {
		return !strings.EqualFold(strings.Join(s.list(n, "ListenerEnabled"), ""), "false")
	}
	instance := func(n string) int {
		p := 80
		if kind == "classic" {
			fmt.Sscan(strings.Join(s.list(n, "InstancePort"), ""), &p)
			return p
		}
		proc := orDefault(strings.Join(s.list(n, "DefaultProcess"), ""), "default")
		fmt.Sscan(strings.Join(s.list("aws:elasticbeanstalk:environment:process:"+proc, "Port"), ""), &p)
		return p
	}
	var out []ebListener
	def := ns
	if kind != "classic" {
		def = ns + ":default"
	}
	// Port 80 is the default listener's, which its own namespace may
	// also configure.
	if _, ok := s.namespaces()[ns+":80"]; ok {
		def = ns + ":80"
	}
	if enabled(def) {
		out = append(out, ebListener{80, instance(def)})
	}
	for n := range s.namespaces() {
		port, ok := strings.CutPrefix(n, ns+":")
		if !ok || port == "default" {
			continue
		}
		var p int
		if _, err := fmt.Sscan(port, &p); err != nil || p == 80 || !enabled(n) {
			continue
		}
		out = append(out, ebListener{p, instance(n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].port < out[j].port })
	return out
}
