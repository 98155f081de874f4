# Ranges wider than any one network's, short of the whole internet.
resource "azurerm_postgresql_flexible_server" "ledger" {
  name = "ledger-pg"
}
resource "azurerm_postgresql_flexible_server_firewall_rule" "half" {
  name             = "half"
  server_id        = azurerm_postgresql_flexible_server.ledger.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "127.255.255.255"
}
resource "azurerm_redis_cache" "sessions" {
  name     = "sessions"
  capacity = 1
  family   = "C"
  sku_name = "Standard"
}
resource "azurerm_redis_firewall_rule" "span" {
  name                = "span"
  redis_cache_name    = azurerm_redis_cache.sessions.name
  resource_group_name = "rg"
  start_ip            = "1.2.3.4"
  end_ip              = "2.3.4.5"
}
# One /8: a range one organisation may hold.
resource "azurerm_mssql_server" "orders" {
  name    = "orders-sql"
  version = "12.0"
}
resource "azurerm_mssql_firewall_rule" "one" {
  name             = "one"
  server_id        = azurerm_mssql_server.orders.id
  start_ip_address = "17.0.0.0"
  end_ip_address   = "17.255.255.255"
}
# Redis has no "Azure services" rule: 0.0.0.0 is no client's address.
resource "azurerm_redis_cache" "quiet" {
  name     = "quiet"
  capacity = 1
  family   = "C"
  sku_name = "Standard"
}
resource "azurerm_redis_firewall_rule" "zero" {
  name                = "zero"
  redis_cache_name    = azurerm_redis_cache.quiet.name
  resource_group_name = "rg"
  start_ip            = "0.0.0.0"
  end_ip              = "0.0.0.0"
}
resource "azurerm_network_security_group" "wide" {
  name                = "nsg-wide"
  location            = "westeurope"
  resource_group_name = "rg"
  security_rule {
    name                       = "ssh"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "0.0.0.0/1"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_security_group" "private" {
  name                = "nsg-private"
  location            = "westeurope"
  resource_group_name = "rg"
  security_rule {
    name                       = "ssh"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "10.0.0.0/8"
    destination_address_prefix = "*"
  }
}
