package check

import (
	"strings"
	"testing"
)

// TestUnreadUnknownsNotNoted checks that a value not known statically is
// noted only where the checker reads it: an image, a zone, a start-up
// script, tags or a description feed no finding, so their notes would only
// bury the one that does (the rule's unknown source range, read as every
// address and said in the finding). A local or an output only passes its
// unknowns on: they are noted where a resource reads them, if it does.
func TestUnreadUnknownsNotNoted(t *testing.T) {
	rep := run(t, "testdata/aws/unread-unknowns")
	for _, addr := range []string{"aws_vpc.app", "aws_subnet.app", "aws_security_group.app", "aws_instance.app", "aws_instance.spare"} {
		for _, f := range activeOn(rep, RuleNotEvaluated, addr) {
			t.Errorf("note on %s, whose unknowns feed no finding: %s", addr, f.Message)
		}
	}
	for _, f := range active(rep, RuleNotEvaluated) {
		if strings.HasPrefix(f.Address, "local.") || strings.HasPrefix(f.Address, "output.") || f.Address == "module.admin" {
			t.Errorf("note on %s, which only passes unknowns on: %s", f.Address, f.Message)
		}
	}
	var ranged bool
	for _, f := range activeOn(rep, RuleNotEvaluated, "aws_security_group_rule.ssh") {
		ranged = ranged || strings.Contains(f.Message, "var.admin_range")
	}
	if !ranged {
		t.Errorf("no note on the rule's unknown source range: %+v", activeOn(rep, RuleNotEvaluated, "aws_security_group_rule.ssh"))
	}
	ranged = false
	for _, f := range activeOn(rep, RuleNotEvaluated, "module.admin.aws_security_group.admin") {
		ranged = ranged || strings.Contains(f.Message, "var.range")
	}
	if !ranged {
		t.Errorf("no note on the module's unknown source range: %+v", activeOn(rep, RuleNotEvaluated, "module.admin.aws_security_group.admin"))
	}
	if got := activeOn(rep, RuleWorldOpen, "aws_security_group_rule.ssh"); len(got) != 1 || !strings.Contains(got[0].Message, "assumed to admit every address") {
		t.Errorf("want the SSH rule reported at its worst, got %+v", got)
	}
}

// TestInstanceNotesMerged checks that the instances of one counted or
// for_each resource that leave the same thing not evaluated make one note,
// naming how many more instances share it, rather than one each: nine
// rules of one block made eighteen notes, burying any other.
func TestInstanceNotesMerged(t *testing.T) {
	src := `variable "vpc_id" { type = string }
data "aws_vpc" "this" { id = var.vpc_id }
resource "aws_security_group" "ad" { vpc_id = var.vpc_id }
resource "aws_security_group_rule" "tcp" {
  for_each          = toset(["53", "88", "389"])
  type              = "ingress"
  security_group_id = aws_security_group.ad.id
  from_port         = each.value
  to_port           = each.value
  protocol          = "tcp"
  cidr_blocks       = [data.aws_vpc.this.cidr_block]
}
resource "aws_security_group_rule" "udp" {
  type              = "ingress"
  security_group_id = aws_security_group.ad.id
  from_port         = 53
  to_port           = 53
  protocol          = "udp"
  cidr_blocks       = [data.aws_vpc.this.cidr_block]
}
`
	var tcp, udp []Finding
	for _, f := range active(checkSource(t, src), RuleNotEvaluated) {
		switch {
		case strings.HasPrefix(f.Address, "aws_security_group_rule.tcp"):
			tcp = append(tcp, f)
		case f.Address == "aws_security_group_rule.udp":
			udp = append(udp, f)
		}
	}
	if len(udp) == 0 || len(tcp) != len(udp) {
		t.Fatalf("notes on the three instances: %+v; on the lone rule: %+v; want as many", tcp, udp)
	}
	for _, f := range tcp {
		if !strings.Contains(f.Message, "and 2 other instances of aws_security_group_rule.tcp") {
			t.Errorf("note %q does not say 2 other instances share it", f.Message)
		}
	}
}

// TestCredentialsNotNoted checks that a database's user name or password
// (a Redis cache's auth_token) not known statically makes no note: no rule reads them, as none reads an
// instance's admin password.
func TestCredentialsNotNoted(t *testing.T) {
	src := `variable "user" { type = string }
variable "secret" { type = string }
resource "aws_redshift_cluster" "rs" {
  cluster_identifier = "rs"
  master_username    = var.user
  master_password    = var.secret
  encrypted          = true
}
resource "aws_db_instance" "db" {
  engine            = "postgres"
  username          = var.user
  password          = var.secret
  storage_encrypted = true
}
resource "azurerm_mssql_server" "sql" {
  name                         = "sql"
  administrator_login          = var.user
  administrator_login_password = var.secret
  public_network_access_enabled = false
}
resource "azurerm_postgresql_flexible_server" "pg" {
  name                          = "pg"
  administrator_login           = var.user
  administrator_password        = var.secret
  public_network_access_enabled = false
}
resource "aws_elasticache_replication_group" "cache" {
  replication_group_id       = "cache"
  description                = "cache"
  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = var.secret
}
`
	rep := checkSource(t, src)
	for _, addr := range []string{"aws_redshift_cluster.rs", "aws_db_instance.db", "azurerm_mssql_server.sql", "azurerm_postgresql_flexible_server.pg", "aws_elasticache_replication_group.cache"} {
		for _, f := range activeOn(rep, RuleNotEvaluated, addr) {
			t.Errorf("note on %s, whose unknown credentials feed no finding: %s", addr, f.Message)
		}
	}
}

// TestWriteOnlySecretsUnread checks that a write-only argument (a password
// given from an ephemeral resource, which Terraform never keeps) is not
// noted as not known statically: no rule reads it.
func TestWriteOnlySecretsUnread(t *testing.T) {
	rep := checkSource(t, `
ephemeral "random_password" "db" {
  length = 20
}
resource "azurerm_postgresql_flexible_server" "db" {
  name                              = "psql-apps"
  resource_group_name               = "rg-apps"
  location                          = "westeurope"
  public_network_access_enabled     = false
  administrator_password_wo         = ephemeral.random_password.db.result
  administrator_password_wo_version = 1
}
`)
	if got := activeOn(rep, RuleNotEvaluated, "azurerm_postgresql_flexible_server.db"); len(got) != 0 {
		t.Errorf("notes on a write-only password: %+v", got)
	}
	if got := active(rep, RuleRejected); len(got) != 0 {
		t.Errorf("an ephemeral resource read as undeclared: %+v", got)
	}
}

// TestRoleHolderAndAppSecretsUnread checks that who a role is assigned to
// and a container app's secrets and containers (their environment given
// from a variable), not known statically, are not noted: no rule reads
// them.
func TestRoleHolderAndAppSecretsUnread(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_user_assigned_identity" "app" {
  name                = "uai-app"
  resource_group_name = "rg-apps"
  location            = "westeurope"
}
resource "azurerm_role_assignment" "reader" {
  scope                = "/subscriptions/0000/resourceGroups/rg-apps"
  role_definition_name = "Reader"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
}
resource "azurerm_key_vault_secret" "first" {
  name         = "first"
  value        = "x"
  key_vault_id = "/subscriptions/0000/resourceGroups/rg-apps/providers/Microsoft.KeyVault/vaults/kv"
}
resource "azurerm_container_app" "app" {
  name                         = "ca-app"
  container_app_environment_id = "/subscriptions/0000/resourceGroups/rg-apps/providers/Microsoft.App/managedEnvironments/env"
  resource_group_name          = "rg-apps"
  revision_mode                = "Single"
  secret {
    name                = "first"
    key_vault_secret_id = azurerm_key_vault_secret.first.versionless_id
  }
  template {
    container {
      name   = "app"
      image  = "app:latest"
      cpu    = 0.25
      memory = "0.5Gi"
      env {
        name  = "DB_PASSWORD"
        value = var.db_password
      }
    }
  }
}
resource "azurerm_role_assignment" "pull" {
  scope                = "/subscriptions/0000/resourceGroups/rg-apps"
  role_definition_name = "AcrPull"
  principal_id         = azurerm_user_assigned_identity.app.client_id
}
variable "db_password" {
  type = string
}
`)
	for _, addr := range []string{"azurerm_role_assignment.reader", "azurerm_role_assignment.pull", "azurerm_container_app.app"} {
		if got := activeOn(rep, RuleNotEvaluated, addr); len(got) != 0 {
			t.Errorf("notes on %s: %+v", addr, got)
		}
	}
}

// TestUnsetVariableReadOnlyWhereNoRuleLooks checks that a root variable
// without a value is noted only when something a rule reads may depend on
// it: one that only names or tags resources (directly or through a local)
// changes no finding and is not noted; one that gives a rule's range is.
func TestUnsetVariableReadOnlyWhereNoRuleLooks(t *testing.T) {
	rep := checkSource(t, `
variable "environment" {}
variable "owner" {}
variable "office_cidr" {}
locals {
  common_tags = { Environment = var.environment, Owner = var.owner }
}
resource "aws_security_group" "ssh" {
  vpc_id      = "vpc-12345678"
  description = "ssh for ${var.environment}"
  tags        = local.common_tags
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.office_cidr]
  }
}
`)
	for _, v := range []string{"var.environment", "var.owner"} {
		if got := activeOn(rep, RuleNotEvaluated, v); len(got) != 0 {
			t.Errorf("notes on %s, which only tags and describes: %+v", v, got)
		}
	}
	if got := activeOn(rep, RuleNotEvaluated, "var.office_cidr"); len(got) != 1 {
		t.Errorf("notes on var.office_cidr, a rule's range: %+v, want one", got)
	}
}

// TestSubnetOfVPCNotKnownNotedOnce checks that a subnet whose VPC is not
// known statically is noted for that value alone, not also as in a VPC
// named "" outside the project; one in a VPC the code names by an ID it
// does not hold is noted as such.
func TestSubnetOfVPCNotKnownNotedOnce(t *testing.T) {
	rep := checkSource(t, `
data "aws_vpc" "default" {
  default = true
}
resource "aws_subnet" "looked_up" {
  vpc_id     = data.aws_vpc.default.id
  cidr_block = "172.31.128.0/24"
}
resource "aws_subnet" "elsewhere" {
  vpc_id     = "vpc-0123456789abcdef0"
  cidr_block = "172.31.144.0/24"
}
`)
	for _, f := range activeOn(rep, RuleNotEvaluated, "aws_subnet.looked_up") {
		if strings.Contains(f.Message, `""`) {
			t.Errorf("a note naming an empty VPC: %+v", f)
		}
	}
	wantNotes(t, rep, `subnet's VPC "vpc-0123456789abcdef0" is not in the project`)
}

// TestNamesFromVariableNotNoted checks that resources whose own names are
// made from a variable without a value, and linked to one another by
// reference, are not noted for those names, nor is the variable: a name
// matters only where the project names a resource by a string, and every
// such string here names one the model knows. Who holds a key vault's
// access policy, its tenant, a Cosmos DB account's regions, a subnet's
// delegation and a workspace's managed resource group are read by no rule
// either. A subnet that names its network by a string no network of the
// project has keeps the note on the network whose name is not known: it
// may be that one.
func TestNamesFromVariableNotNoted(t *testing.T) {
	const linked = `
variable "prefix" {}
variable "tenant" {}
resource "azurerm_resource_group" "rg" {
  name     = "${var.prefix}-rg"
  location = "westeurope"
}
resource "azurerm_virtual_network" "net" {
  name                = "${var.prefix}-net"
  address_space       = ["10.0.0.0/16"]
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name
}
resource "azurerm_subnet" "app" {
  name                 = "${var.prefix}-app"
  resource_group_name  = azurerm_resource_group.rg.name
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.0.1.0/24"]
  delegation {
    name = "${var.prefix}-delegation"
    service_delegation {
      name = "Microsoft.Databricks/workspaces"
    }
  }
}
resource "azurerm_network_security_group" "app" {
  name                = "${var.prefix}-nsg"
  location            = azurerm_resource_group.rg.location
  resource_group_name = azurerm_resource_group.rg.name
}
resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}
resource "azurerm_databricks_workspace" "dbw" {
  name                          = "${var.prefix}-dbw"
  resource_group_name           = azurerm_resource_group.rg.name
  location                      = azurerm_resource_group.rg.location
  sku                           = "premium"
  managed_resource_group_name   = "${var.prefix}-dbw-managed"
  public_network_access_enabled = false
}
resource "azurerm_key_vault" "kv" {
  name                          = "${var.prefix}-kv"
  location                      = azurerm_resource_group.rg.location
  resource_group_name           = azurerm_resource_group.rg.name
  tenant_id                     = var.tenant
  sku_name                      = "standard"
  public_network_access_enabled = false
  access_policy {
    tenant_id          = var.tenant
    object_id          = var.tenant
    secret_permissions = ["Get"]
  }
}
resource "azurerm_cosmosdb_account" "db" {
  name                          = "${var.prefix}-db"
  location                      = azurerm_resource_group.rg.location
  resource_group_name           = azurerm_resource_group.rg.name
  offer_type                    = "Standard"
  public_network_access_enabled = false
  consistency_policy {
    consistency_level = "Session"
  }
  geo_location {
    location          = azurerm_resource_group.rg.location
    failover_priority = 0
  }
}
`
	rep := checkSource(t, linked)
	for _, f := range active(rep, RuleNotEvaluated) {
		t.Errorf("note on %s: %s", f.Address, f.Message)
	}
	rep = checkSource(t, linked+`
resource "azurerm_subnet" "data" {
  name                 = "data"
  resource_group_name  = azurerm_resource_group.rg.name
  virtual_network_name = "prod-net"
  address_prefixes     = ["10.0.2.0/24"]
}
`)
	if got := activeOn(rep, RuleNotEvaluated, "azurerm_virtual_network.net"); len(got) != 1 || !strings.Contains(got[0].Message, "var.prefix") {
		t.Errorf("notes on the network a subnet may name: %+v, want its name's", got)
	}
	if got := activeOn(rep, RuleNotEvaluated, "var.prefix"); len(got) != 1 {
		t.Errorf("notes on var.prefix: %+v, want one", got)
	}
}

// TestBootDiagnosticsUnread checks that where a machine sends its boot
// diagnostics (a storage account's endpoint, which the provider computes)
// is not noted: no rule reads it.
func TestBootDiagnosticsUnread(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_storage_account" "diag" {
  name                          = "diagstore"
  resource_group_name           = "rg"
  location                      = "westeurope"
  account_tier                  = "Standard"
  account_replication_type      = "LRS"
  public_network_access_enabled = false
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  resource_group_name   = "rg"
  location              = "westeurope"
  size                  = "Standard_B1s"
  network_interface_ids = ["/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic"]
  boot_diagnostics {
    storage_account_uri = azurerm_storage_account.diag.primary_blob_endpoint
  }
}
`)
	if got := activeOn(rep, RuleNotEvaluated, "azurerm_linux_virtual_machine.vm"); len(got) != 0 {
		t.Errorf("notes on the machine: %+v", got)
	}
}

// TestSearchDomainSizingUnread checks that a search domain's name, nodes,
// disks and master user, given by variables without a value, are not
// noted, nor are the variables: no rule reads them, and the domain's name
// is only its own (no policy names it by a string). The master user's
// credentials sit two blocks deep, beside what a rule does read (whether
// fine-grained access control is on).
func TestSearchDomainSizingUnread(t *testing.T) {
	rep := checkSource(t, `
variable "domain" {}
variable "instance_type" {}
variable "volume_size" {}
variable "master_name" {}
variable "master_password" {}
resource "aws_opensearch_domain" "search" {
  domain_name = var.domain
  cluster_config {
    instance_type  = var.instance_type
    instance_count = 1
  }
  ebs_options {
    ebs_enabled = true
    volume_size = var.volume_size
  }
  domain_endpoint_options {
    enforce_https = true
  }
  advanced_security_options {
    enabled                        = true
    internal_user_database_enabled = true
    master_user_options {
      master_user_name     = var.master_name
      master_user_password = var.master_password
    }
  }
}
`)
	for _, f := range active(rep, RuleNotEvaluated) {
		t.Errorf("note on %s: %s", f.Address, f.Message)
	}
}

// TestPrivateLinkServiceUnread checks that a private link service's
// frontends (IDs the provider computes) and the subscriptions that may
// see it are not noted: no rule reads them.
func TestPrivateLinkServiceUnread(t *testing.T) {
	rep := checkSource(t, `
data "azurerm_client_config" "current" {}
resource "azurerm_lb" "lb" {
  name                = "lb"
  sku                 = "Standard"
  location            = "westeurope"
  resource_group_name = "rg"
  frontend_ip_configuration {
    name      = "internal"
    subnet_id = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/net/subnets/app"
  }
}
resource "azurerm_private_link_service" "pls" {
  name                                        = "pls"
  resource_group_name                         = "rg"
  location                                    = "westeurope"
  visibility_subscription_ids                 = [data.azurerm_client_config.current.subscription_id]
  auto_approval_subscription_ids              = [data.azurerm_client_config.current.subscription_id]
  load_balancer_frontend_ip_configuration_ids = [azurerm_lb.lb.frontend_ip_configuration[0].id]
  nat_ip_configuration {
    name      = "primary"
    subnet_id = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/net/subnets/app"
    primary   = true
  }
}
`)
	if got := activeOn(rep, RuleNotEvaluated, "azurerm_private_link_service.pls"); len(got) != 0 {
		t.Errorf("notes on the private link service: %+v", got)
	}
}
