# A jump host with a public IP in a subnet the project reads from a data
# source: only its interface's NSG, which admits SSH from anywhere, is
# known to stand in the way.
data "azurerm_subnet" "shared" {
  name                 = "shared"
  virtual_network_name = "hub"
  resource_group_name  = "network"
}
resource "azurerm_public_ip" "jump" {
  name              = "jump"
  allocation_method = "Static"
}
resource "azurerm_network_interface" "jump" {
  name = "jump"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = data.azurerm_subnet.shared.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.jump.id
  }
}
resource "azurerm_network_security_group" "jump" {
  name = "jump"
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
resource "azurerm_network_interface_security_group_association" "jump" {
  network_interface_id      = azurerm_network_interface.jump.id
  network_security_group_id = azurerm_network_security_group.jump.id
}
resource "azurerm_linux_virtual_machine" "jump" {
  name                  = "jump"
  network_interface_ids = [azurerm_network_interface.jump.id]
}
