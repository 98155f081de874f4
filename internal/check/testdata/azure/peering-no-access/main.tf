# Two peered networks; the data network's side turns
# allow_virtual_network_access off, so the app network's space is not in
# its VirtualNetwork tag, and an NSG admitting VirtualNetwork alone does
# not admit it. The ops network's peering leaves it on.
resource "azurerm_virtual_network" "data" {
  name          = "vnet-data"
  address_space = ["10.2.0.0/16"]
}
resource "azurerm_virtual_network" "app" {
  name          = "vnet-app"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_virtual_network" "ops" {
  name          = "vnet-ops"
  address_space = ["10.3.0.0/16"]
}
resource "azurerm_subnet" "db" {
  name                 = "snet-db"
  virtual_network_name = azurerm_virtual_network.data.name
  address_prefixes     = ["10.2.1.0/24"]
}
resource "azurerm_subnet" "app" {
  name                 = "snet-app"
  virtual_network_name = azurerm_virtual_network.app.name
  address_prefixes     = ["10.1.1.0/24"]
}
resource "azurerm_subnet" "ops" {
  name                 = "snet-ops"
  virtual_network_name = azurerm_virtual_network.ops.name
  address_prefixes     = ["10.3.1.0/24"]
}
resource "azurerm_virtual_network_peering" "data_app" {
  name                         = "data-app"
  virtual_network_name         = azurerm_virtual_network.data.name
  remote_virtual_network_id    = azurerm_virtual_network.app.id
  allow_virtual_network_access = false
}
resource "azurerm_virtual_network_peering" "app_data" {
  name                      = "app-data"
  virtual_network_name      = azurerm_virtual_network.app.name
  remote_virtual_network_id = azurerm_virtual_network.data.id
}
resource "azurerm_virtual_network_peering" "data_ops" {
  name                      = "data-ops"
  virtual_network_name      = azurerm_virtual_network.data.name
  remote_virtual_network_id = azurerm_virtual_network.ops.id
}
resource "azurerm_virtual_network_peering" "ops_data" {
  name                      = "ops-data"
  virtual_network_name      = azurerm_virtual_network.ops.name
  remote_virtual_network_id = azurerm_virtual_network.data.id
}
resource "azurerm_postgresql_flexible_server" "orders" {
  name                = "pg-orders"
  delegated_subnet_id = azurerm_subnet.db.id
}
resource "azurerm_network_security_group" "db" {
  name = "nsg-db"
  security_rule {
    name                       = "pg-from-vnet"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "5432"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "db" {
  subnet_id                 = azurerm_subnet.db.id
  network_security_group_id = azurerm_network_security_group.db.id
}
