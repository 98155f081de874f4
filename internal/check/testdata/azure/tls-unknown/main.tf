# Minimum TLS versions given at apply time: each is read at its worst,
# TLS 1.0.
variable "tls" {
  type = string
}
resource "azurerm_storage_account" "data" {
  name                     = "data"
  resource_group_name      = "rg"
  location                 = "westeurope"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  min_tls_version          = var.tls
}
resource "azurerm_redis_cache" "cache" {
  name                = "cache"
  resource_group_name = "rg"
  location            = "westeurope"
  capacity            = 1
  family              = "C"
  sku_name            = "Standard"
  minimum_tls_version = var.tls
}
resource "azurerm_mssql_server" "sql" {
  name                         = "sql"
  resource_group_name          = "rg"
  location                     = "westeurope"
  version                      = "12.0"
  minimum_tls_version          = var.tls
}
resource "azurerm_linux_web_app" "app" {
  name                = "app"
  resource_group_name = "rg"
  location            = "westeurope"
  service_plan_id     = "plan"
  https_only          = true
  site_config {
    minimum_tls_version = var.tls
    ftps_state          = "Disabled"
  }
}
resource "azurerm_postgresql_server" "pg" {
  name                             = "pg"
  resource_group_name              = "rg"
  location                         = "westeurope"
  sku_name                         = "GP_Gen5_2"
  version                          = "11"
  ssl_enforcement_enabled          = true
  ssl_minimal_tls_version_enforced = var.tls
}
