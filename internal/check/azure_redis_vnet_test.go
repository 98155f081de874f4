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
