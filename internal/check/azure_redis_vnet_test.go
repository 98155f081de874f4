package check

import (
	"strings"
	"testing"
)

// redisInjected is a Premium Azure Cache for Redis injected into a subnet
// (subnet_id) without an NSG, in a network peered both ways with another.
const redisInjected = `
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "3.90.0"
    }
  }
}
resource "azurerm_virtual_network" "data" {
  name                = "data"
  resource_group_name = "rg"
  location            = "westeurope"
  address_space       = ["10.0.0.0/16"]
}
resource "azurerm_virtual_network" "apps" {
  name                = "apps"
  resource_group_name = "rg"
  location            = "westeurope"
  address_space       = ["10.9.0.0/16"]
}
resource "azurerm_virtual_network_peering" "data_apps" {
  name                      = "data-apps"
  resource_group_name       = "rg"
  virtual_network_name      = azurerm_virtual_network.data.name
  remote_virtual_network_id = azurerm_virtual_network.apps.id
}
resource "azurerm_virtual_network_peering" "apps_data" {
  name                      = "apps-data"
  resource_group_name       = "rg"
  virtual_network_name      = azurerm_virtual_network.apps.name
  remote_virtual_network_id = azurerm_virtual_network.data.id
}
resource "azurerm_subnet" "cache" {
  name                 = "cache"
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.data.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_redis_cache" "sessions" {
  name                          = "sessions"
  location                      = "westeurope"
  resource_group_name           = "rg"
  capacity                      = 1
  family                        = "P"
  sku_name                      = "Premium"
  subnet_id                     = azurerm_subnet.cache.id
  public_network_access_enabled = false
}
`

// TestRedisInjectedInSubnet checks that a cache injected into a subnet is
// a data store there, behind the subnet's NSG, on its TLS port 6380 and,
// with the non-TLS port on, 6379: the whole peered network reaching it is
// AZ-NET-004. It was in no network of the model, and passed over in
// silence.
func TestRedisInjectedInSubnet(t *testing.T) {
	const addr = "azurerm_redis_cache.sessions"
	for _, tc := range []struct {
		name, src, want string
	}{
		{"tls", redisInjected, "tcp 6380"},
		{"non-tls", strings.Replace(redisInjected, `sku_name                      = "Premium"`, `sku_name = "Premium"
  enable_non_ssl_port = true`, 1), "tcp 6379 (Redis), tcp 6380"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := activeOn(checkSource(t, tc.src), "AZ-NET-004", addr)
			if len(got) != 1 || !strings.Contains(got[0].Message, "azurerm_virtual_network.apps") || !strings.Contains(got[0].Message, " on "+tc.want) {
				t.Errorf("AZ-NET-004 on %s: %d findings, want one naming the peer on %s: %+v", addr, len(got), tc.want, got)
			}
		})
	}
}

// TestRedisInjectedPublicAccess checks how AZ-NET-006 reads a cache that
// names a subnet. Azure takes public_network_access_enabled to have no
// effect on a cache injected into a subnet, which is not publicly
// addressable: on or unset, it is no finding. A subnet_id not known
// statically that may be null (a variable) leaves the cache maybe outside
// any subnet, at its public endpoint with no firewall rule: it is read
// so, and the finding says why; it was taken as injected and passed over.
func TestRedisInjectedPublicAccess(t *testing.T) {
	const addr = "azurerm_redis_cache.sessions"
	off := `  public_network_access_enabled = false
`
	for _, tc := range []struct {
		name, old, new string
		want           bool
	}{
		{"injected, access unset", off, "", false},
		{"injected, access on", off, "  public_network_access_enabled = true\n", false},
		{"subnet from a variable", "  subnet_id                     = azurerm_subnet.cache.id\n" + off,
			"  subnet_id = var.cache_subnet\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(redisInjected, tc.old, tc.new, 1) + "variable \"cache_subnet\" {}\n"
			got := activeOn(checkSource(t, src), RuleAzServiceOpen, addr)
			switch {
			case !tc.want && len(got) != 0:
				t.Errorf("AZ-NET-006 on %s, injected into a subnet: %+v", addr, got)
			case tc.want && (len(got) != 1 || !strings.Contains(got[0].Message, "subnet_id is not known statically")):
				t.Errorf("AZ-NET-006 on %s with subnet_id from a variable: %d findings, want one saying subnet_id is not known statically: %+v", addr, len(got), got)
			}
		})
	}
}
