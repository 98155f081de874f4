package tf

import (
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// IDs that only a cloud provider could assign, stood in by strings derived
// from the resource's address, for the objects a resource makes beside
// itself.

// InlineSubnetID stands for the ID Azure gives a subnet written inside an
// azurerm_virtual_network (a subnet block), named name: a NIC's subnet_id =
// tolist(azurerm_virtual_network.main.subnet)[0].id reads as it, and the
// model knows the subnet by it.
func InlineSubnetID(vnetAddr, name string) string {
	return vnetAddr + "/subnets/" + name
}

// inlineSubnetIDs gives each subnet block of a virtual network whose name
// is known its ID (InlineSubnetID), whatever else the block holds (a
// security_group the provider computes).
func inlineSubnetIDs(vnetAddr string, subnets cty.Value) cty.Value {
	if !subnets.IsKnown() || subnets.IsNull() || !subnets.CanIterateElements() {
		return subnets
	}
	var out []cty.Value
	for it := subnets.ElementIterator(); it.Next(); {
		_, sn := it.Element()
		if !sn.IsKnown() || sn.IsNull() || !sn.Type().IsObjectType() || !sn.Type().HasAttribute("name") || !sn.GetAttr("name").IsKnown() || sn.GetAttr("name").IsNull() || sn.GetAttr("name").Type() != cty.String {
			return subnets
		}
		attrs := sn.AsValueMap()
		attrs["id"] = cty.StringVal(InlineSubnetID(vnetAddr, sn.GetAttr("name").AsString()))
		out = append(out, cty.ObjectVal(attrs))
	}
	return tupleOf(out)
}

// EKSClusterSG stands for the ID of the security group EKS creates for the
// cluster at addr (its vpc_config's cluster_security_group_id): a rule's
// security_group_id = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
// reads as it, and the model knows the group by it.
func EKSClusterSG(addr string) string {
	return addr + ":cluster-security-group"
}

// eksClusterSGIDs gives each vpc_config block of an EKS cluster the ID of
// the cluster group (EKSClusterSG), which the provider computes.
func eksClusterSGIDs(addr string, vcs cty.Value) cty.Value {
	// What else the blocks hold may be unknown; the group's ID is not.
	if !vcs.IsKnown() || vcs.IsNull() || !vcs.CanIterateElements() {
		return vcs
	}
	var out []cty.Value
	for it := vcs.ElementIterator(); it.Next(); {
		_, vc := it.Element()
		if !vc.IsKnown() || vc.IsNull() || !vc.Type().IsObjectType() {
			return vcs
		}
		attrs := vc.AsValueMap()
		if attrs == nil {
			attrs = map[string]cty.Value{}
		}
		attrs["cluster_security_group_id"] = cty.StringVal(EKSClusterSG(addr))
		out = append(out, cty.ObjectVal(attrs))
	}
	return tupleOf(out)
}

// NetworkFirewallEndpoint stands for the VPC endpoints AWS makes for the
// Network Firewall at addr, one in each subnet it maps: a route to
// tolist(aws_networkfirewall_firewall.fw.firewall_status[0].sync_states)[0].attachment[0].endpoint_id
// reads as it, and the model knows the firewall by it.
func NetworkFirewallEndpoint(addr string) string {
	return addr + ":endpoint"
}

// networkFirewallStatus is the firewall_status the provider computes for
// the Network Firewall at addr: a sync state for each of its subnet
// mappings (one when their number is not known statically), whose
// attachment's endpoint is NetworkFirewallEndpoint, the rest unknown.
func networkFirewallStatus(addr string, mappings cty.Value) cty.Value {
	n := 1
	if mappings != cty.NilVal && mappings.IsKnown() && !mappings.IsNull() && mappings.CanIterateElements() && mappings.LengthInt() > 1 {
		n = mappings.LengthInt()
	}
	attachment := cty.ObjectVal(map[string]cty.Value{
		"endpoint_id": cty.StringVal(NetworkFirewallEndpoint(addr)), "subnet_id": cty.UnknownVal(cty.String),
		"status": cty.UnknownVal(cty.String), "status_message": cty.UnknownVal(cty.String),
	})
	state := cty.ObjectVal(map[string]cty.Value{
		"availability_zone": cty.UnknownVal(cty.String), "attachment": cty.TupleVal([]cty.Value{attachment}),
	})
	states := make([]cty.Value, n)
	for i := range states {
		states[i] = state
	}
	return cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
		"sync_states": cty.TupleVal(states), "capacity_usage_summary": cty.DynamicVal,
		"configuration_sync_state_summary": cty.UnknownVal(cty.String), "status": cty.UnknownVal(cty.String),
	})})
}

// PrivateIPOf stands for the private address Azure assigns the network
// interface or load balancer at addr (an interface's primary
// ip_configuration's, a balancer's first frontend's, when that is not
// written statically): a DNAT rule's translated_address =
// azurerm_network_interface.app.private_ip_address reads as it, and the
// model knows the interface by it.
func PrivateIPOf(addr string) string {
	return addr + ":private-ip"
}

// primaryPrivateIP is the private_ip_address an azurerm_network_interface
// or azurerm_lb exports: the static address of its primary
// ip_configuration (or first frontend_ip_configuration) when written, else
// its stand-in (PrivateIPOf).
func primaryPrivateIP(addr string, ipcs cty.Value) cty.Value {
	standIn := cty.StringVal(PrivateIPOf(addr))
	if ipcs == cty.NilVal || !ipcs.IsWhollyKnown() || ipcs.IsNull() || !ipcs.CanIterateElements() {
		return standIn
	}
	var primary cty.Value
	for it := ipcs.ElementIterator(); it.Next(); {
		_, c := it.Element()
		if !c.Type().IsObjectType() {
			return standIn
		}
		if primary == cty.NilVal || c.Type().HasAttribute("primary") && !c.GetAttr("primary").IsNull() && c.GetAttr("primary").Type() == cty.Bool && c.GetAttr("primary").True() {
			primary = c
		}
	}
	if primary == cty.NilVal || !primary.Type().HasAttribute("private_ip_address") || !primary.Type().HasAttribute("private_ip_address_allocation") {
		return standIn
	}
	ip, alloc := primary.GetAttr("private_ip_address"), primary.GetAttr("private_ip_address_allocation")
	if ip.Type() != cty.String || ip.IsNull() || alloc.Type() != cty.String || alloc.IsNull() || !strings.EqualFold(alloc.AsString(), "Static") {
		return standIn
	}
	return ip
}

// enginePorts are the default ports of database engines, by engine name
// in lower case.
var enginePorts = map[string]int{
	"postgres": 5432, "aurora-postgresql": 5432, "mysql": 3306, "mariadb": 3306, "aurora-mysql": 3306,
	"aurora": 3306, "sqlserver-ex": 1433, "sqlserver-se": 1433, "sqlserver-ee": 1433, "sqlserver-web": 1433,
	"oracle-se2": 1521, "oracle-ee": 1521, "redis": 6379, "valkey": 6379, "memcached": 11211,
}

// EnginePort returns the port a database of engine answers on when its
// port is not set (RDS's and ElastiCache's defaults), and whether the
// engine is one it knows.
func EnginePort(engine string) (int, bool) {
	p, ok := enginePorts[strings.ToLower(engine)]
	return p, ok
}

// enginePortTypes are the resource types whose port, not set, is their
// engine's default port (EnginePort).
var enginePortTypes = map[string]bool{"aws_db_instance": true, "aws_rds_cluster": true, "aws_elasticache_cluster": true}

// VPCDefaults returns the IDs, stood in by strings derived from the VPC's
// address, of what AWS creates with every VPC: the main route table, the
// default network ACL and the default security group. Both readers use them.
func VPCDefaults(vpcAddr string) map[string]string {
	return map[string]string{
		"main_route_table_id":       vpcAddr + ":main-route-table",
		"default_route_table_id":    vpcAddr + ":main-route-table",
		"default_network_acl_id":    vpcAddr + ":default-network-acl",
		"default_security_group_id": vpcAddr + ":default-security-group",
	}
}

// TGWDefaults returns the IDs, stood in by a string derived from the
// gateway's address, of the default route table AWS makes with a transit
// gateway: association_default_route_table_id and
// propagation_default_route_table_id both name it (the one table
// attachments are associated with and propagate to by default). Both
// readers use them.
func TGWDefaults(tgwAddr string) map[string]string {
	return map[string]string{
		"association_default_route_table_id": tgwAddr + ":default-route-table",
		"propagation_default_route_table_id": tgwAddr + ":default-route-table",
	}
}

// DefaultVPCRange is the address range of every region's default VPC.
const DefaultVPCRange = "172.31.0.0/16"

// defaultVPCSuffix and defaultSubnetsSuffix end the stand-ins of what a
// lookup of the default VPC finds.
const (
	defaultVPCSuffix     = ":default-vpc"
	defaultSubnetsSuffix = ":default-subnets"
)

// DefaultVPCOf stands for the ID of the default VPC that the aws_vpc
// lookup at addr finds (default = true): its vpc_id reads as it, and the
// model knows the default VPC by it.
func DefaultVPCOf(lookup string) string { return lookup + defaultVPCSuffix }

// DefaultSubnetsOf names, in Unknown.From, the subnets a lookup at addr
// finds in the default VPC (an aws_subnets or aws_subnet_ids of the
// default VPC's ID, an aws_subnet with default_for_az): a value taken from
// its IDs is one of the default VPC's default subnets, which AWS makes
// public.
func DefaultSubnetsOf(lookup string) string { return lookup + defaultSubnetsSuffix }

// DefaultVPCLookup returns the lookup that id (DefaultVPCOf) names.
func DefaultVPCLookup(id string) (string, bool) {
	return strings.CutSuffix(id, defaultVPCSuffix)
}

// DefaultSubnetsLookup returns the lookup that from (an element of
// Unknown.From made by DefaultSubnetsOf) names.
func DefaultSubnetsLookup(from string) (string, bool) {
	return strings.CutSuffix(from, defaultSubnetsSuffix)
}
