# Two spokes peered to a hub, whose firewall forwards between them: each
# spoke's subnet sends the other spoke's range to the firewall's private
# address (next hop VirtualAppliance), one by a route written inside its
# table, the other by a route of its own.
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
resource "azurerm_route_table" "left" {
  name = "rt-left"
  route {
    name                   = "to-right"
    address_prefix         = "10.2.0.0/16"
    next_hop_type          = "VirtualAppliance"
    next_hop_in_ip_address = "10.0.1.4"
  }
}
resource "azurerm_route_table" "right" {
  name = "rt-right"
}
resource "azurerm_route" "to_left" {
  name                   = "to-left"
  route_table_name       = azurerm_route_table.right.name
  address_prefix         = "10.1.0.0/16"
  next_hop_type          = "VirtualAppliance"
  next_hop_in_ip_address = "10.0.1.4"
}
