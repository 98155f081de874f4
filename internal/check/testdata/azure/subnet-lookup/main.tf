# Subnets written inside their virtual networks, each with its NSG, and a
# machine whose interface finds its subnet by a data lookup of its name:
# the lookup is that subnet, so the spoke's NSG, which admits SSH from the
# VirtualNetwork tag, lets the peered hub in. The spoke subnet's service
# endpoints are not known statically; its name, and so its ID, are.
variable "service_endpoints" {
  type = list(string)
}
resource "azurerm_virtual_network" "hub" {
  name          = "vnet-hub"
  address_space = ["10.5.0.0/24"]
  subnet {
    name           = "snet-hub"
    address_prefix = "10.5.0.0/25"
    security_group = azurerm_network_security_group.hub.id
  }
}
resource "azurerm_virtual_network" "spoke" {
  name          = "vnet-spoke"
  address_space = ["10.20.0.0/24"]
  subnet {
    name           = "snet-vm"
    address_prefix    = "10.20.0.0/25"
    security_group    = azurerm_network_security_group.spoke.id
    service_endpoints = var.service_endpoints
  }
}
resource "azurerm_network_security_group" "hub" {
  name = "hub"
}
resource "azurerm_network_security_group" "spoke" {
  name = "spoke"
  security_rule {
    name                       = "ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "deny"
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
resource "azurerm_virtual_network_peering" "hub_spoke" {
  name                      = "hub-spoke"
  virtual_network_name      = azurerm_virtual_network.hub.name
  remote_virtual_network_id = azurerm_virtual_network.spoke.id
}
resource "azurerm_virtual_network_peering" "spoke_hub" {
  name                      = "spoke-hub"
  virtual_network_name      = azurerm_virtual_network.spoke.name
  remote_virtual_network_id = azurerm_virtual_network.hub.id
}
data "azurerm_subnet" "vm" {
  name                 = "snet-vm"
  virtual_network_name = azurerm_virtual_network.spoke.name
}
resource "azurerm_network_interface" "vm" {
  name = "vm"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = data.azurerm_subnet.vm.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  network_interface_ids = [azurerm_network_interface.vm.id]
}
