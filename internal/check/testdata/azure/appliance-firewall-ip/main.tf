# A spoke's route sends the other spoke's range to the hub's firewall by
# its private address, which the provider assigns when the firewall is
# created: the route names the firewall it is taken from.
resource "azurerm_virtual_network" "hub" {
  name          = "vnet-hub"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "firewall" {
  name                 = "AzureFirewallSubnet"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.1.0/26"]
}
resource "azurerm_firewall" "hub" {
  name     = "fw-hub"
  sku_name = "AZFW_VNet"
  sku_tier = "Standard"
  ip_configuration {
    name      = "ipconfig"
    subnet_id = azurerm_subnet.firewall.id
  }
}
resource "azurerm_route_table" "left" {
  name = "rt-left"
  route {
    name                   = "to-right"
    address_prefix         = "10.2.0.0/16"
    next_hop_type          = "VirtualAppliance"
    next_hop_in_ip_address = azurerm_firewall.hub.ip_configuration[0].private_ip_address
  }
}
