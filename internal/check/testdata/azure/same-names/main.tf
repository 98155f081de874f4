# The resource group, the network, the subnet and the NSG share one name;
# the rule and the subnet name their NSG and network by it, as a string
# rather than a reference.
locals {
  name = "shop"
}
resource "azurerm_resource_group" "shop" {
  name     = local.name
  location = "westeurope"
}
resource "azurerm_subnet" "shop" {
  name                 = local.name
  resource_group_name  = azurerm_resource_group.shop.name
  virtual_network_name = local.name
  address_prefixes     = ["10.50.1.0/24"]
}
resource "azurerm_virtual_network" "shop" {
  name                = local.name
  resource_group_name = azurerm_resource_group.shop.name
  address_space       = ["10.50.0.0/16"]
}
resource "azurerm_network_security_group" "shop" {
  name                = local.name
  resource_group_name = azurerm_resource_group.shop.name
}
resource "azurerm_network_security_rule" "ssh" {
  name                        = "ssh"
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "22"
  source_address_prefix       = "Internet"
  destination_address_prefix  = "*"
  resource_group_name         = azurerm_resource_group.shop.name
  network_security_group_name = local.name
}
resource "azurerm_subnet_network_security_group_association" "shop" {
  subnet_id                 = azurerm_subnet.shop.id
  network_security_group_id = azurerm_network_security_group.shop.id
}
resource "azurerm_public_ip" "vm" {
  name              = local.name
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_network_interface" "vm" {
  name = local.name
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.shop.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.vm.id
  }
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = local.name
  network_interface_ids = [azurerm_network_interface.vm.id]
}
