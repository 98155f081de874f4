package check

import (
	"net/netip"

	"moat/internal/check/tf"
)

// clientVPNs makes each Client VPN network association a source in its
// subnet: the endpoint's clients arrive there from the association's
// interface, translated to its address, as members of the endpoint's
// security groups (security_group_ids, or the association's own
// security_groups of older providers; the VPC's default group when none
// is named). Nothing listens on the interface. The endpoint's
// authorization rules narrow the ranges clients may reach (Reaches);
// with none in the scanned code, or one not known statically, clients
// are read as reaching what the subnet and groups reach, and a note says
// so.
func (m *Model) clientVPNs(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, r := range byType["aws_ec2_client_vpn_network_association"] {
		e := sourceOnly(r, "client VPN")
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
		vpn := m.lookup(m.ref(r.Values, "client_vpn_endpoint_id"))
		if vpn != nil {
			m.attachSGs(e, vpn.Values, "security_group_ids")
		} else {
			m.note(r, "its Client VPN endpoint is not in the scanned code: its security groups are read from the association alone")
		}
		m.attachSGs(e, r.Values, "security_groups")
		reaches, why := m.vpnAuthorized(byType["aws_ec2_client_vpn_authorization_rule"], vpn)
		if why != "" {
			m.note(r, "%s: its clients are read as reaching whatever the association's subnet and security groups reach", why)
		}
		e.Reaches = reaches
		add(e)
	}
}

// vpnAuthorized returns the ranges the authorization rules of Client VPN
// endpoint vpn admit its clients to, whichever group each names; why says,
// when they cannot be read (nil ranges), why not.
func (m *Model) vpnAuthorized(rules []*tf.Resource, vpn *tf.Resource) ([]netip.Prefix, string) {
	if vpn == nil {
		return nil, "the endpoint's authorization rules are not read"
	}
	var out []netip.Prefix
	for _, r := range rules {
		target := m.lookup(m.ref(r.Values, "client_vpn_endpoint_id"))
		if target != vpn && target != nil {
			continue
		}
		if target == nil || unknown(r.Values, "target_network_cidr") {
			return nil, "authorization rule " + r.Address + " is not known statically"
		}
		p, err := netip.ParsePrefix(str(r.Values, "target_network_cidr"))
		if err != nil {
			return nil, "authorization rule " + r.Address + " names no address range"
		}
		out = append(out, p.Masked())
	}
	if out == nil {
		return nil, "the Client VPN endpoint has no authorization rule in the scanned code (one made elsewhere may admit its clients anywhere)"
	}
	return out, ""
}

// instanceConnectEndpoints makes each EC2 Instance Connect endpoint a
// source in its subnet, as a member of its security groups (the VPC's
// default group when it names none): it opens the connections IAM lets a
// user tunnel to instances. Nothing listens on it: its groups' inbound
// rules admit no one. With preserve_client_ip (AWS's default) the
// instance sees the user's own address rather than the endpoint's; that
// is read as the endpoint's, and a note says so.
func (m *Model) instanceConnectEndpoints(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, r := range byType["aws_ec2_instance_connect_endpoint"] {
		e := sourceOnly(r, "instance connect endpoint")
		e.Subnets = m.subnetsIn(e, r.Values, "subnet_id")
		m.attachSGs(e, r.Values, "security_group_ids")
		if boolean(r.Values, "preserve_client_ip", true) || unknown(r.Values, "preserve_client_ip") {
			m.note(r, "preserve_client_ip is not false: instances see the connecting user's own address, read here as the endpoint's subnet")
		}
		add(e)
	}
}
