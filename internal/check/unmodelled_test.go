package check

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// notModelled returns the notes a report gives on resources the network
// model does not read, by address.
func notModelled(rep *Report) map[string]string {
	out := map[string]string{}
	for _, f := range rep.Findings {
		if f.RuleID == RuleNotEvaluated && strings.Contains(f.Message, "is not in the network model") {
			out[f.Address] = f.Message
		}
	}
	return out
}

// TestUnmodelledResourcesNoted: a resource that puts something in the
// network (groups it attaches, a public address or public access it turns
// on) but whose type the model does not read was passed over in silence: an
// Airflow web server on the internet, a SQL
// managed instance's public data endpoint, a cluster's service of type
// LoadBalancer, its ingress, a Helm chart it runs, a Service Bus namespace
// that leaves public network access on by default, a public IP written
// through the AzAPI provider. Each is now a note saying
// what is not evaluated; what the model reads (an RDS proxy, a public SFTP
// endpoint, a Lambda function in a VPC, a NAT gateway, an NSG written through the AzAPI provider) is
// not.
func TestUnmodelledResourcesNoted(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want map[string]string // address → the attribute the note names
		none []string
	}{
		{"testdata/aws/not-modelled", map[string]string{
			"aws_mwaa_environment.pipelines": "security_group_ids, webserver_access_mode = PUBLIC_ONLY",
			"kubernetes_service_v1.shop":     "type = LoadBalancer",
			"kubernetes_ingress_v1.web":      "spec.rule",
			"kubernetes_manifest.admin":      "type = NodePort",
			"helm_release.ingress":           "chart = ingress-nginx",
		}, []string{"aws_db_proxy.orders", "aws_transfer_server.drop", "aws_lambda_function.loader", "aws_nat_gateway.out", "aws_security_group.proxy",
			"kubernetes_service.metrics"}},
		{"testdata/azure/not-modelled", map[string]string{
			"azurerm_bastion_host.ops":                  "ip_configuration.subnet_id, public_ip_address_id",
			"azurerm_kubernetes_cluster_node_pool.edge": "node_public_ip_enabled = true",
			"azurerm_relay_namespace.orders":            "",
			"azapi_resource.edge_ip":                    "type = Microsoft.Network/publicIPAddresses",
			"azapi_resource.anything":                   "type (not known statically)",
			"azapi_update_resource.open_ssh":            "type = Microsoft.Network/networkSecurityGroups/securityRules",
		}, []string{"azurerm_subnet_network_security_group_association.data", "azurerm_public_ip.bastion", "azurerm_nat_gateway_public_ip_association.egress",
			"azurerm_eventhub_namespace.closed", "azapi_resource.ops_key", "azapi_resource.edge_rules", "azapi_resource.zone", "azapi_resource.zone_link", "azurerm_mssql_managed_instance.ledger"}},
	} {
		got := notModelled(run(t, tc.dir))
		for addr, attrs := range tc.want {
			want := "(it sets " + attrs + ")"
			if attrs == "" {
				want = "(it leaves public_network_access_enabled unset: on by default)"
			}
			if msg, ok := got[addr]; !ok || !strings.Contains(msg, want) {
				t.Errorf("%s: note on %s: %q, want one naming %s", tc.dir, addr, msg, attrs)
			}
		}
		for _, addr := range tc.none {
			if msg, ok := got[addr]; ok {
				t.Errorf("%s: %s, which the model accounts for, noted: %s", tc.dir, addr, msg)
			}
		}
	}
	// An App Configuration store and an Automation account leave
	// public network access on by default too; one that turns it off is
	// not noted.
	got := notModelled(run(t, "testdata/azure/not-modelled"))
	for addr, attr := range map[string]string{"azurerm_app_configuration.settings": "public_network_access", "azurerm_automation_account.runbooks": "public_network_access_enabled"} {
		if msg := got[addr]; !strings.Contains(msg, "(it leaves "+attr+" unset: on by default)") {
			t.Errorf("note on %s: %q, want one naming %s unset", addr, msg, attr)
		}
	}
	if msg, ok := got["azurerm_app_configuration.closed"]; ok {
		t.Errorf("azurerm_app_configuration.closed, public network access Disabled, noted: %s", msg)
	}
}

// TestDBProxyAndFunctionInVPC: a database that an RDS proxy alone may open,
// and the proxy that a Lambda function in the VPC alone may open, were
// reached by no source of the project (--reach): neither the proxy nor
// the function was in the model. The proxy answers its engine family's
// port behind its groups; the function is a source that answers nothing.
func TestDBProxyAndFunctionInVPC(t *testing.T) {
	const dir = "testdata/aws/db-proxy"
	for _, tc := range []struct{ to, from string }{
		{"aws_db_instance.orders", "aws_db_proxy.orders"},
		{"aws_db_proxy.orders", "aws_lambda_function.api"},
	} {
		acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		var from []string
		for _, a := range acc {
			from = append(from, a.Source)
			if a.Port != 5432 {
				t.Errorf("%s reaches %s on %s %d, want tcp 5432 alone", a.Source, tc.to, a.Proto, a.Port)
			}
		}
		if !slices.ContainsFunc(from, func(s string) bool { return strings.HasPrefix(s, tc.from) }) {
			t.Errorf("sources of %s: %v, want %s", tc.to, from, tc.from)
		}
	}
	acc, err := Reachability(context.Background(), Config{Paths: []string{dir}}, "aws_lambda_function.api")
	if err != nil {
		t.Fatal(err)
	}
	if len(acc) != 0 {
		t.Errorf("the function, which takes no connection, reached: %+v", acc)
	}
}

// TestAKSNodePublicIPsNoted: an AKS cluster is in the model for its API
// server alone; its default node pool's public node addresses were passed
// over in silence, as was the azurerm 3.x name of the switch on a separate
// node pool. Each is now a note naming it.
func TestAKSNodePublicIPsNoted(t *testing.T) {
	src := `variable "public" { type = bool }
resource "azurerm_kubernetes_cluster" "v4" {
  name       = "v4"
  dns_prefix = "v4"
  default_node_pool {
    name                   = "default"
    node_public_ip_enabled = true
  }
}
resource "azurerm_kubernetes_cluster" "v3" {
  name       = "v3"
  dns_prefix = "v3"
  default_node_pool {
    name                  = "default"
    enable_node_public_ip = var.public
  }
}
resource "azurerm_kubernetes_cluster" "private_nodes" {
  name       = "p"
  dns_prefix = "p"
  default_node_pool {
    name = "default"
  }
}
resource "azurerm_kubernetes_cluster_node_pool" "edge" {
  name                  = "edge"
  kubernetes_cluster_id = azurerm_kubernetes_cluster.v3.id
  enable_node_public_ip = true
}
`
	got := notModelled(checkSource(t, src))
	for addr, want := range map[string]string{
		"azurerm_kubernetes_cluster.v4":             "default_node_pool.node_public_ip_enabled = true",
		"azurerm_kubernetes_cluster.v3":             "default_node_pool.enable_node_public_ip (not known statically)",
		"azurerm_kubernetes_cluster_node_pool.edge": "enable_node_public_ip = true",
	} {
		if msg, ok := got[addr]; !ok || !strings.Contains(msg, want) {
			t.Errorf("note on %s: %q, want one naming %s", addr, msg, want)
		}
	}
	if msg, ok := got["azurerm_kubernetes_cluster.private_nodes"]; ok {
		t.Errorf("note on a cluster whose nodes take no public address: %s", msg)
	}
}

// TestAzapiSiteConfigWithoutReach checks that a site configuration written
// through the AzAPI provider that sets only what does not decide who
// reaches the site (its authentication) is not noted, while one setting
// its access restrictions is.
func TestAzapiSiteConfigWithoutReach(t *testing.T) {
	rep := checkSource(t, `
resource "azapi_update_resource" "auth" {
  type        = "Microsoft.Web/sites/config@2022-03-01"
  resource_id = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/sites/app/config/web"
  body = jsonencode({
    properties = {
      siteAuthSettingsV2 = {
        platform = { enabled = true }
      }
    }
  })
}
resource "azapi_update_resource" "restrictions" {
  type        = "Microsoft.Web/sites/config@2022-03-01"
  resource_id = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/sites/app/config/web"
  body = {
    properties = {
      ipSecurityRestrictionsDefaultAction = "Allow"
    }
  }
}
`)
	got := notModelled(rep)
	if _, ok := got["azapi_update_resource.auth"]; ok {
		t.Errorf("a note on a site configuration of authentication alone: %v", got)
	}
	if _, ok := got["azapi_update_resource.restrictions"]; !ok {
		t.Errorf("no note on a site configuration of access restrictions: %v", got)
	}
}

// TestHDInsightPublicEndpointsNoted checks that an HDInsight cluster, whose
// gateway (HTTPS, with a password) and SSH endpoints face the internet
// unless private link is on, is noted as not evaluated, saying so; one
// with private link on is not.
func TestHDInsightPublicEndpointsNoted(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_hdinsight_spark_cluster" "open" {
  name            = "spark-open"
  cluster_version = "4.0"
  tier            = "Standard"
  gateway {
    username = "admin"
    password = "x"
  }
}
resource "azurerm_hdinsight_kafka_cluster" "private" {
  name            = "kafka-private"
  cluster_version = "4.0"
  tier            = "Standard"
  network {
    connection_direction = "Outbound"
    private_link_enabled = true
  }
}
`)
	got := notModelled(rep)
	if why, ok := got["azurerm_hdinsight_spark_cluster.open"]; !ok || !strings.Contains(why, "SSH") {
		t.Errorf("note on the public cluster: %q (noted %v), want one naming its SSH endpoint", why, ok)
	}
	if _, ok := got["azurerm_hdinsight_kafka_cluster.private"]; ok {
		t.Errorf("a note on the private link cluster: %v", got)
	}
}

// TestGlueConnectionGroups: a Glue connection attaches the groups of its
// physical_connection_requirements.security_group_id_list to the interfaces
// it makes in its subnet; they were read as attached to nothing (AWS-NET-008,
// and "nothing in the scanned code attaches it") and the connection passed
// over. The groups are used, and the connection is noted as not evaluated.
func TestGlueConnectionGroups(t *testing.T) {
	rep := checkSource(t, `
resource "aws_security_group" "glue" {
  name   = "glue"
  vpc_id = "vpc-1"
  ingress {
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    self        = true
  }
}
resource "aws_glue_connection" "jdbc" {
  name = "jdbc"
  connection_properties = {
    JDBC_CONNECTION_URL = "jdbc:mysql://db.internal:3306/app"
  }
  physical_connection_requirements {
    availability_zone      = "us-east-1a"
    security_group_id_list = [aws_security_group.glue.id]
    subnet_id              = "subnet-1"
  }
}
`)
	if f := findingOn(rep, RuleUnusedSG, "aws_security_group.glue"); f != nil {
		t.Errorf("%s on the group the Glue connection attaches: %s", RuleUnusedSG, f.Message)
	}
	if why := notModelled(rep)["aws_glue_connection.jdbc"]; !strings.Contains(why, "security_group_id_list") {
		t.Errorf("note on the Glue connection: %q, want one naming security_group_id_list", why)
	}
}

// TestServiceFabricManagedClusterNoted: a Service Fabric managed cluster
// makes its own public load balancer, which takes its client and HTTP
// gateway ports and its lb_rule ports from the internet; it put nothing
// the model reads in a network and was passed over. It is noted as not
// evaluated, naming those ports.
func TestServiceFabricManagedClusterNoted(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_service_fabric_managed_cluster" "sf" {
  name                   = "sf"
  resource_group_name    = "rg"
  location               = "westeurope"
  client_connection_port = 19000
  http_gateway_port      = 19080
  lb_rule {
    backend_port       = 8080
    frontend_port      = 80
    probe_protocol     = "http"
    probe_request_path = "/"
    protocol           = "tcp"
  }
}
`)
	if why := notModelled(rep)["azurerm_service_fabric_managed_cluster.sf"]; !strings.Contains(why, "19000") || !strings.Contains(why, "19080") || !strings.Contains(why, "80") {
		t.Errorf("note on the managed cluster: %q, want one naming its ports 19000, 19080 and 80", why)
	}
}

// TestUnknownPublicSwitchNoted: a public switch set from a value not known
// statically (a variable without a value) was said to be "= true" in the
// note on a resource outside the model; it is said to be not known
// statically.
func TestUnknownPublicSwitchNoted(t *testing.T) {
	rep := checkSource(t, `
variable "exposed" { type = bool }
resource "azurerm_machine_learning_workspace" "ml" {
  name                          = "ml"
  public_network_access_enabled = var.exposed ? true : false
}
`)
	why := notModelled(rep)["azurerm_machine_learning_workspace.ml"]
	if !strings.Contains(why, "public_network_access_enabled (not known statically)") || strings.Contains(why, "= true") {
		t.Errorf("note on the workspace: %q, want one saying public_network_access_enabled is not known statically", why)
	}
}

// TestRAMSharedSubnetNoted: a subnet shared with other accounts through
// RAM holds what those accounts launch, behind groups of their own, none
// of it in the scanned code; the share was passed over in silence. The
// association is noted as not evaluated, naming the subnet, by reference
// or by ARN; one sharing a transit gateway is not.
func TestRAMSharedSubnetNoted(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "shared" {
  cidr_block = "10.16.0.0/16"
}
resource "aws_subnet" "app" {
  vpc_id     = aws_vpc.shared.id
  cidr_block = "10.16.96.0/20"
}
resource "aws_ram_resource_share" "subnets" {
  name                      = "subnets"
  allow_external_principals = false
}
resource "aws_ram_resource_association" "app" {
  resource_share_arn = aws_ram_resource_share.subnets.arn
  resource_arn       = aws_subnet.app.arn
}
resource "aws_ram_resource_association" "legacy" {
  resource_share_arn = aws_ram_resource_share.subnets.arn
  resource_arn       = "arn:aws:ec2:us-east-1:111122223333:subnet/subnet-0abc"
}
resource "aws_ec2_transit_gateway" "hub" {}
resource "aws_ram_resource_association" "tgw" {
  resource_share_arn = aws_ram_resource_share.subnets.arn
  resource_arn       = aws_ec2_transit_gateway.hub.arn
}
`)
	got := notModelled(rep)
	if why := got["aws_ram_resource_association.app"]; !strings.Contains(why, "aws_subnet.app") {
		t.Errorf("note on the share of aws_subnet.app: %q, want one naming it", why)
	}
	if why := got["aws_ram_resource_association.legacy"]; !strings.Contains(why, "subnet/subnet-0abc") {
		t.Errorf("note on the share by ARN: %q, want one naming the subnet", why)
	}
	if why, ok := got["aws_ram_resource_association.tgw"]; ok {
		t.Errorf("note on the share of a transit gateway: %s", why)
	}
}

// TestServerlessPublicNoted: an OpenSearch Serverless network policy that
// allows public access (AllowFromPublic) opened collections to the
// internet and was passed over in silence; it is noted as not evaluated.
// One that allows only VPC endpoints is not.
func TestServerlessPublicNoted(t *testing.T) {
	rep := checkSource(t, `
resource "aws_opensearchserverless_security_policy" "public" {
  name = "public"
  type = "network"
  policy = jsonencode([{
    Rules           = [{ ResourceType = "collection", Resource = ["collection/logs"] }]
    AllowFromPublic = true
  }])
}
resource "aws_opensearchserverless_security_policy" "private" {
  name = "private"
  type = "network"
  policy = jsonencode([{
    Rules           = [{ ResourceType = "collection", Resource = ["collection/logs"] }]
    AllowFromPublic = false
    SourceVPCEs     = ["vpce-0123456789abcdef0"]
  }])
}
resource "aws_opensearchserverless_security_policy" "encryption" {
  name = "enc"
  type = "encryption"
  policy = jsonencode({
    Rules       = [{ ResourceType = "collection", Resource = ["collection/logs"] }]
    AWSOwnedKey = true
  })
}
`)
	noted := map[string]bool{}
	for _, n := range active(rep, RuleNotEvaluated) {
		if strings.Contains(n.Message, "not in the network model") {
			noted[n.Address] = true
		}
	}
	if !noted["aws_opensearchserverless_security_policy.public"] {
		t.Errorf("the public network policy is not noted: %+v", active(rep, RuleNotEvaluated))
	}
	for _, a := range []string{"aws_opensearchserverless_security_policy.private", "aws_opensearchserverless_security_policy.encryption"} {
		if noted[a] {
			t.Errorf("%s allows no public access, yet is noted", a)
		}
	}
}

// TestPublicWebServicesNoted: an App Runner service answers HTTPS from the
// internet unless its ingress_configuration says is_publicly_accessible =
// false (and does so by default), a Spring Apps app with is_public = true
// takes requests on a public endpoint, and an App Service Environment
// whose internal_load_balancing_mode is "None" (its default) publishes
// its apps on a public address; each was passed over in silence. Each is
// noted as not evaluated, saying why; a private App Runner service and an
// internal environment are not.
func TestPublicWebServicesNoted(t *testing.T) {
	rep := checkSource(t, `
resource "aws_apprunner_service" "by_default" {
  service_name = "by-default"
  source_configuration {
    image_repository {
      image_identifier      = "public.ecr.aws/app/web:latest"
      image_repository_type = "ECR_PUBLIC"
    }
  }
}
resource "aws_apprunner_service" "public" {
  service_name = "public"
  network_configuration {
    ingress_configuration {
      is_publicly_accessible = true
    }
  }
}
variable "ingress" { type = list(bool) }
resource "aws_apprunner_service" "dynamic" {
  service_name = "dynamic"
  network_configuration {
    dynamic "ingress_configuration" {
      for_each = var.ingress
      content {
        is_publicly_accessible = ingress_configuration.value
      }
    }
  }
}
resource "aws_apprunner_service" "private" {
  service_name = "private"
  network_configuration {
    ingress_configuration {
      is_publicly_accessible = false
    }
  }
}
resource "azurerm_spring_cloud_app" "api" {
  name                = "api"
  resource_group_name = "rg"
  service_name        = "spring"
  is_public           = true
}
resource "azurerm_app_service_environment_v3" "external" {
  name                = "external"
  resource_group_name = "rg"
  subnet_id           = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/ase"
}
resource "azurerm_app_service_environment_v3" "internal" {
  name                         = "internal"
  resource_group_name          = "rg"
  subnet_id                    = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/ase"
  internal_load_balancing_mode = "Web, Publishing"
}
`)
	got := notModelled(rep)
	for addr, want := range map[string]string{
		"aws_apprunner_service.by_default":            "is_publicly_accessible unset: on by default",
		"aws_apprunner_service.public":                "is_publicly_accessible = true",
		"aws_apprunner_service.dynamic":               "is_publicly_accessible (not known statically)",
		"azurerm_spring_cloud_app.api":                "is_public = true",
		"azurerm_app_service_environment_v3.external": "internal_load_balancing_mode unset",
	} {
		if why := got[addr]; !strings.Contains(why, want) {
			t.Errorf("note on %s: %q, want one saying %q", addr, why, want)
		}
	}
	for _, addr := range []string{"aws_apprunner_service.private", "azurerm_app_service_environment_v3.internal"} {
		if why, ok := got[addr]; ok {
			t.Errorf("a note on %s: %s", addr, why)
		}
	}
}

// TestWorkSpacesInternetAccessNoted: a WorkSpaces directory with
// workspace_creation_properties.enable_internet_access = true gives each
// WorkSpace it launches a public address in its subnet; with no group of
// its own named the directory was passed over in silence. It is noted as
// not evaluated, naming the switch; one that leaves it off is not.
func TestWorkSpacesInternetAccessNoted(t *testing.T) {
	rep := checkSource(t, `
resource "aws_workspaces_directory" "open" {
  directory_id = "d-1234567890"
  workspace_creation_properties {
    enable_internet_access = true
  }
}
resource "aws_workspaces_directory" "closed" {
  directory_id = "d-0987654321"
  workspace_creation_properties {
    enable_internet_access = false
  }
}
`)
	got := notModelled(rep)
	if why := got["aws_workspaces_directory.open"]; !strings.Contains(why, "enable_internet_access = true") {
		t.Errorf("note on the directory: %q, want one naming enable_internet_access = true", why)
	}
	if why, ok := got["aws_workspaces_directory.closed"]; ok {
		t.Errorf("a note on the directory without internet access: %s", why)
	}
}

// TestDatabricksPublicNodesNoted: a Databricks workspace whose
// custom_parameters.no_public_ip is false (its default before azurerm
// 4.0) gives each cluster node a public address, behind the NSG of its
// host subnet; one that turns public network access off was passed over
// in silence. It is noted as not evaluated, naming no_public_ip; one
// with no_public_ip true is not.
func TestDatabricksPublicNodesNoted(t *testing.T) {
	rep := checkSource(t, `
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 3.100"
    }
  }
}
resource "azurerm_databricks_workspace" "set" {
  name                          = "set"
  resource_group_name           = "rg"
  location                      = "westeurope"
  sku                           = "premium"
  public_network_access_enabled = false
  custom_parameters {
    no_public_ip = false
  }
}
resource "azurerm_databricks_workspace" "by_default" {
  name                          = "by-default"
  resource_group_name           = "rg"
  location                      = "westeurope"
  sku                           = "premium"
  public_network_access_enabled = false
}
resource "azurerm_databricks_workspace" "secure" {
  name                          = "secure"
  resource_group_name           = "rg"
  location                      = "westeurope"
  sku                           = "premium"
  public_network_access_enabled = false
  custom_parameters {
    no_public_ip = true
  }
}
`)
	got := notModelled(rep)
	for addr, want := range map[string]string{
		"azurerm_databricks_workspace.set":        "custom_parameters.no_public_ip = false",
		"azurerm_databricks_workspace.by_default": "custom_parameters.no_public_ip unset",
	} {
		if why := got[addr]; !strings.Contains(why, want) {
			t.Errorf("note on %s: %q, want one saying %q", addr, why, want)
		}
	}
	if why, ok := got["azurerm_databricks_workspace.secure"]; ok {
		t.Errorf("a note on the workspace without public node addresses: %s", why)
	}
}

// TestPublicNetworkAccessEnabledNoted: a service outside the model whose
// public_network_access (a string, not a switch) says "Enabled" was passed
// over in silence, where one leaving it unset, on by default, was noted;
// it is noted too, and one not known statically with it. One that says
// "Disabled" is not.
func TestPublicNetworkAccessEnabledNoted(t *testing.T) {
	rep := checkSource(t, `
variable "access" { type = string }
resource "azurerm_app_configuration" "enabled" {
  name                  = "enabled"
  resource_group_name   = "rg"
  location              = "westeurope"
  public_network_access = "Enabled"
}
resource "azurerm_app_configuration" "unknown" {
  name                  = "unknown"
  resource_group_name   = "rg"
  location              = "westeurope"
  public_network_access = var.access
}
resource "azurerm_app_configuration" "disabled" {
  name                  = "disabled"
  resource_group_name   = "rg"
  location              = "westeurope"
  public_network_access = "Disabled"
}
`)
	got := notModelled(rep)
	for addr, want := range map[string]string{
		"azurerm_app_configuration.enabled": "public_network_access = Enabled",
		"azurerm_app_configuration.unknown": "public_network_access (not known statically)",
	} {
		if why := got[addr]; !strings.Contains(why, want) {
			t.Errorf("note on %s: %q, want one saying %q", addr, why, want)
		}
	}
	if why, ok := got["azurerm_app_configuration.disabled"]; ok {
		t.Errorf("a note on the store without public access: %s", why)
	}
}
