# azurerm 1.x attributes: a subnet's single address_prefix, and NSGs
# associated inside the subnet and the network interface. The subnet's
# NSG denies SSH from the internet before the interface's NSG allows it.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.20.0.0/16"]
}
resource "azurerm_network_security_group" "edge" {
  name = "edge"
  security_rule {
    name                       = "no-ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_security_group" "host" {
  name = "host"
  security_rule {
    name                       = "admin"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["22", "3389"]
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet" "front" {
  name                      = "front"
  virtual_network_name      = azurerm_virtual_network.net.name
  address_prefix            = "10.20.1.0/24"
  network_security_group_id = azurerm_network_security_group.edge.id
}
resource "azurerm_public_ip" "host" {
  name              = "host"
  allocation_method = "Dynamic"
}
resource "azurerm_network_interface" "host" {
  name                      = "host"
  network_security_group_id = azurerm_network_security_group.host.id
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.front.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.host.id
  }
}
resource "azurerm_virtual_machine" "host" {
  name                  = "host"
  network_interface_ids = [azurerm_network_interface.host.id]
  vm_size               = "Standard_B1s"
}
resource "azurerm_network_watcher_flow_log" "edge" {
  network_security_group_id = azurerm_network_security_group.edge.id
  enabled                   = false
}
