# The hub and spokes of appliance-vnet-tag, the spokes' subnets written
# through the AzAPI provider, each naming its route table in its body: the
# left spoke's routes the right spoke through the hub's firewall, the right
# spoke's routes the left back, its NSG admitting VirtualNetwork on 5432.
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
resource "azapi_resource" "app" {
  type      = "Microsoft.Network/virtualNetworks/subnets@2023-11-01"
  name      = "snet-app"
  parent_id = azurerm_virtual_network.left.id
  body = {
    properties = {
      addressPrefix = "10.1.1.0/24"
      routeTable    = { id = azurerm_route_table.app.id }
    }
  }
}
resource "azapi_resource" "db" {
  type      = "Microsoft.Network/virtualNetworks/subnets@2023-11-01"
  name      = "snet-db"
  parent_id = azurerm_virtual_network.right.id
  body = {
    properties = {
      addressPrefix        = "10.2.1.0/24"
      routeTable           = { id = azurerm_route_table.db.id }
      networkSecurityGroup = { id = azurerm_network_security_group.db.id }
    }
  }
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
resource "azurerm_postgresql_flexible_server" "orders" {
  name                = "pg-orders"
  delegated_subnet_id = azapi_resource.db.id
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
  security_rule {
    name                       = "deny-rest"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
