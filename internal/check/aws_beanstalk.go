package check

import (
	"fmt"
	"net/netip"
	"strings"

	"moat/internal/check/tf"
)

// ebSettings reads an Elastic Beanstalk environment's setting blocks:
// each namespace and name's values, and whether one is not known
// statically.
type ebSettings struct {
	vals    map[[2]string][]string
	unknown map[[2]string]bool
}

func readEBSettings(r *tf.Resource) ebSettings {
	s := ebSettings{vals: map[[2]string][]string{}, unknown: map[[2]string]bool{}}
	for _, b := range blocks(r.Values, "setting") {
		k := [2]string{str(b, "namespace"), str(b, "name")}
		if unknown(b, "value") {
			s.unknown[k] = true
			continue
		}
		s.vals[k] = append(s.vals[k], str(b, "value"))
	}
	return s
}

// list returns a setting's values, each a comma-separated list, as one.
func (s ebSettings) list(ns, name string) []string {
	var out []string
	for _, v := range s.vals[[2]string{ns, name}] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
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
		e := &Endpoint{Addr: r.Address, Kind: "beanstalk instance", Res: r,
			Subnets: m.subnetsOf(s.list("aws:ec2:vpc", "Subnets")), SGs: m.sgsOf(s.list(ebLaunch, "SecurityGroups"))}
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
