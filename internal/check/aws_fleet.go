package check

import (
	"strings"

	"moat/internal/check/tf"
)

// EC2 Fleets (aws_ec2_fleet) and Spot Fleet requests launch instances as
// an auto scaling group does: from inline launch specifications, which
// take an instance's arguments, or from launch templates, in the subnets
// those or their overrides name (a default subnet of the default VPC when
// none does). One endpoint holds a fleet's instances: every subnet it may
// launch in with every group it may attach, so a path through any pairing
// is read as possible.

// noSubnetNamed says where a fleet's instances go when a launch
// configuration names no subnet.
const noSubnetNamed = "no subnet is named: a default subnet of the default VPC, which AWS makes routed to an internet gateway, with a network ACL that allows all; the default VPC is not in the scanned code, so that is assumed"

// fleetLaunch is one way a fleet launches instances: the subnets it names
// (vals[attr]) and the launch template it uses (nil for an inline
// specification, known false for one not known statically).
type fleetLaunch struct {
	vals  map[string]any
	attr  string
	t     *tf.Resource
	known bool
	// inline: vals are an inline specification, with an instance's
	// arguments (security groups, public address).
	inline bool
}

// fleetLaunches reads a fleet's launch specifications and launch template
// configurations; unknown says one of them is not known statically.
func (m *Model) fleetLaunches(r *tf.Resource) (out []fleetLaunch, unknown bool) {
	for _, ls := range blocks(r.Values, "launch_specification") {
		out = append(out, fleetLaunch{vals: ls, attr: "subnet_id", known: true, inline: true})
	}
	for _, k := range []string{"launch_template_config", "launch_template_configs"} {
		unknown = unknown || blocksUnknown(r.Values, k)
		for _, cfg := range blocks(r.Values, k) {
			t, known := m.launchTemplate(block(cfg, "launch_template_specification"))
			// The overrides' subnets (EC2 Fleet: override, Spot Fleet:
			// overrides); one not known statically stays so.
			var subnets []any
			for _, ok := range []string{"override", "overrides"} {
				unknown = unknown || blocksUnknown(cfg, ok)
				for _, o := range blocks(cfg, ok) {
					if v, set := o["subnet_id"]; set && v != nil {
						subnets = append(subnets, v)
					}
				}
			}
			vals := map[string]any{}
			if len(subnets) > 0 {
				vals["subnet_id"] = subnets
			}
			out = append(out, fleetLaunch{vals: vals, attr: "subnet_id", t: t, known: known})
		}
	}
	unknown = unknown || blocksUnknown(r.Values, "launch_specification")
	return out, unknown
}

// fleets adds the endpoints of EC2 Fleets and Spot Fleet requests.
func (m *Model) fleets(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, typ := range []string{"aws_ec2_fleet", "aws_spot_fleet_request"} {
		for _, r := range byType[typ] {
			e := &Endpoint{Addr: r.Address, Kind: "fleet", Res: r}
			launches, unk := m.fleetLaunches(r)
			if unk {
				// A specification not known statically may launch anywhere
				// with any group and address.
				why := "a launch specification or template configuration is not known statically"
				m.note(r, "%s: assumed to launch anywhere, with a public address and groups that admit every address", why)
				e.SubnetsAny, e.SubnetsUnknown = true, why+": assumed to be any subnet"
				e.SGsUnknown = why + ": its security groups are assumed to admit every address"
				e.Public, e.PublicAssumed, e.Why = true, true, why+": assumed to give a public address"
			}
			unnamed := false
			var public, assumed []string
			for _, l := range launches {
				named := has(l.vals, l.attr)
				if !named && templateInterface(l.t) == nil {
					unnamed = true
				}
				e.Subnets = append(e.Subnets, m.launchedSubnets(e, l.t, l.vals, l.attr)...)
				var why string
				var guess bool
				if l.inline {
					m.attachSGs(e, l.vals, "vpc_security_group_ids", "security_groups")
					switch {
					case unknown(l.vals, "associate_public_ip_address"):
						why, guess = "associate_public_ip_address not known statically: assumed true", true
					case has(l.vals, "associate_public_ip_address"):
						if boolean(l.vals, "associate_public_ip_address", false) {
							why = "associate_public_ip_address = true"
						}
					default:
						why, guess = m.subnetsPublicIP(l.vals, l.attr)
					}
				} else {
					m.templateSGs(e, l.t, l.known)
					if !l.known {
						why, _, guess = m.templateNotKnownPublicIP(l.vals, l.attr)
					} else if w, decided := templateDecides(l.t); decided {
						why = w
					} else {
						why, guess = m.launchedPublicIP(l.t, l.vals, l.attr)
					}
				}
				switch {
				case why == "":
				case guess:
					assumed = append(assumed, why)
				default:
					public = append(public, why)
				}
			}
			switch {
			case len(public) > 0:
				e.Public, e.PublicAssumed, e.Why = true, false, strings.Join(dedup(public), "; ")
			case len(assumed) > 0:
				e.Public, e.PublicAssumed, e.Why = true, true, strings.Join(dedup(assumed), "; ")
			}
			switch {
			case unnamed && len(e.Subnets) == 0 && len(e.SubnetsMaybe) == 0 && !e.SubnetsAny:
				e.Unplaced = noSubnetNamed
			case unnamed && !e.SubnetsAny:
				// Some of its instances go to a default subnet, outside
				// the scanned code, beside the subnets named.
				e.SubnetsAny, e.SubnetsUnknown = true, "a launch configuration names no subnet: "+noSubnetNamed
			}
			add(e)
		}
	}
}
