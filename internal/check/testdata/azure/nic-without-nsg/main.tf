# Two interfaces: the public one has no NSG, the private one a strict NSG.
# The strict NSG does not filter what reaches the public interface.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.30.0.0/16"]
}
resource "azurerm_subnet" "a" {
  name                 = "a"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.30.1.0/24"]
}
resource "azurerm_public_ip" "vm" {
  name              = "vm"
  allocation_method = "Static"
  sku               = "Basic"
}
resource "azurerm_network_interface" "public" {
  name = "public"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.vm.id
  }
}
resource "azurerm_network_interface" "private" {
  name = "private"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_security_group" "strict" {
  name = "strict"
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
resource "azurerm_network_interface_security_group_association" "private" {
  network_interface_id      = azurerm_network_interface.private.id
  network_security_group_id = azurerm_network_security_group.strict.id
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  network_interface_ids = [azurerm_network_interface.private.id, azurerm_network_interface.public.id]
}
