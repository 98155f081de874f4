# Plaintext and TLS below 1.2: a web app without https_only, with FTP and
# TLS 1.0; a legacy app that leaves FTP to the platform's default; a Redis
# cache with its non-TLS port open; a storage account that admits HTTP.
resource "azurerm_linux_web_app" "api" {
  name                          = "app-api"
  resource_group_name           = "rg-apps"
  location                      = "westeurope"
  service_plan_id               = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  public_network_access_enabled = false

  site_config {
    ftps_state          = "AllAllowed"
    minimum_tls_version = "1.0"
  }
}

resource "azurerm_app_service" "legacy" {
  name                = "app-legacy"
  location            = "westeurope"
  resource_group_name = "rg-apps"
  app_service_plan_id = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only          = true

  site_config {
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
  enable_non_ssl_port           = true
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
}

resource "azurerm_storage_account" "exports" {
  name                          = "stexports"
  resource_group_name           = "rg-data"
  location                      = "westeurope"
  account_tier                  = "Standard"
  account_replication_type      = "LRS"
  https_traffic_only_enabled    = false
  min_tls_version               = "TLS1_1"
  public_network_access_enabled = false
}

# Databases that take connections without TLS: a single server with SSL
# enforcement off, a flexible server whose parameter turns it off.
resource "azurerm_postgresql_server" "legacy" {
  name                          = "psql-legacy"
  location                      = "westeurope"
  resource_group_name           = "rg-data"
  sku_name                      = "GP_Gen5_2"
  version                       = "11"
  ssl_enforcement_enabled       = false
  public_network_access_enabled = false
}

resource "azurerm_mysql_flexible_server" "orders" {
  name                = "mysql-orders"
  resource_group_name = "rg-data"
  location            = "westeurope"
  sku_name            = "GP_Standard_D2ds_v4"
}

resource "azurerm_mysql_flexible_server_configuration" "plaintext" {
  name      = "require_secure_transport"
  server_id = azurerm_mysql_flexible_server.orders.id
  value     = "OFF"
}
