# Session and job caches on Azure Managed Redis: one left with the
# defaults and access keys turned on for an older client, one reached
# through a private endpoint only, one whose exposure a variable decides,
# and a legacy worker cache that speaks the plaintext protocol.

provider "azurerm" {
  features {}
}

variable "cache_public_access" {
  type = string
}

resource "azurerm_resource_group" "app" {
  name     = "rg-app"
  location = "westeurope"
}

resource "azurerm_virtual_network" "app" {
  name                = "vnet-app"
  location            = azurerm_resource_group.app.location
  resource_group_name = azurerm_resource_group.app.name
  address_space       = ["10.20.0.0/16"]
}

resource "azurerm_subnet" "endpoints" {
  name                 = "snet-endpoints"
  resource_group_name  = azurerm_resource_group.app.name
  virtual_network_name = azurerm_virtual_network.app.name
  address_prefixes     = ["10.20.1.0/24"]
}

resource "azurerm_managed_redis" "sessions" {
  name                = "redis-sessions"
  resource_group_name = azurerm_resource_group.app.name
  location            = azurerm_resource_group.app.location
  sku_name            = "Balanced_B1"

  default_database {
    access_keys_authentication_enabled = true
  }
}

resource "azurerm_managed_redis" "jobs" {
  name                  = "redis-jobs"
  resource_group_name   = azurerm_resource_group.app.name
  location              = azurerm_resource_group.app.location
  sku_name              = "Balanced_B0"
  public_network_access = "Disabled"

  default_database {
    client_protocol = "Plaintext"
  }
}

resource "azurerm_private_endpoint" "jobs" {
  name                = "pe-redis-jobs"
  location            = azurerm_resource_group.app.location
  resource_group_name = azurerm_resource_group.app.name
  subnet_id           = azurerm_subnet.endpoints.id

  private_service_connection {
    name                           = "redis-jobs"
    private_connection_resource_id = azurerm_managed_redis.jobs.id
    subresource_names              = ["redisEnterprise"]
    is_manual_connection           = false
  }
}

resource "azurerm_managed_redis" "features" {
  name                  = "redis-features"
  resource_group_name   = azurerm_resource_group.app.name
  location              = azurerm_resource_group.app.location
  sku_name              = "Balanced_B0"
  public_network_access = var.cache_public_access

  default_database {}
}
