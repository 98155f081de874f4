package check

import (
	"strings"
	"testing"
)

// TestMongoClusterFirewall checks that a firewall rule of an Azure Cosmos
// DB for MongoDB (vCore) cluster is read as those of the other database
// servers (AZ-NET-005): every address to a cluster that leaves
// public_network_access Enabled, its default, is critical; 0.0.0.0 alone
// admits every Azure service; a cluster that sets it Disabled has no
// public endpoint for its rules to open, and one whose switch is not
// known statically is assumed public, at high.
func TestMongoClusterFirewall(t *testing.T) {
	rep := checkSource(t, `
resource "azurerm_mongo_cluster" "open" {
  name                   = "open"
  resource_group_name    = "rg"
  location               = "westeurope"
  administrator_username = "admin"
  administrator_password = "x"
  shard_count            = "1"
  compute_tier           = "Free"
  high_availability_mode = "Disabled"
  storage_size_in_gb     = "32"
}
resource "azurerm_mongo_cluster_firewall_rule" "all" {
  name             = "all"
  mongo_cluster_id = azurerm_mongo_cluster.open.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "255.255.255.255"
}
resource "azurerm_mongo_cluster_firewall_rule" "azure" {
  name             = "azure"
  mongo_cluster_id = azurerm_mongo_cluster.open.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "0.0.0.0"
}
resource "azurerm_mongo_cluster" "closed" {
  name                   = "closed"
  resource_group_name    = "rg"
  location               = "westeurope"
  administrator_username = "admin"
  administrator_password = "x"
  shard_count            = "1"
  compute_tier           = "Free"
  high_availability_mode = "Disabled"
  storage_size_in_gb     = "32"
  public_network_access  = "Disabled"
}
resource "azurerm_mongo_cluster_firewall_rule" "closed" {
  name             = "closed"
  mongo_cluster_id = azurerm_mongo_cluster.closed.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "255.255.255.255"
}
variable "access" {}
resource "azurerm_mongo_cluster" "maybe" {
  name                   = "maybe"
  resource_group_name    = "rg"
  location               = "westeurope"
  administrator_username = "admin"
  administrator_password = "x"
  shard_count            = "1"
  compute_tier           = "Free"
  high_availability_mode = "Disabled"
  storage_size_in_gb     = "32"
  public_network_access  = var.access
}
resource "azurerm_mongo_cluster_firewall_rule" "maybe" {
  name             = "maybe"
  mongo_cluster_id = azurerm_mongo_cluster.maybe.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "255.255.255.255"
}
`)
	for _, c := range []struct {
		addr string
		sev  Severity
		want string
	}{
		{"azurerm_mongo_cluster_firewall_rule.all", Critical, "every internet address to azurerm_mongo_cluster.open"},
		{"azurerm_mongo_cluster_firewall_rule.azure", Medium, "every Azure service"},
		{"azurerm_mongo_cluster_firewall_rule.maybe", High, "public_network_access not known statically"},
	} {
		if got := activeOn(rep, RuleAzFirewallOpen, c.addr); len(got) != 1 || got[0].Severity != c.sev || !strings.Contains(got[0].Message, c.want) {
			t.Errorf("%s on %s: %+v, want one %s saying %q", RuleAzFirewallOpen, c.addr, got, c.sev, c.want)
		}
	}
	if got := activeOn(rep, RuleAzFirewallOpen, "azurerm_mongo_cluster_firewall_rule.closed"); len(got) != 0 {
		t.Errorf("a rule of a cluster with public access Disabled: %+v, want none", got)
	}
}
