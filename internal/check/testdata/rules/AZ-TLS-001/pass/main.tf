# TLS only, at 1.2 or above: https_only with the provider's defaults for FTP
# (Disabled) and TLS (1.2), FTPS only on a legacy app, Redis with the non-TLS
# port off (azurerm 4.x name) and a storage account on its defaults.
resource "azurerm_windows_web_app" "portal" {
  name                          = "app-portal"
  resource_group_name           = "rg-apps"
  location                      = "westeurope"
  service_plan_id               = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only                    = true
  public_network_access_enabled = false

  site_config {}
}

resource "azurerm_function_app" "legacy" {
  name                       = "func-legacy"
  location                   = "westeurope"
  resource_group_name        = "rg-apps"
  app_service_plan_id        = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  storage_account_name       = "stlegacy"
  storage_account_access_key = "key"
  https_only                 = true

  site_config {
    ftps_state      = "FtpsOnly"
    min_tls_version = "1.2"
    ip_restriction {
      ip_address = "203.0.113.0/24"
    }
    scm_use_main_ip_restriction = true
  }
}

resource "azurerm_redis_cache" "sessions" {
  name                          = "redis-sessions"
  location                      = "westeurope"
  resource_group_name           = "rg-data"
  capacity                      = 1
  family                        = "C"
  sku_name                      = "Standard"
  non_ssl_port_enabled          = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
}

resource "azurerm_storage_account" "exports" {
  name                          = "stexports"
  resource_group_name           = "rg-data"
  location                      = "westeurope"
  account_tier                  = "Standard"
  account_replication_type      = "LRS"
  public_network_access_enabled = false
}

resource "azurerm_postgresql_server" "legacy" {
  name                             = "psql-legacy"
  location                         = "westeurope"
  resource_group_name              = "rg-data"
  sku_name                         = "GP_Gen5_2"
  version                          = "11"
  ssl_enforcement_enabled          = true
  ssl_minimal_tls_version_enforced = "TLS1_2"
  public_network_access_enabled    = false
}

resource "azurerm_postgresql_flexible_server_configuration" "pgaudit" {
  name      = "shared_preload_libraries"
  server_id = "/subscriptions/0/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql"
  value     = "pgaudit"
}
