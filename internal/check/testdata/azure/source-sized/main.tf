# A machine with a public IP whose NSG admits SSH from each address of a
# list given by a variable without a value, written "${address}/32": one
# address each, wherever they are. Its neighbour's NSG admits RDP from a
# prefix given whole by a variable, which may be any range.
variable "allowed_source_ips" {
  type = list(string)
}
variable "admin_prefix" {
  type = string
}
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.41.0.0/16"]
}
resource "azurerm_subnet" "a" {
  name                 = "a"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.41.1.0/24"]
}
resource "azurerm_public_ip" "jump" {
  name              = "jump"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_public_ip" "win" {
  name              = "win"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_network_security_group" "jump" {
  name = "jump"
  dynamic "security_rule" {
    for_each = var.allowed_source_ips
    content {
      name                       = "ssh-${security_rule.key}"
      priority                   = 100 + security_rule.key
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_address_prefix      = "${security_rule.value}/32"
      source_port_range          = "*"
      destination_port_range     = "22"
      destination_address_prefix = "*"
    }
  }
}
resource "azurerm_network_security_group" "win" {
  name = "win"
  security_rule {
    name                       = "rdp"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = var.admin_prefix
    source_port_range          = "*"
    destination_port_range     = "3389"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_interface" "jump" {
  name = "jump"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.jump.id
  }
}
resource "azurerm_network_interface" "win" {
  name = "win"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.win.id
  }
}
resource "azurerm_network_interface_security_group_association" "jump" {
  network_interface_id      = azurerm_network_interface.jump.id
  network_security_group_id = azurerm_network_security_group.jump.id
}
resource "azurerm_network_interface_security_group_association" "win" {
  network_interface_id      = azurerm_network_interface.win.id
  network_security_group_id = azurerm_network_security_group.win.id
}
resource "azurerm_linux_virtual_machine" "jump" {
  name                  = "jump"
  network_interface_ids = [azurerm_network_interface.jump.id]
}
resource "azurerm_windows_virtual_machine" "win" {
  name                  = "win"
  network_interface_ids = [azurerm_network_interface.win.id]
}
