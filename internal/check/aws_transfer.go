package check

import (
	"fmt"
	"slices"

	"moat/internal/check/tf"
)

// transferPorts are the ports an AWS Transfer Family server answers on,
// by protocol: SFTP on 22, FTP and FTPS on 21 and the passive range
// 8192-8200, AS2 on 5080 and 5443.
var transferPorts = map[string][]int{
	"SFTP": {22},
	"FTP":  {21, 8192, 8193, 8194, 8195, 8196, 8197, 8198, 8199, 8200},
	"FTPS": {21, 8192, 8193, 8194, 8195, 8196, 8197, 8198, 8199, 8200},
	"AS2":  {5080, 5443},
}

// transferServers places AWS Transfer Family servers. A PUBLIC server (the
// default endpoint type) is an endpoint AWS runs outside any VPC that
// takes no security group: every address reaches it. A VPC server answers
// in the subnets of endpoint_details behind its security groups (the VPC's
// default group when it names none), with public addresses only through
// the Elastic IPs address_allocation_ids names. A VPC_ENDPOINT server is
// reached through a VPC endpoint that is not read, and said so; an
// endpoint type the provider does not take creates nothing (CHECK-003).
func (m *Model) transferServers(byType map[string][]*tf.Resource, add func(*Endpoint)) {
	for _, r := range byType["aws_transfer_server"] {
		e := &Endpoint{Addr: r.Address, Kind: "file transfer server", Res: r}
		protocols, unk := strs(r.Values, "protocols")
		if !has(r.Values, "protocols") {
			protocols = []string{"SFTP"}
		}
		for _, p := range protocols {
			ports, ok := transferPorts[p]
			if !ok {
				unk = true
			}
			for _, port := range ports {
				if !slices.Contains(e.Ports, port) {
					e.Ports = append(e.Ports, port)
				}
			}
		}
		if unk {
			e.Ports = nil
			for _, p := range []string{"SFTP", "FTP", "AS2"} {
				e.Ports = append(e.Ports, transferPorts[p]...)
			}
			e.PortsAssumed = "protocols not known statically: assumed to be every protocol Transfer Family serves"
		}
		e.Listens = listensOn(e.Ports)
		typ := "PUBLIC"
		if has(r.Values, "endpoint_type") || unknown(r.Values, "endpoint_type") {
			typ = str(r.Values, "endpoint_type")
		}
		switch {
		case unknown(r.Values, "endpoint_type"):
			e.Managed, e.Public, e.PublicAssumed, e.Allowed = true, true, true, allInternet
			e.Why = "endpoint_type not known statically: assumed PUBLIC, an endpoint AWS runs that takes no security group"
		case typ == "PUBLIC":
			e.Managed, e.Public, e.Allowed = true, true, allInternet
			e.Why = "endpoint_type PUBLIC: an endpoint AWS runs that takes no security group"
		case typ == "VPC":
			d := block(r.Values, "endpoint_details")
			e.Subnets = m.subnetsIn(e, d, "subnet_ids")
			m.attachSGs(e, d, "security_group_ids")
			if eips, unk := strs(d, "address_allocation_ids"); unk {
				e.Public, e.PublicAssumed, e.Why = true, true, "address_allocation_ids not known statically: assumed to give it Elastic IPs"
			} else if len(eips) > 0 {
				e.Public, e.Why = true, "its Elastic IPs (address_allocation_ids)"
			}
		case typ == "VPC_ENDPOINT":
			m.note(r, "endpoint_type VPC_ENDPOINT: the server is reached through the VPC endpoint vpc_endpoint_id names, which is not read")
			continue
		default:
			m.reject(r, "%s", fmt.Sprintf("endpoint_type %q is none the AWS provider takes (PUBLIC, VPC or VPC_ENDPOINT, in capitals): the plan fails and no server is created", typ))
			continue
		}
		add(e)
	}
}
