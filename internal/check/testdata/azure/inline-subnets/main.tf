# Subnets written inside the virtual network, each naming its NSG; the
# interfaces pick their subnet from the network's subnet blocks by name.
resource "azurerm_network_security_group" "web" {
  name = "web"
  security_rule {
    name                       = "https"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_security_group" "admin" {
  name = "admin"
  security_rule {
    name                       = "ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.110.0.0/16"]
  subnet {
    name           = "web"
    address_prefix = "10.110.1.0/24"
    security_group = azurerm_network_security_group.web.id
  }
  subnet {
    name           = "admin"
    address_prefix = "10.110.2.0/24"
    security_group = azurerm_network_security_group.admin.id
  }
}
locals {
  subnet_ids = { for s in azurerm_virtual_network.net.subnet : s.name => s.id }
}
resource "azurerm_public_ip" "web" {
  name              = "web"
  allocation_method = "Static"
}
resource "azurerm_public_ip" "jump" {
  name              = "jump"
  allocation_method = "Static"
}
resource "azurerm_network_interface" "web" {
  name = "web"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = local.subnet_ids["web"]
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.web.id
  }
}
resource "azurerm_network_interface" "jump" {
  name = "jump"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = local.subnet_ids["admin"]
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.jump.id
  }
}
resource "azurerm_linux_virtual_machine" "web" {
  name                  = "web"
  network_interface_ids = [azurerm_network_interface.web.id]
}
resource "azurerm_linux_virtual_machine" "jump" {
  name                  = "jump"
  network_interface_ids = [azurerm_network_interface.jump.id]
}
