resource "azurerm_mssql_server" "orders" {
  name    = "orders-sql"
  version = "12.0"
}
# Two /8s, each what one network may hold, together more than any does.
resource "azurerm_mssql_firewall_rule" "low" {
  name             = "low"
  server_id        = azurerm_mssql_server.orders.id
  start_ip_address = "11.0.0.0"
  end_ip_address   = "11.255.255.255"
}
resource "azurerm_mssql_firewall_rule" "high" {
  name             = "high"
  server_id        = azurerm_mssql_server.orders.id
  start_ip_address = "12.0.0.0"
  end_ip_address   = "12.255.255.255"
}
resource "azurerm_postgresql_flexible_server" "ledger" {
  name = "ledger-pg"
}
resource "azurerm_postgresql_flexible_server_firewall_rule" "azure" {
  name             = "azure-services"
  server_id        = azurerm_postgresql_flexible_server.ledger.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "0.0.0.0"
}
resource "azurerm_redis_firewall_rule" "all" {
  name                = "all"
  redis_cache_name    = "sessions"
  resource_group_name = "rg"
  start_ip            = "0.0.0.0"
  end_ip              = "255.255.255.255"
}
