package tf

import "github.com/zclconf/go-cty/cty"

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
// is known its ID (InlineSubnetID).
func inlineSubnetIDs(vnetAddr string, subnets cty.Value) cty.Value {
	if !subnets.IsWhollyKnown() || subnets.IsNull() || !subnets.CanIterateElements() {
		return subnets
	}
	var out []cty.Value
	for it := subnets.ElementIterator(); it.Next(); {
		_, sn := it.Element()
		if !sn.Type().IsObjectType() || !sn.Type().HasAttribute("name") || sn.GetAttr("name").Type() != cty.String {
			return subnets
		}
		attrs := sn.AsValueMap()
		attrs["id"] = cty.StringVal(InlineSubnetID(vnetAddr, sn.GetAttr("name").AsString()))
		out = append(out, cty.ObjectVal(attrs))
	}
	return tupleOf(out)
}

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
