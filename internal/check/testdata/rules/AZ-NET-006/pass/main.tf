# Network rules that deny by default, inline and as their own resource, and a
# key vault with public network access off.
resource "azurerm_storage_account" "logs" {
  name                            = "stlogs"
  resource_group_name             = "rg"
  location                        = "westeurope"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  allow_nested_items_to_be_public = false

  network_rules {
    default_action = "Deny"
    ip_rules       = ["198.51.100.0/24"]
    bypass         = ["AzureServices"]
  }
}

resource "azurerm_storage_account" "reports" {
  name                            = "streports"
  resource_group_name             = "rg"
  location                        = "westeurope"
  account_tier                    = "Standard"
  account_replication_type        = "GRS"
  allow_nested_items_to_be_public = false
}

resource "azurerm_storage_account_network_rules" "reports" {
  storage_account_id = azurerm_storage_account.reports.id
  default_action     = "Deny"
}

resource "azurerm_key_vault" "app" {
  name                          = "kv-app"
  location                      = "westeurope"
  resource_group_name           = "rg"
  tenant_id                     = "00000000-0000-0000-0000-000000000000"
  sku_name                      = "standard"
  public_network_access_enabled = false
}

resource "azurerm_key_vault" "ops" {
  name                = "kv-ops"
  location            = "westeurope"
  resource_group_name = "rg"
  tenant_id           = "00000000-0000-0000-0000-000000000000"
  sku_name            = "standard"

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
  }
}

# Cosmos DB reached from virtual network rules only, one whose filter (a
# string, azurerm 3.x) names an office, one behind a private endpoint with
# public access off; Redis with firewall rules, injected into a subnet, or
# with public access off.
resource "azurerm_cosmosdb_account" "orders" {
  name                              = "cosmos-orders"
  location                          = "westeurope"
  resource_group_name               = "rg"
  offer_type                        = "Standard"
  is_virtual_network_filter_enabled = true

  virtual_network_rule {
    id = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/app"
  }

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = "westeurope"
    failover_priority = 0
  }
}

resource "azurerm_cosmosdb_account" "catalog" {
  name                = "cosmos-catalog"
  location            = "westeurope"
  resource_group_name = "rg"
  offer_type          = "Standard"
  ip_range_filter     = "203.0.113.0/24,198.51.100.7"

  consistency_policy {
    consistency_level = "Session"
  }

  geo_location {
    location          = "westeurope"
    failover_priority = 0
  }
}

resource "azurerm_cosmosdb_account" "ledger" {
  name                          = "cosmos-ledger"
  location                      = "westeurope"
  resource_group_name           = "rg"
  offer_type                    = "Standard"
  public_network_access_enabled = false

  consistency_policy {
    consistency_level = "Strong"
  }

  geo_location {
    location          = "westeurope"
    failover_priority = 0
  }
}

resource "azurerm_private_endpoint" "ledger" {
  name                = "pe-cosmos-ledger"
  location            = "westeurope"
  resource_group_name = "rg"
  subnet_id           = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/endpoints"

  private_service_connection {
    name                           = "cosmos-ledger"
    private_connection_resource_id = azurerm_cosmosdb_account.ledger.id
    subresource_names              = ["Sql"]
    is_manual_connection           = false
  }
}

resource "azurerm_redis_cache" "sessions" {
  name                = "redis-sessions"
  location            = "westeurope"
  resource_group_name = "rg"
  capacity            = 1
  family              = "C"
  sku_name            = "Standard"
  minimum_tls_version = "1.2"
}

resource "azurerm_redis_firewall_rule" "office" {
  name                = "office"
  redis_cache_name    = azurerm_redis_cache.sessions.name
  resource_group_name = "rg"
  start_ip            = "203.0.113.1"
  end_ip              = "203.0.113.254"
}

resource "azurerm_redis_cache" "queue" {
  name                = "redis-queue"
  location            = "westeurope"
  resource_group_name = "rg"
  capacity            = 1
  family              = "P"
  sku_name            = "Premium"
  minimum_tls_version = "1.2"
  subnet_id           = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/redis"
}

resource "azurerm_redis_cache" "locks" {
  name                          = "redis-locks"
  location                      = "westeurope"
  resource_group_name           = "rg"
  capacity                      = 1
  family                        = "C"
  sku_name                      = "Standard"
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
}
