package check

import (
	"strings"

	"moat/internal/check/tf"
)

// emrClusters places an EMR cluster's nodes in its subnet (ec2_attributes
// subnet_id, or subnet_ids for instance fleets) as two machines, every
// port theirs: the master (CLUSTER.master) behind
// emr_managed_master_security_group and additional_master_security_groups,
// the core and task nodes (CLUSTER.core) behind the slave groups. EMR
// gives the nodes of a cluster in a public subnet public addresses. A
// managed group the code does not name is one EMR makes, outside the
// scanned code: read as admitting every address, and said so. A cluster
// in a private subnet names a service access group, behind which EMR's
// own interfaces in its subnet (CLUSTER.service) answer port 9443.
func (m *Model) emrClusters(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, r := range byType["aws_emr_cluster"] {
		ec2 := block(r.Values, "ec2_attributes")
		if ec2 == nil {
			m.note(r, "ec2_attributes not known statically: the cluster is not placed in the network model")
			continue
		}
		for _, n := range []struct{ suffix, managed, additional string }{
			{"master", "emr_managed_master_security_group", "additional_master_security_groups"},
			{"core", "emr_managed_slave_security_group", "additional_slave_security_groups"},
		} {
			e := &Endpoint{Addr: r.Address + "." + n.suffix, Kind: "EMR " + n.suffix + " node", Res: r, Public: true,
				Why: "EMR gives the nodes of a cluster in a public subnet public addresses"}
			e.Subnets = append(m.subnetsIn(e, ec2, "subnet_id"), m.subnetsIn(e, ec2, "subnet_ids")...)
			if has(ec2, n.managed) {
				m.attachSGs(e, ec2, n.managed)
			} else {
				e.SGs = append(e.SGs, m.sgElsewhere("the "+n.suffix+" group EMR makes ("+n.managed+" not set)"))
			}
			// A comma-separated list of IDs in one string.
			if unknown(ec2, n.additional) {
				m.attachSGs(e, ec2, n.additional)
			} else {
				for _, id := range strings.Split(str(ec2, n.additional), ",") {
					if id = strings.TrimSpace(id); id != "" {
						e.SGs = append(e.SGs, m.sgsOf([]string{id})...)
					}
				}
			}
			add(e)
		}
		// A cluster in a private subnet: the interfaces EMR reaches its
		// nodes through (CLUSTER.service), behind the service access
		// group, answering EMR's port alone.
		if has(ec2, "service_access_security_group") || unknown(ec2, "service_access_security_group") {
			e := &Endpoint{Addr: r.Address + ".service", Kind: "EMR service access", Res: r, Ports: []int{9443}, Listens: listensOn([]int{9443})}
			e.Subnets = append(m.subnetsIn(e, ec2, "subnet_id"), m.subnetsIn(e, ec2, "subnet_ids")...)
			m.attachSGs(e, ec2, "service_access_security_group")
			add(e)
		}
	}
}
