# An NSG put on a subnet the code looks up, made elsewhere: it guards
# whatever runs there, so its rule admitting SSH from anywhere is an NSG
# in use, not one nothing associates.
data "azurerm_subnet" "ops" {
  name                 = "ops"
  virtual_network_name = "shared"
  resource_group_name  = "network"
}

resource "azurerm_network_security_group" "ops" {
  name                = "ops"
  location            = "polandcentral"
  resource_group_name = "ops"

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

resource "azurerm_subnet_network_security_group_association" "ops" {
  subnet_id                 = data.azurerm_subnet.ops.id
  network_security_group_id = azurerm_network_security_group.ops.id
}
