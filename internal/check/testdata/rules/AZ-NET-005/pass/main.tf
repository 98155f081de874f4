resource "azurerm_mssql_server" "orders" {
  name    = "orders-sql"
  version = "12.0"
}
resource "azurerm_mssql_firewall_rule" "office" {
  name             = "office"
  server_id        = azurerm_mssql_server.orders.id
  start_ip_address = "203.0.113.0"
  end_ip_address   = "203.0.113.255"
}
# Public network access is off: the firewall applies to nothing.
resource "azurerm_postgresql_server" "ledger" {
  name                          = "ledger-pg"
  public_network_access_enabled = false
}
resource "azurerm_postgresql_firewall_rule" "all" {
  name             = "all"
  server_name      = azurerm_postgresql_server.ledger.name
  start_ip_address = "0.0.0.0"
  end_ip_address   = "255.255.255.255"
}
