package check

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"moat/internal/check/tf"
)

// Resources written through the AzAPI provider (azapi_resource) name an
// ARM type and carry its properties in body, in ARM's names. Those the
// model reads are read as the azurerm resources they write; the others are
// noted (azapiSignal).

// azapiNSGType is the ARM type of a network security group.
const azapiNSGType = "Microsoft.Network/networkSecurityGroups"

// armType returns an azapi_resource's ARM type without its API version.
func armType(vals map[string]any) string {
	t, _, _ := strings.Cut(str(vals, "type"), "@")
	return t
}

// azapiAsAzurerm returns the azurerm resources that the project's
// azapi_resources write, by type, each at the azapi_resource's address:
// an NSG with its inline security rules, a virtual network (with its
// inline subnets), a subnet with its NSG and a peering, a web or function app (or slot)
// with its access restrictions, a container app with its ingress and its
// environment, a storage account or key vault with its network rules, an
// AKS cluster with its API server's access; and of the
// azapi_update_resources (updates), a subnet's NSG and route table set on
// the subnet, as associations (azapiSubnetUpdate).
func azapiAsAzurerm(rs, updates []*tf.Resource) map[string][]*tf.Resource {
	out := map[string][]*tf.Resource{}
	for _, r := range updates {
		for typ, a := range azapiSubnetUpdate(r) {
			out[typ] = append(out[typ], a)
		}
	}
	for _, r := range rs {
		typ := armType(r.Values)
		if strings.EqualFold(typ, azapiNSGType) {
			out["azurerm_network_security_group"] = append(out["azurerm_network_security_group"], azapiNSG(r))
		}
		if strings.EqualFold(typ, azapiVNetType) {
			out["azurerm_virtual_network"] = append(out["azurerm_virtual_network"], azapiVNet(r))
		}
		if strings.EqualFold(typ, azapiSubnetType) {
			out["azurerm_subnet"] = append(out["azurerm_subnet"], azapiSubnet(r))
		}
		if strings.EqualFold(typ, azapiPeeringType) {
			out["azurerm_virtual_network_peering"] = append(out["azurerm_virtual_network_peering"], azapiPeering(r))
		}
		if slices.ContainsFunc(azapiSiteTypes, func(t string) bool { return strings.EqualFold(typ, t) }) {
			out["azurerm_linux_web_app"] = append(out["azurerm_linux_web_app"], azapiSite(r))
		}
		if strings.EqualFold(typ, azapiContainerAppType) {
			out["azurerm_container_app"] = append(out["azurerm_container_app"], azapiContainerApp(r))
		}
		if strings.EqualFold(typ, azapiAppEnvType) {
			out["azurerm_container_app_environment"] = append(out["azurerm_container_app_environment"], azapiAppEnv(r))
		}
		if strings.EqualFold(typ, azapiStorageType) {
			out["azurerm_storage_account"] = append(out["azurerm_storage_account"], azapiNetworkACLs(r, "azurerm_storage_account", "network_rules"))
		}
		if strings.EqualFold(typ, azapiVaultType) {
			out["azurerm_key_vault"] = append(out["azurerm_key_vault"], azapiNetworkACLs(r, "azurerm_key_vault", "network_acls"))
		}
		if strings.EqualFold(typ, azapiAKSType) {
			out["azurerm_kubernetes_cluster"] = append(out["azurerm_kubernetes_cluster"], azapiAKS(r))
		}
	}
	return out
}

// azapiNSG reads an NSG's body (a map, or the JSON text azapi before 2.0
// took) as an azurerm_network_security_group: each of
// properties.securityRules a security_rule block. What is not known
// statically stays so: the rules are then read as allowing everything.
func azapiNSG(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_network_security_group"
	out.Values = map[string]any{"name": r.Values["name"]}
	var rules any
	switch b, why := azapiBody(r.Values["body"]); {
	case why != "":
		rules = tf.Unknown{Why: why}
	default:
		rules = azapiMember(b["properties"], "securityRules")
	}
	switch l := rules.(type) {
	case []any:
		var blocks []any
		for _, e := range l {
			rule, ok := e.(map[string]any)
			if !ok {
				blocks = append(blocks, tf.Unknown{Why: "security rule not known statically"})
				continue
			}
			blocks = append(blocks, azapiRule(rule))
		}
		out.Values["security_rule"] = blocks
	case tf.Unknown:
		out.Values["security_rule"] = l
	}
	return &out
}

// azapiMember is member k of v when v is an object, v itself when v is
// not known statically (so is its member), and nil otherwise.
func azapiMember(v any, k string) any {
	switch x := v.(type) {
	case map[string]any:
		return x[k]
	case tf.Unknown:
		return x
	}
	return nil
}

// azapiBody returns an azapi_resource's body as a map (from the JSON text
// azapi before 2.0 took too), or why it cannot be read.
func azapiBody(body any) (map[string]any, string) {
	if text, ok := body.(string); ok {
		var v any
		if json.Unmarshal([]byte(text), &v) != nil {
			return nil, "body is not JSON"
		}
		body = v
	}
	switch b := body.(type) {
	case map[string]any:
		return b, ""
	case tf.Unknown:
		return nil, "body not known statically"
	}
	return nil, "body is not an object"
}

// azapiRuleNames maps an ARM security rule's properties to azurerm's.
var azapiRuleNames = map[string]string{
	"priority": "priority", "direction": "direction", "access": "access", "protocol": "protocol",
	"sourceAddressPrefix": "source_address_prefix", "sourceAddressPrefixes": "source_address_prefixes",
	"sourcePortRange": "source_port_range", "sourcePortRanges": "source_port_ranges",
	"destinationAddressPrefix": "destination_address_prefix", "destinationAddressPrefixes": "destination_address_prefixes",
	"destinationPortRange": "destination_port_range", "destinationPortRanges": "destination_port_ranges",
}

// azapiRule reads one element of securityRules ({name, properties}) as a
// security_rule block; application security groups ([{id}]) become the
// lists of IDs azurerm takes.
func azapiRule(rule map[string]any) map[string]any {
	b := map[string]any{"name": rule["name"]}
	props, ok := rule["properties"].(map[string]any)
	if !ok {
		// Not known statically: every property is.
		for _, k := range azapiRuleNames {
			b[k] = tf.Unknown{Why: "security rule properties not known statically"}
		}
		return b
	}
	for arm, k := range azapiRuleNames {
		if v, ok := props[arm]; ok {
			b[k] = v
		}
	}
	for arm, k := range map[string]string{"sourceApplicationSecurityGroups": "source_application_security_group_ids",
		"destinationApplicationSecurityGroups": "destination_application_security_group_ids"} {
		switch l := props[arm].(type) {
		case []any:
			var ids []any
			for _, e := range l {
				if g, ok := e.(map[string]any); ok {
					ids = append(ids, g["id"])
				} else {
					ids = append(ids, tf.Unknown{Why: "application security group not known statically"})
				}
			}
			b[k] = ids
		case tf.Unknown:
			b[k] = l
		}
	}
	return b
}

// azapiSiteTypes are the ARM types of a web or function app and of its
// deployment slots.
var azapiSiteTypes = []string{"Microsoft.Web/sites", "Microsoft.Web/sites/slots"}

// azapiSiteNames maps an app's siteConfig properties to azurerm's
// site_config arguments.
var azapiSiteNames = map[string]string{
	"ipSecurityRestrictionsDefaultAction":    "ip_restriction_default_action",
	"scmIpSecurityRestrictionsDefaultAction": "scm_ip_restriction_default_action",
	"scmIpSecurityRestrictionsUseMain":       "scm_use_main_ip_restriction",
	"ftpsState":                              "ftps_state",
	"minTlsVersion":                          "minimum_tls_version",
	"scmMinTlsVersion":                       "scm_minimum_tls_version",
}

// azapiSite reads an app's body as an azurerm_linux_web_app (the kind
// whose restrictions the provider and ARM alike end in the default action,
// Allow where it is not set): publicNetworkAccess, httpsOnly and siteConfig
// with its access restrictions, each {ipAddress, action, tag, headers,
// vnetSubnetResourceId} an ip_restriction block (a tag of ServiceTag names
// the service tag in ipAddress). What is not known statically stays so.
func azapiSite(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_linux_web_app"
	out.Values = map[string]any{"name": r.Values["name"]}
	body, why := azapiBody(r.Values["body"])
	if why != "" {
		u := tf.Unknown{Why: why}
		out.Values["public_network_access_enabled"], out.Values["https_only"], out.Values["site_config"] = u, u, u
		return &out
	}
	props, ok := body["properties"].(map[string]any)
	if !ok {
		u := tf.Unknown{Why: "properties not known statically"}
		out.Values["public_network_access_enabled"], out.Values["https_only"], out.Values["site_config"] = u, u, u
		return &out
	}
	switch v := props["publicNetworkAccess"].(type) {
	case string:
		out.Values["public_network_access_enabled"] = !strings.EqualFold(v, "Disabled")
	case tf.Unknown:
		out.Values["public_network_access_enabled"] = v
	}
	if v, ok := props["httpsOnly"]; ok {
		out.Values["https_only"] = v
	}
	var sc map[string]any
	switch c := props["siteConfig"].(type) {
	case map[string]any:
		sc = map[string]any{}
		for arm, k := range azapiSiteNames {
			if v, ok := c[arm]; ok {
				sc[k] = v
			}
		}
		for arm, k := range map[string]string{"ipSecurityRestrictions": "ip_restriction", "scmIpSecurityRestrictions": "scm_ip_restriction"} {
			switch l := c[arm].(type) {
			case []any:
				var entries []any
				for _, e := range l {
					entries = append(entries, azapiRestriction(e))
				}
				sc[k] = entries
			case tf.Unknown:
				sc[k] = l
			}
		}
	case tf.Unknown:
		out.Values["site_config"] = c
		return &out
	}
	if sc != nil {
		out.Values["site_config"] = []any{sc}
	}
	return &out
}

// azapiRestriction reads one ARM access restriction as an ip_restriction
// block.
func azapiRestriction(e any) any {
	x, ok := e.(map[string]any)
	if !ok {
		return map[string]any{"ip_address": tf.Unknown{Why: "access restriction not known statically"}}
	}
	b := map[string]any{"action": x["action"], "headers": x["headers"], "virtual_network_subnet_id": x["vnetSubnetResourceId"]}
	switch tag := x["tag"].(type) {
	case string:
		if strings.EqualFold(tag, "ServiceTag") {
			b["service_tag"] = x["ipAddress"]
			return b
		}
	case tf.Unknown:
		// A tag not known statically may make ipAddress a range.
	}
	b["ip_address"] = x["ipAddress"]
	return b
}

// The ARM types of a virtual network, of a subnet written on its own and
// of a peering.
const (
	azapiVNetType    = "Microsoft.Network/virtualNetworks"
	azapiSubnetType  = "Microsoft.Network/virtualNetworks/subnets"
	azapiPeeringType = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings"
)

// azapiPeering reads a peering's body as an azurerm_virtual_network_peering
// of the network its parent_id names: remoteVirtualNetwork ({id}) the
// remote network, allowVirtualNetworkAccess and allowForwardedTraffic as
// azurerm's arguments (ARM's defaults are azurerm's).
func azapiPeering(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_virtual_network_peering"
	out.Values = map[string]any{"name": r.Values["name"], "virtual_network_name": r.Values["parent_id"]}
	body, why := azapiBody(r.Values["body"])
	props, ok := body["properties"].(map[string]any)
	if why != "" || !ok {
		u := tf.Unknown{Why: "peering properties not known statically"}
		out.Values["remote_virtual_network_id"], out.Values["allow_virtual_network_access"], out.Values["allow_forwarded_traffic"] = u, u, u
		return &out
	}
	switch rv := props["remoteVirtualNetwork"].(type) {
	case map[string]any:
		out.Values["remote_virtual_network_id"] = rv["id"]
	case tf.Unknown:
		out.Values["remote_virtual_network_id"] = rv
	}
	for arm, k := range map[string]string{"allowVirtualNetworkAccess": "allow_virtual_network_access", "allowForwardedTraffic": "allow_forwarded_traffic"} {
		if v, ok := props[arm]; ok && v != nil {
			out.Values[k] = v
		}
	}
	return &out
}

// azapiVNet reads a virtual network's body as an azurerm_virtual_network:
// addressSpace.addressPrefixes its address_space, each of subnets a subnet
// block with its NSG.
func azapiVNet(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_virtual_network"
	out.Values = map[string]any{"name": r.Values["name"]}
	body, why := azapiBody(r.Values["body"])
	props, ok := body["properties"].(map[string]any)
	if why != "" || !ok {
		out.Values["address_space"] = tf.Unknown{Why: "address space not known statically"}
		return &out
	}
	switch sp := props["addressSpace"].(type) {
	case map[string]any:
		out.Values["address_space"] = sp["addressPrefixes"]
	case tf.Unknown:
		out.Values["address_space"] = sp
	}
	if l, ok := props["subnets"].([]any); ok {
		var subnets []any
		for _, e := range l {
			sn, ok := e.(map[string]any)
			if !ok {
				continue
			}
			b := azapiSubnetProps(sn["properties"])
			b["name"] = sn["name"]
			if id, ok := b["network_security_group_id"]; ok {
				b["security_group"] = id
			}
			subnets = append(subnets, b)
		}
		out.Values["subnet"] = subnets
	}
	return &out
}

// azapiSubnet reads a subnet's body as an azurerm_subnet of the virtual
// network its parent_id names, its NSG as azurerm before 2.0 named it
// (network_security_group_id).
func azapiSubnet(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_subnet"
	body, why := azapiBody(r.Values["body"])
	var props any = tf.Unknown{Why: why}
	if why == "" {
		props = body["properties"]
	}
	out.Values = azapiSubnetProps(props)
	out.Values["name"], out.Values["virtual_network_name"] = r.Values["name"], r.Values["parent_id"]
	return &out
}

// azapiSubnetProps maps a subnet's ARM properties to azurerm's arguments:
// addressPrefix and addressPrefixes, networkSecurityGroup ({id}) and
// routeTable ({id}), as azurerm before 2.0 named them on the subnet.
func azapiSubnetProps(p any) map[string]any {
	b := map[string]any{}
	props, ok := p.(map[string]any)
	if !ok {
		u := tf.Unknown{Why: "subnet properties not known statically"}
		b["address_prefixes"], b["network_security_group_id"] = u, u
		return b
	}
	var prefixes []any
	if v, ok := props["addressPrefix"]; ok && v != nil {
		prefixes = append(prefixes, v)
	}
	switch l := props["addressPrefixes"].(type) {
	case []any:
		prefixes = append(prefixes, l...)
	case tf.Unknown:
		b["address_prefixes"] = l
	}
	if _, unk := b["address_prefixes"]; !unk {
		b["address_prefixes"] = prefixes
	}
	switch g := props["networkSecurityGroup"].(type) {
	case map[string]any:
		b["network_security_group_id"] = g["id"]
	case tf.Unknown:
		b["network_security_group_id"] = g
	}
	switch t := props["routeTable"].(type) {
	case map[string]any:
		b["route_table_id"] = t["id"]
	case tf.Unknown:
		b["route_table_id"] = t
	}
	return b
}

// The ARM types of a container app and of its managed environment.
const (
	azapiContainerAppType = "Microsoft.App/containerApps"
	azapiAppEnvType       = "Microsoft.App/managedEnvironments"
)

// azapiProps returns the properties of an azapi_resource's body, or why
// they are not known statically.
func azapiProps(r *tf.Resource) (map[string]any, string) {
	body, why := azapiBody(r.Values["body"])
	if why != "" {
		return nil, why
	}
	props, ok := body["properties"].(map[string]any)
	if !ok {
		return nil, "properties not known statically"
	}
	return props, ""
}

// azapiContainerApp reads a container app's body as an
// azurerm_container_app: its environment (environmentId, or
// managedEnvironmentId of older API versions) and its ingress
// (configuration.ingress), whose ARM names map to azurerm's and whose
// defaults are azurerm's. An ingress not known statically is one whose
// every setting is, read at its worst.
func azapiContainerApp(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_container_app"
	out.Values = map[string]any{"name": r.Values["name"]}
	unknownIngress := func(why string) {
		u := tf.Unknown{Why: why}
		out.Values["ingress"] = []any{map[string]any{"external_enabled": u, "ip_security_restriction": u, "allow_insecure_connections": u}}
	}
	props, why := azapiProps(r)
	if why != "" {
		out.Values["container_app_environment_id"] = tf.Unknown{Why: why}
		unknownIngress(why)
		return &out
	}
	for _, k := range []string{"environmentId", "managedEnvironmentId"} {
		if v, ok := props[k]; ok {
			out.Values["container_app_environment_id"] = v
		}
	}
	switch x := azapiMember(props["configuration"], "ingress").(type) {
	case map[string]any:
		b := map[string]any{}
		for arm, k := range azapiIngressNames {
			if v, ok := x[arm]; ok {
				b[k] = v
			}
		}
		switch l := x["ipSecurityRestrictions"].(type) {
		case []any:
			var entries []any
			for _, e := range l {
				rule, ok := e.(map[string]any)
				if !ok {
					entries = append(entries, map[string]any{"ip_address_range": tf.Unknown{Why: "IP security restriction not known statically"}})
					continue
				}
				entries = append(entries, map[string]any{"name": rule["name"], "ip_address_range": rule["ipAddressRange"], "action": rule["action"]})
			}
			b["ip_security_restriction"] = entries
		case tf.Unknown:
			b["ip_security_restriction"] = l
		}
		out.Values["ingress"] = []any{b}
	case tf.Unknown:
		unknownIngress("ingress not known statically")
	}
	return &out
}

// azapiAppEnv reads a managed environment's body as an
// azurerm_container_app_environment: vnetConfiguration.internal as
// internal_load_balancer_enabled, and publicNetworkAccess.
func azapiAppEnv(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_container_app_environment"
	out.Values = map[string]any{"name": r.Values["name"]}
	props, why := azapiProps(r)
	if why != "" {
		out.Values["internal_load_balancer_enabled"] = tf.Unknown{Why: why}
		return &out
	}
	switch v := props["vnetConfiguration"].(type) {
	case map[string]any:
		if x, ok := v["internal"]; ok {
			out.Values["internal_load_balancer_enabled"] = x
		}
	case tf.Unknown:
		out.Values["internal_load_balancer_enabled"] = v
	}
	if v, ok := props["publicNetworkAccess"]; ok {
		out.Values["public_network_access"] = v
	}
	return &out
}

// The ARM types of a storage account and of a key vault.
const (
	azapiStorageType = "Microsoft.Storage/storageAccounts"
	azapiVaultType   = "Microsoft.KeyVault/vaults"
)

// azapiNetworkACLs reads a storage account's or key vault's body as the
// azurerm resource typ: publicNetworkAccess as public_network_access_enabled
// (off when Disabled) and networkAcls as the network rules block blk
// (defaultAction, the values of ipRules); without networkAcls ARM admits
// every network, as azurerm without the block. A storage account's
// minimumTlsVersion and supportsHttpsTrafficOnly are read as azurerm's.
func azapiNetworkACLs(r *tf.Resource, typ, blk string) *tf.Resource {
	out := *r
	out.Type = typ
	out.Values = map[string]any{"name": r.Values["name"]}
	props, why := azapiProps(r)
	if why != "" {
		u := tf.Unknown{Why: why}
		out.Values["public_network_access_enabled"], out.Values[blk] = u, u
		return &out
	}
	switch v := props["publicNetworkAccess"].(type) {
	case string:
		out.Values["public_network_access_enabled"] = !strings.EqualFold(v, "Disabled")
	case tf.Unknown:
		out.Values["public_network_access_enabled"] = v
	}
	if typ == "azurerm_storage_account" {
		for arm, k := range azapiStorageNames {
			if v, ok := props[arm]; ok {
				out.Values[k] = v
			}
		}
	}
	switch a := props["networkAcls"].(type) {
	case map[string]any:
		b := map[string]any{"default_action": a["defaultAction"]}
		switch l := a["ipRules"].(type) {
		case []any:
			var ips []any
			for _, e := range l {
				rule, ok := e.(map[string]any)
				if !ok {
					ips = append(ips, tf.Unknown{Why: "IP rule not known statically"})
					continue
				}
				ips = append(ips, rule["value"])
			}
			b["ip_rules"] = ips
		case tf.Unknown:
			b["ip_rules"] = l
		}
		out.Values[blk] = []any{b}
	case tf.Unknown:
		out.Values[blk] = a
	}
	return &out
}

// azapiAKSType is the ARM type of an AKS cluster.
const azapiAKSType = "Microsoft.ContainerService/managedClusters"

// azapiAKS reads an AKS cluster's body as an azurerm_kubernetes_cluster:
// apiServerAccessProfile (enablePrivateCluster, authorizedIPRanges),
// enableRBAC, disableLocalAccounts and aadProfile as azurerm's
// arguments, and the first of agentPoolProfiles (vnetSubnetID,
// enableNodePublicIP) as its default node pool. An AKS Automatic cluster
// (sku Automatic) disables local accounts and integrates Entra ID unless
// its body says otherwise.
func azapiAKS(r *tf.Resource) *tf.Resource {
	out := *r
	out.Type = "azurerm_kubernetes_cluster"
	out.Values = map[string]any{"name": r.Values["name"]}
	body, why := azapiBody(r.Values["body"])
	if why != "" {
		u := tf.Unknown{Why: why}
		for _, k := range []string{"private_cluster_enabled", "api_server_authorized_ip_ranges", "role_based_access_control_enabled", "local_account_disabled"} {
			out.Values[k] = u
		}
		return &out
	}
	if sku, ok := body["sku"].(map[string]any); ok && strings.EqualFold(str(sku, "name"), "Automatic") {
		out.Values["local_account_disabled"] = true
		out.Values["azure_active_directory_role_based_access_control"] = []any{map[string]any{}}
	}
	var props map[string]any
	switch p := body["properties"].(type) {
	case map[string]any:
		props = p
	case tf.Unknown:
		for _, k := range []string{"private_cluster_enabled", "api_server_authorized_ip_ranges", "role_based_access_control_enabled", "local_account_disabled"} {
			out.Values[k] = p
		}
		return &out
	}
	switch a := props["apiServerAccessProfile"].(type) {
	case map[string]any:
		if v, ok := a["enablePrivateCluster"]; ok {
			out.Values["private_cluster_enabled"] = v
		}
		if v, ok := a["authorizedIPRanges"]; ok {
			out.Values["api_server_access_profile"] = []any{map[string]any{"authorized_ip_ranges": v}}
		}
	case tf.Unknown:
		out.Values["private_cluster_enabled"], out.Values["api_server_authorized_ip_ranges"] = a, a
	}
	for arm, k := range azapiAKSNames {
		if v, ok := props[arm]; ok {
			out.Values[k] = v
		}
	}
	switch a := props["aadProfile"].(type) {
	case map[string]any:
		out.Values["azure_active_directory_role_based_access_control"] = []any{a}
	case tf.Unknown:
		out.Values["azure_active_directory_role_based_access_control"] = a
	}
	if pools, ok := props["agentPoolProfiles"].([]any); ok && len(pools) > 0 {
		if p, ok := pools[0].(map[string]any); ok {
			pool := map[string]any{"name": p["name"]}
			for arm, k := range azapiPoolNames {
				if v, ok := p[arm]; ok {
					pool[k] = v
				}
			}
			out.Values["default_node_pool"] = []any{pool}
		}
	}
	return &out
}

// azapiSubnetUpdate returns, for an azapi_update_resource of a subnet
// (resource_id) whose body sets its networkSecurityGroup or routeTable,
// the azurerm associations that set them, by type, each at the update's
// address; nil for any other update. A value not known statically is
// read as such there (an NSG not known statically allows everything).
func azapiSubnetUpdate(r *tf.Resource) map[string]*tf.Resource {
	if !strings.EqualFold(armType(r.Values), azapiSubnetType) {
		return nil
	}
	body, why := azapiBody(r.Values["body"])
	if why != "" {
		return nil
	}
	props := azapiSubnetProps(body["properties"])
	out := map[string]*tf.Resource{}
	for typ, k := range map[string]string{"azurerm_subnet_network_security_group_association": "network_security_group_id",
		"azurerm_subnet_route_table_association": "route_table_id"} {
		if v, ok := props[k]; ok && v != nil {
			a := *r
			a.Type = typ
			a.Values = map[string]any{"subnet_id": r.Values["resource_id"], k: v}
			out[typ] = &a
		}
	}
	return out
}

// azapiSubnetUpdateRead reports whether an azapi_update_resource of a
// subnet sets nothing but what azapiSubnetUpdate reads: its body's
// properties are its networkSecurityGroup and routeTable alone.
func azapiSubnetUpdateRead(vals map[string]any) bool {
	body, why := azapiBody(vals["body"])
	props, ok := body["properties"].(map[string]any)
	if why != "" || !ok || len(body) != 1 {
		return false
	}
	for k := range props {
		if !strings.EqualFold(k, "networkSecurityGroup") && !strings.EqualFold(k, "routeTable") {
			return false
		}
	}
	return len(props) > 0
}

// The ARM properties the readers take one to one as azurerm's arguments:
// a container app's ingress, a storage account's, an AKS cluster's and
// its first agent pool's.
var (
	azapiIngressNames = map[string]string{"external": "external_enabled", "targetPort": "target_port", "exposedPort": "exposed_port",
		"transport": "transport", "allowInsecure": "allow_insecure_connections"}
	azapiStorageNames = map[string]string{"minimumTlsVersion": "min_tls_version", "supportsHttpsTrafficOnly": "enable_https_traffic_only"}
	azapiAKSNames     = map[string]string{"enableRBAC": "role_based_access_control_enabled", "disableLocalAccounts": "local_account_disabled"}
	azapiPoolNames    = map[string]string{"vnetSubnetID": "vnet_subnet_id", "enableNodePublicIP": "node_public_ip_enabled"}
)

// azapiPaths names, by the azurerm type an azapi_resource is read as, the
// ARM properties of the azurerm arguments and blocks the reader fills
// from more than one property or from an object, beside those it maps
// one to one.
var azapiPaths = map[string]map[string]string{
	"azurerm_storage_account": {"network_rules": "networkAcls", "default_action": "defaultAction", "ip_rules": "ipRules",
		"public_network_access_enabled": "publicNetworkAccess"},
	"azurerm_key_vault": {"network_acls": "networkAcls", "default_action": "defaultAction", "ip_rules": "ipRules",
		"public_network_access_enabled": "publicNetworkAccess"},
	"azurerm_container_app": {"ip_security_restriction": "ipSecurityRestrictions", "ip_address_range": "ipAddressRange",
		"container_app_environment_id": "environmentId"},
	"azurerm_container_app_environment": {"internal_load_balancer_enabled": "vnetConfiguration.internal", "public_network_access": "publicNetworkAccess"},
	"azurerm_kubernetes_cluster": {"private_cluster_enabled": "apiServerAccessProfile.enablePrivateCluster",
		"api_server_authorized_ip_ranges": "apiServerAccessProfile.authorizedIPRanges", "api_server_access_profile": "apiServerAccessProfile",
		"authorized_ip_ranges": "authorizedIPRanges", "azure_active_directory_role_based_access_control": "aadProfile",
		"default_node_pool": "agentPoolProfiles[0]"},
	"azurerm_linux_web_app": {"site_config": "siteConfig", "ip_restriction": "ipSecurityRestrictions", "scm_ip_restriction": "scmIpSecurityRestrictions",
		"public_network_access_enabled": "publicNetworkAccess", "https_only": "httpsOnly", "ip_address": "ipAddress",
		"the azurerm provider's default": "ARM's default"},
}

// azapiOneToOne are, by the azurerm type an azapi_resource is read as, the
// maps of ARM properties to the arguments the reader takes them as.
var azapiOneToOne = map[string][]map[string]string{
	"azurerm_linux_web_app":      {azapiSiteNames},
	"azurerm_container_app":      {azapiIngressNames},
	"azurerm_storage_account":    {azapiStorageNames},
	"azurerm_kubernetes_cluster": {azapiAKSNames, azapiPoolNames},
}

// fromAzapi reports whether r was written through the AzAPI provider and
// read as the azurerm resource of its Type.
func fromAzapi(r *tf.Resource) bool {
	a := r.Address
	if r.Module != "" {
		a = strings.TrimPrefix(a, r.Module+".")
	}
	return strings.HasPrefix(a, "azapi_resource.") || strings.HasPrefix(a, "azapi_update_resource.")
}

// azapiWords rewrites in msg, said of an azapi_resource read as the
// azurerm type typ, the azurerm argument names the reader filled by the
// ARM properties its body holds, so the finding names what its code
// says. Longer names go first: none is rewritten inside another.
func azapiWords(typ, msg string) string {
	names := map[string]string{}
	for _, m := range azapiOneToOne[typ] {
		for arm, k := range m {
			names[k] = arm
		}
	}
	for k, arm := range azapiPaths[typ] {
		names[k] = arm
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) })
	for _, k := range keys {
		if strings.Contains(msg, k) {
			msg = regexp.MustCompile(`\b`+regexp.QuoteMeta(k)+`\b`).ReplaceAllLiteralString(msg, names[k])
		}
	}
	return msg
}
