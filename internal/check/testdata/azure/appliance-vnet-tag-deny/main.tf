# The hub and spokes of appliance-vnet-tag, with one NSG guarding two
# subnets of the right spoke: the database's, whose route table sends the
# left spoke's range through the hub's firewall, and another without one.
# The NSG denies VirtualNetwork on 5432 before allowing everyone: the tag
# holds the left spoke's range only where the NSG meets the database's
# subnet, so the deny is read without it (it may deny nothing more there).
resource "azurerm_virtual_network" "hub" {
  name          = "vnet-hub"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_virtual_network" "left" {
  name          = "vnet-left"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_virtual_network" "right" {
  name          = "vnet-right"
  address_space = ["10.2.0.0/16"]
}
resource "azurerm_subnet" "firewall" {
  name                 = "AzureFirewallSubnet"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.1.0/26"]
}
resource "azurerm_subnet" "app" {
  name                 = "snet-app"
  virtual_network_name = azurerm_virtual_network.left.name
  address_prefixes     = ["10.1.1.0/24"]
}
resource "azurerm_subnet" "db" {
  name                 = "snet-db"
  virtual_network_name = azurerm_virtual_network.right.name
  address_prefixes     = ["10.2.1.0/24"]
}
resource "azurerm_virtual_network_peering" "hub_left" {
  name                      = "hub-left"
  virtual_network_name      = azurerm_virtual_network.hub.name
  remote_virtual_network_id = azurerm_virtual_network.left.id
}
resource "azurerm_virtual_network_peering" "left_hub" {
  name                      = "left-hub"
  virtual_network_name      = azurerm_virtual_network.left.name
  remote_virtual_network_id = azurerm_virtual_network.hub.id
}
resource "azurerm_virtual_network_peering" "hub_right" {
  name                      = "hub-right"
  virtual_network_name      = azurerm_virtual_network.hub.name
  remote_virtual_network_id = azurerm_virtual_network.right.id
}
resource "azurerm_virtual_network_peering" "right_hub" {
  name                         = "right-hub"
  virtual_network_name         = azurerm_virtual_network.right.name
  remote_virtual_network_id    = azurerm_virtual_network.hub.id
  allow_forwarded_traffic      = true
}
resource "azurerm_route_table" "app" {
  name = "rt-app"
  route {
    name                   = "to-right"
    address_prefix         = "10.2.0.0/16"
    next_hop_type          = "VirtualAppliance"
    next_hop_in_ip_address = "10.0.1.4"
  }
}
resource "azurerm_subnet_route_table_association" "app" {
  subnet_id      = azurerm_subnet.app.id
  route_table_id = azurerm_route_table.app.id
}
resource "azurerm_postgresql_flexible_server" "orders" {
  name                = "pg-orders"
  delegated_subnet_id = azurerm_subnet.db.id
}
resource "azurerm_route_table" "db" {
  name = "rt-db"
  route {
    name                   = "to-left"
    address_prefix         = "10.1.0.0/16"
    next_hop_type          = "VirtualAppliance"
    next_hop_in_ip_address = "10.0.1.4"
  }
}
resource "azurerm_subnet_route_table_association" "db" {
  subnet_id      = azurerm_subnet.db.id
  route_table_id = azurerm_route_table.db.id
}
resource "azurerm_subnet" "batch" {
  name                 = "snet-batch"
  virtual_network_name = azurerm_virtual_network.right.name
  address_prefixes     = ["10.2.2.0/24"]
}
resource "azurerm_network_security_group" "db" {
  name = "nsg-db"
  security_rule {
    name                       = "no-pg-from-vnet"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "5432"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "pg"
    priority                   = 200
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "5432"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "db" {
  subnet_id                 = azurerm_subnet.db.id
  network_security_group_id = azurerm_network_security_group.db.id
}
resource "azurerm_subnet_network_security_group_association" "batch" {
  subnet_id                 = azurerm_subnet.batch.id
  network_security_group_id = azurerm_network_security_group.db.id
}
