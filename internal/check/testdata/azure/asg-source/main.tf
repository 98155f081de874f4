# The database subnet admits PostgreSQL from the web tier's application
# security group alone and turns everything else away, the VirtualNetwork
# default too. The web tier's machines are in the web subnet.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.40.0.0/16"]
}
resource "azurerm_subnet" "web" {
  name                 = "web"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.40.1.0/24"]
}
resource "azurerm_subnet" "db" {
  name                 = "db"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.40.2.0/24"]
}
resource "azurerm_application_security_group" "web" {
  name = "web"
}
resource "azurerm_network_interface" "web" {
  name = "web"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface_application_security_group_association" "web" {
  network_interface_id          = azurerm_network_interface.web.id
  application_security_group_id = azurerm_application_security_group.web.id
}
resource "azurerm_network_interface" "db" {
  name = "db"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.db.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_security_group" "db" {
  name = "db"
  security_rule {
    name                                  = "postgres-from-web"
    priority                              = 100
    direction                             = "Inbound"
    access                                = "Allow"
    protocol                              = "Tcp"
    source_port_range                     = "*"
    destination_port_range                = "5432"
    source_application_security_group_ids = [azurerm_application_security_group.web.id]
    destination_address_prefix            = "*"
  }
  security_rule {
    name                       = "deny-rest"
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
resource "azurerm_subnet_network_security_group_association" "db" {
  subnet_id                 = azurerm_subnet.db.id
  network_security_group_id = azurerm_network_security_group.db.id
}
resource "azurerm_linux_virtual_machine" "db" {
  name                  = "db"
  network_interface_ids = [azurerm_network_interface.db.id]
}
resource "azurerm_linux_virtual_machine" "web" {
  name                  = "web"
  network_interface_ids = [azurerm_network_interface.web.id]
}
