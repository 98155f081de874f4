package check

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"moat/internal/check/tf"
)

// modelledTypes are the resource types, among those that put something
// in a network (networkSignal), whose part in it the model accounts for:
// read into endpoints, security groups, ACLs, routes, front doors or
// firewall rules, or read for the addresses they admit.
var modelledTypes = map[string]bool{
	// AWS: compute, interfaces and what launches them.
	"aws_instance": true, "aws_network_interface": true, "aws_launch_template": true,
	"aws_launch_configuration": true, "aws_autoscaling_group": true, "aws_ec2_fleet": true,
	"aws_spot_fleet_request": true, "aws_ecs_service": true, "aws_eks_cluster": true,
	"aws_eks_node_group": true, "aws_elastic_beanstalk_environment": true, "aws_lightsail_instance": true,
	// AWS: load balancers and the front doors before them.
	"aws_lb": true, "aws_alb": true, "aws_elb": true, "aws_apigatewayv2_vpc_link": true, "aws_vpc_endpoint": true,
	// AWS: data stores.
	"aws_db_instance": true, "aws_rds_cluster": true, "aws_rds_cluster_instance": true,
	"aws_elasticache_cluster": true, "aws_elasticache_replication_group": true, "aws_elasticache_serverless_cache": true, "aws_memorydb_cluster": true, "aws_redshift_cluster": true, "aws_redshiftserverless_workgroup": true,
	"aws_msk_cluster": true, "aws_dms_replication_instance": true, "aws_mq_broker": true,
	"aws_docdb_cluster": true, "aws_docdb_cluster_instance": true, "aws_neptune_cluster": true,
	"aws_neptune_cluster_instance": true, "aws_emr_cluster": true, "aws_batch_compute_environment": true,
	"aws_ec2_client_vpn_endpoint": true, "aws_ec2_client_vpn_network_association": true,
	"aws_ec2_instance_connect_endpoint": true, "aws_efs_mount_target": true, "aws_opensearch_domain": true,
	"aws_elasticsearch_domain": true, "aws_db_proxy": true, "aws_transfer_server": true,
	// AWS: security groups and their rules (which name other groups).
	"aws_security_group": true, "aws_default_security_group": true, "aws_security_group_rule": true,
	"aws_vpc_security_group_ingress_rule": true, "aws_vpc_security_group_egress_rule": true,
	"aws_network_interface_sg_attachment": true,
	// Azure: machines, interfaces, balancers, gateways and firewalls.
	"azurerm_network_interface": true, "azurerm_linux_virtual_machine": true, "azurerm_windows_virtual_machine": true,
	"azurerm_virtual_machine": true, "azurerm_linux_virtual_machine_scale_set": true,
	"azurerm_windows_virtual_machine_scale_set": true, "azurerm_orchestrated_virtual_machine_scale_set": true,
	"azurerm_virtual_machine_scale_set": true, "azurerm_lb": true, "azurerm_application_gateway": true,
	"azurerm_firewall": true, "azurerm_kubernetes_cluster": true, "azurerm_container_group": true,
	"azurerm_virtual_network_gateway": true, "azurerm_network_profile": true,
	// Azure: services read for the networks their firewalls admit.
	"azurerm_storage_account": true, "azurerm_key_vault": true, "azurerm_container_registry": true,
	"azurerm_cosmosdb_account": true, "azurerm_cosmosdb_postgresql_cluster": true, "azurerm_redis_cache": true,
	"azurerm_managed_redis": true, "azurerm_redis_enterprise_cluster": true, "azurerm_cognitive_account": true,
	"azurerm_eventhub_namespace": true, "azurerm_servicebus_namespace": true, "azurerm_search_service": true,
	"azurerm_mssql_managed_instance": true, "azurerm_mssql_server": true, "azurerm_sql_server": true, "azurerm_postgresql_server": true,
	"azurerm_postgresql_flexible_server": true, "azurerm_mysql_server": true, "azurerm_mysql_flexible_server": true,
	"azurerm_mariadb_server": true, "azurerm_synapse_workspace": true, "azurerm_container_app": true,
	"azurerm_app_service": true, "azurerm_app_service_slot": true, "azurerm_function_app": true,
	"azurerm_function_app_slot": true, "azurerm_function_app_flex_consumption": true,
	"azurerm_linux_web_app": true, "azurerm_linux_web_app_slot": true, "azurerm_windows_web_app": true,
	"azurerm_windows_web_app_slot": true, "azurerm_linux_function_app": true, "azurerm_linux_function_app_slot": true,
	"azurerm_windows_function_app": true, "azurerm_windows_function_app_slot": true,
	// Reached by no one: interfaces that take no inbound connection.
	"aws_lambda_function": true, "aws_codebuild_project": true, "aws_apprunner_vpc_connector": true,
	"aws_emrserverless_application": true,
	// NAT gateways, for the way out alone: reached by no one from outside.
	"aws_nat_gateway": true, "azurerm_nat_gateway_public_ip_association": true,
}

// publicByDefault are Azure services the model does not read whose public
// network access is on unless the attribute named says otherwise: left
// out, the service answers on a public endpoint.
var publicByDefault = map[string]string{
	"azurerm_machine_learning_workspace": "public_network_access_enabled", "azurerm_data_factory": "public_network_enabled",
	"azurerm_signalr_service": "public_network_access_enabled", "azurerm_web_pubsub": "public_network_access_enabled",
	"azurerm_batch_account": "public_network_access_enabled", "azurerm_databricks_workspace": "public_network_access_enabled",
	"azurerm_api_management": "public_network_access_enabled", "azurerm_kusto_cluster": "public_network_access_enabled",
	"azurerm_dashboard_grafana": "public_network_access_enabled", "azurerm_eventgrid_topic": "public_network_access_enabled",
	"azurerm_eventgrid_domain": "public_network_access_enabled", "azurerm_iothub": "public_network_access_enabled",
	"azurerm_purview_account": "public_network_enabled", "azurerm_app_configuration": "public_network_access",
	"azurerm_automation_account": "public_network_access_enabled", "azurerm_relay_namespace": "public_network_access_enabled",
	// An App Runner service's URL answers HTTPS from the internet unless
	// its ingress is private.
	"aws_apprunner_service": "network_configuration.ingress_configuration.is_publicly_accessible",
}

// pathSet tells whether the attribute at path (blocks and the attribute,
// joined by dots) is set in vals, and whether a block on the way is not
// known statically (a dynamic block over a value without one), which may
// set it either way.
func pathSet(vals map[string]any, path string) (set, unknownBlock bool) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		if blocksUnknown(vals, k) {
			return false, true
		}
		if vals = block(vals, k); vals == nil {
			return false, false
		}
	}
	return has(vals, keys[len(keys)-1]), false
}

// databricksNodes tells why a Databricks workspace's cluster nodes take
// public addresses ("" when they do not): custom_parameters.no_public_ip
// false, or not known statically, or unset where the azurerm provider
// runs before 4.0, whose default it was (true since). Each node is then
// reached from the internet on what the NSG of its host subnet admits.
func (m *Model) databricksNodes(vals map[string]any) string {
	const k = "custom_parameters.no_public_ip"
	cp := block(vals, "custom_parameters")
	switch {
	case blocksUnknown(vals, "custom_parameters") || unknown(cp, "no_public_ip"):
		return "it sets " + k + " (not known statically): its cluster nodes may take public addresses"
	case has(cp, "no_public_ip") && !boolean(cp, "no_public_ip", true):
		return "it sets " + k + " = false: its cluster nodes take public addresses"
	case !has(cp, "no_public_ip"):
		if pin, before := m.providerBefore("azurerm", "4.0.0"); before {
			return "it leaves " + k + " unset: false before azurerm 4.0 (" + pin + "), so its cluster nodes take public addresses"
		}
	}
	return ""
}

// aseSignal tells why an App Service Environment publishes its apps on a
// public address ("" when it does not): its internal_load_balancing_mode,
// None unless set, puts the web front end behind an internal balancer
// only when it names Web ("Web" or "Web, Publishing"; "Publishing" alone
// keeps the apps public).
func aseSignal(vals map[string]any) string {
	const k = "internal_load_balancing_mode"
	switch mode := str(vals, k); {
	case unknown(vals, k):
		return "it sets " + k + " (not known statically): its apps may answer on a public address"
	case !has(vals, k):
		return "it leaves " + k + " unset: None by default, so its apps answer on a public address"
	case !strings.Contains(strings.ToLower(mode), "web"):
		return "it sets " + k + " = " + mode + ": its apps answer on a public address"
	}
	return ""
}

// apimInternal tells whether r is an API Management service whose
// virtual_network_type is Internal: its gateway and portals answer only
// inside its virtual network, on a private address, so leaving
// public_network_access_enabled unset opens nothing. External, None (the
// default) and a mode not known statically leave them public.
func apimInternal(r *tf.Resource) bool {
	return r.Type == "azurerm_api_management" && !unknown(r.Values, "virtual_network_type") &&
		strings.EqualFold(str(r.Values, "virtual_network_type"), "Internal")
}

// networkSignal tells why the values of a resource put something in a
// network that may be reached ("" when nothing does): security groups it
// attaches (sgRefKey), a public address it takes or turns on, public
// network access it turns on (or leaves not known statically; a
// public_network_access of Enabled), an ip_configuration in a subnet. Each is named by its attribute, at any
// depth.
func networkSignal(vals map[string]any) string {
	found := map[string]bool{}
	eachKey(vals, func(v map[string]any, k string) {
		switch {
		case strings.HasPrefix(k, "network_security_group") || strings.Contains(k, "application_security_group"):
			// An Azure NSG or application security group it
			// names filters or groups; it is no endpoint.
		case sgRefKey(k) && (len(strList(v, k)) > 0 || unknown(v, k)):
			found[k] = true
		case k == "public_ip_address_id" && (str(v, k) != "" || unknown(v, k)):
			found[k] = true
		case k == "public_network_access" && unknown(v, k):
			// A string, Enabled or Disabled, not a switch.
			found[k+" (not known statically)"] = true
		case k == "public_network_access" && strings.EqualFold(str(v, k), "Enabled"):
			found[k+" = "+str(v, k)] = true
		case publicSwitch(k) && unknown(v, k):
			found[k+" (not known statically)"] = true
		case publicSwitch(k) && boolean(v, k, false):
			found[k+" = true"] = true
		case (strings.HasSuffix(k, "_type") || strings.HasSuffix(k, "_mode")) && strings.HasPrefix(strings.ToUpper(str(v, k)), "PUBLIC"):
			found[k+" = "+str(v, k)] = true
		case k == "ip_configuration":
			for _, ipc := range blocks(v, k) {
				if str(ipc, "subnet_id") != "" || unknown(ipc, "subnet_id") {
					found["ip_configuration.subnet_id"] = true
				}
			}
		}
	})
	return joinKeys(found)
}

// clusterSignal tells why a workload a Kubernetes cluster runs may be
// reached from outside it ("" when nothing does): a service (or a raw
// manifest of one) of type LoadBalancer or NodePort, or of a type not
// known statically; an ingress, which an ingress controller serves; a Helm
// chart, whose services this reader does not see.
func clusterSignal(typ string, vals map[string]any) string {
	switch {
	case typ == "helm_release":
		chart := str(vals, "chart")
		if chart == "" {
			chart = "a chart not known statically"
		}
		return "chart = " + chart
	case typ == "kubernetes_ingress" || typ == "kubernetes_ingress_v1":
		return "spec.rule"
	}
	found := map[string]bool{}
	eachKey(vals, func(v map[string]any, k string) {
		switch t := str(v, k); {
		case k == "type" && (strings.EqualFold(t, "LoadBalancer") || strings.EqualFold(t, "NodePort")):
			found["type = "+t] = true
		case k == "type" && unknown(v, k) && strings.HasPrefix(typ, "kubernetes_service"):
			found["type (not known statically)"] = true
		case k == "kind" && strings.EqualFold(t, "Ingress"):
			found["kind = "+t] = true
		}
	})
	return joinKeys(found)
}

// azapiInert are the ARM resource types (each with its child types; one
// ending in "/" is a whole namespace) that put nothing in a network:
// groups, roles, identities, monitoring, keys, DNS zones and App Service
// plans.
var azapiInert = []string{"Microsoft.Resources/", "Microsoft.Authorization/", "Microsoft.ManagedIdentity/",
	"Microsoft.Insights/", "Microsoft.OperationalInsights/", "Microsoft.OperationsManagement/", "Microsoft.Compute/sshPublicKeys",
	"Microsoft.Network/privateDnsZones", "Microsoft.Network/dnsZones", "Microsoft.Network/networkWatchers", "Microsoft.Web/serverfarms"}

// azapiSignal tells why an azapi_resource (or, with update, an
// azapi_update_resource, which changes a resource made elsewhere) may put
// something in a network ("" when it does not): any ARM type but those of
// azapiInert, whose networks, machines and services the model reads only
// when they are written as azurerm resources, and a type not known
// statically.
func azapiSignal(vals map[string]any, update bool) string {
	if unknown(vals, "type") {
		return "it sets type (not known statically)"
	}
	typ := armType(vals)
	read := append([]string{azapiNSGType, azapiVNetType, azapiSubnetType, azapiPeeringType, azapiContainerAppType, azapiAppEnvType, azapiStorageType, azapiVaultType, azapiAKSType}, azapiSiteTypes...)
	if !update && slices.ContainsFunc(read, func(t string) bool { return strings.EqualFold(typ, t) }) {
		return "" // read as the azurerm resource it writes
	}
	if update && strings.EqualFold(typ, azapiSubnetType) && azapiSubnetUpdateRead(vals) {
		return "" // read as the associations it makes (azapiSubnetUpdate)
	}
	for _, p := range azapiInert {
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		if strings.EqualFold(typ+"/", p) || len(typ) >= len(p) && strings.EqualFold(typ[:len(p)], p) {
			return ""
		}
	}
	if (strings.EqualFold(typ, "Microsoft.Web/sites/config") || strings.EqualFold(typ, "Microsoft.Web/sites/slots/config")) && !siteConfigReach(vals["body"]) {
		return "" // authentication, app settings or the like, none of what admits whom
	}
	return "it sets type = " + typ
}

// siteNetworkKeys are the site configuration properties that decide who
// reaches a web or function app, and over what (AZ-APP-001, AZ-TLS-001).
var siteNetworkKeys = []string{"ipSecurityRestrictions", "scmIpSecurityRestrictions", "ipSecurityRestrictionsDefaultAction",
	"scmIpSecurityRestrictionsDefaultAction", "scmIpSecurityRestrictionsUseMain", "publicNetworkAccess", "ftpsState",
	"minTlsVersion", "scmMinTlsVersion"}

// siteConfigReach reports whether the body of a site's configuration may
// set what decides who reaches the site: one not known statically may.
func siteConfigReach(body any) bool {
	b, why := azapiBody(body)
	props, ok := b["properties"].(map[string]any)
	if why != "" || !ok {
		return true
	}
	return slices.ContainsFunc(siteNetworkKeys, func(k string) bool {
		for p := range props {
			if strings.EqualFold(p, k) {
				return true
			}
		}
		return false
	})
}

// joinKeys lists the keys of found, sorted, comma-separated.
func joinKeys(found map[string]bool) string {
	out := make([]string, 0, len(found))
	for k := range found {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// publicSwitch tells whether attribute k turns a public address or public
// access on: associate_public_ip_address, assign_public_ip,
// publicly_accessible, is_publicly_accessible (an App Runner service's
// ingress), is_public (a Spring Apps app's endpoint),
// enable_internet_access (a public address on each WorkSpace a directory
// launches), and those named public… enabled or enable… public
// (public_network_access_enabled, node_public_ip_enabled,
// enable_node_public_ip, public_data_endpoint_enabled …).
func publicSwitch(k string) bool {
	switch k {
	case "associate_public_ip_address", "assign_public_ip", "publicly_accessible", "is_publicly_accessible", "is_public", "enable_internet_access":
		return true
	}
	return strings.Contains(k, "public") && (strings.HasSuffix(k, "_enabled") || strings.HasPrefix(k, "enable_"))
}

// noteUnmodelled notes each AWS or Azure resource that puts something in
// a network (networkSignal, azapiSignal), and each workload of a Kubernetes cluster that
// may be reached from outside it (clusterSignal), whose type the model does
// not read: what
// it exposes, and to whom, is not evaluated, and the finding says so
// rather than pass over it.
func (m *Model) noteUnmodelled(rs []*tf.Resource) {
	placed := map[string]bool{} // node pools placed in their subnets
	for _, e := range m.Endpoints {
		if e.Kind == "node pool" {
			placed[e.Addr] = true
		}
	}
	for _, r := range rs {
		var why string
		switch {
		case placed[r.Address] || placed[r.Address+".default_node_pool"] && r.Type == "azurerm_kubernetes_cluster":
			// Its API server, and its pool's machines in their subnet.
		case r.Type == "azurerm_kubernetes_cluster":
			// The model reads its API server; its default node pool's
			// machines, with public addresses, in a network AKS makes,
			// it does not.
			if s := networkSignal(block(r.Values, "default_node_pool")); s != "" {
				why = "it sets default_node_pool." + strings.ReplaceAll(s, ", ", ", default_node_pool.")
			}
		case modelledTypes[r.Type]:
		case strings.HasPrefix(r.Type, "azurerm_hdinsight_") && strings.HasSuffix(r.Type, "_cluster"):
			// Its endpoints are public unless private link removes them,
			// whatever network its nodes are in.
			if n := block(r.Values, "network"); n == nil || !boolean(n, "private_link_enabled", false) || unknown(n, "private_link_enabled") {
				why = "its gateway (HTTPS, with the gateway's password) and SSH endpoints face the internet unless network.private_link_enabled is true"
			}
		case r.Type == "azurerm_databricks_workspace":
			why = networkSignal(r.Values)
			if why != "" {
				why = "it sets " + why
			}
			if attr := publicByDefault[r.Type]; !has(r.Values, attr) {
				why = strings.TrimPrefix(why+"; it leaves "+attr+" unset: on by default", "; ")
			}
			if nodes := m.databricksNodes(r.Values); nodes != "" {
				why = strings.TrimPrefix(why+"; "+nodes, "; ")
			}
		case r.Type == "azurerm_app_service_environment_v3" || r.Type == "azurerm_app_service_environment":
			why = aseSignal(r.Values)
		case r.Type == "aws_ram_resource_association":
			if sub := m.sharedSubnet(r); sub != "" {
				why = "it shares " + sub + " with other accounts: what they launch in it, behind security groups of their own, is not in the scanned code"
			}
		case r.Type == "aws_opensearchserverless_security_policy":
			why = serverlessPublic(r.Values)
		case r.Type == "azurerm_service_fabric_managed_cluster":
			// It makes its own load balancer, public, whatever subnet
			// its nodes are in.
			why = "its own public load balancer takes ports " + strings.Join(fabricPorts(r.Values), ", ") + " from the internet unless its network_security_rules deny them"
		case strings.HasPrefix(r.Type, "aws_") || strings.HasPrefix(r.Type, "azurerm_"):
			why = networkSignal(r.Values)
			if why != "" {
				why = "it sets " + why
			}
			if attr := publicByDefault[r.Type]; attr != "" && !apimInternal(r) {
				switch set, unknownBlock := pathSet(r.Values, attr); {
				case unknownBlock:
					why = strings.TrimPrefix(why+"; it sets "+attr+" in a block not known statically: read as on, its default", "; ")
				case !set:
					why = strings.TrimPrefix(why+"; it leaves "+attr+" unset: on by default", "; ")
				}
				if why != "" && r.Type == "azurerm_api_management" && unknown(r.Values, "virtual_network_type") {
					why += "; it sets virtual_network_type (not known statically): read as public, External or None"
				}
			}
		case r.Type == "azapi_resource" || r.Type == "azapi_update_resource":
			why = azapiSignal(r.Values, r.Type == "azapi_update_resource")
		case strings.HasPrefix(r.Type, "kubernetes_") || r.Type == "helm_release":
			if why = clusterSignal(r.Type, r.Values); why != "" {
				why = "it sets " + why
			}
		}
		if why != "" {
			m.note(r, "%s is not in the network model (%s): what it exposes to the internet or to other networks is not evaluated", r.Type, why)
		}
	}
}

// fabricPorts are the ports a Service Fabric managed cluster's load
// balancer takes: its client connection and HTTP gateway ports and each
// lb_rule's frontend port, in that order.
func fabricPorts(v map[string]any) []string {
	port := func(b map[string]any, k string) string {
		if unknown(b, k) || !has(b, k) {
			return k + " (not known statically)"
		}
		return strconv.Itoa(num(b, k, 0))
	}
	out := []string{port(v, "client_connection_port"), port(v, "http_gateway_port")}
	for _, rule := range blocks(v, "lb_rule") {
		out = append(out, port(rule, "frontend_port"))
	}
	return out
}

// sharedSubnet names the subnet a RAM resource association shares ("" when
// it shares something else): one of the project's, by reference, or one
// outside it, by ARN.
func (m *Model) sharedSubnet(r *tf.Resource) string {
	if s := m.lookup(m.ref(r.Values, "resource_arn")); s != nil {
		if s.Type == "aws_subnet" || s.Type == "aws_default_subnet" {
			return s.Address
		}
		return ""
	}
	if arn := str(r.Values, "resource_arn"); strings.Contains(arn, ":subnet/") {
		return "subnet " + arn
	}
	return ""
}

// serverlessPublic says why an OpenSearch Serverless network policy may
// open collections or dashboards to the internet ("" when it does not):
// a rule set with AllowFromPublic true, or a policy or type not known
// statically.
func serverlessPublic(v map[string]any) string {
	switch {
	case unknown(v, "type"):
		return "its type is not known statically: it may be a network policy allowing public access"
	case !strings.EqualFold(str(v, "type"), "network"):
		return ""
	}
	doc, _ := document(v, "policy")
	var sets []map[string]any
	if err := json.Unmarshal([]byte(doc), &sets); err != nil {
		var one map[string]any
		if json.Unmarshal([]byte(doc), &one) != nil {
			return "its policy is not known statically: it may allow public access (AllowFromPublic)"
		}
		sets = []map[string]any{one}
	}
	for _, set := range sets {
		switch a := set["AllowFromPublic"].(type) {
		case bool:
			if a {
				return "AllowFromPublic is true: the collections and dashboards it names answer on public endpoints"
			}
		default:
			if strings.Contains(fmt.Sprint(a), tf.UnknownJSON) {
				return "AllowFromPublic is not known statically: the collections it names may answer on public endpoints"
			}
		}
	}
	return ""
}
