# A subnet whose route table sends every address (0.0.0.0/0) to a firewall,
# guarded by an NSG of default rules only. moat check leaves the default
# route out of the NSG's VirtualNetwork tag: AllowVnetInBound does not
# admit the internet.
resource "azurerm_virtual_network" "main" {
  name          = "vnet"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_subnet" "app" {
  name                 = "snet-app"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.1.1.0/24"]
}
resource "azurerm_route_table" "app" {
  name = "rt"
  route {
    name                   = "default"
    address_prefix         = "0.0.0.0/0"
    next_hop_type          = "VirtualAppliance"
    next_hop_in_ip_address = "10.0.1.4"
  }
}
resource "azurerm_subnet_route_table_association" "app" {
  subnet_id      = azurerm_subnet.app.id
  route_table_id = azurerm_route_table.app.id
}
resource "azurerm_network_security_group" "app" {
  name = "nsg"
}
resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}
