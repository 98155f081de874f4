# Scale sets: one gives every instance a public IP behind an NSG that
# admits RDP from anywhere; the other has no public IP.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.60.0.0/16"]
}
resource "azurerm_subnet" "a" {
  name                 = "a"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.60.1.0/24"]
}
resource "azurerm_network_security_group" "rdp" {
  name = "rdp"
  security_rule {
    name                       = "rdp"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "3389"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_windows_virtual_machine_scale_set" "public" {
  name      = "public"
  sku       = "Standard_B2s"
  instances = 2
  network_interface {
    name                      = "nic"
    primary                   = true
    network_security_group_id = azurerm_network_security_group.rdp.id
    ip_configuration {
      name      = "ip"
      primary   = true
      subnet_id = azurerm_subnet.a.id
      public_ip_address {
        name = "pip"
      }
    }
  }
}
resource "azurerm_linux_virtual_machine_scale_set" "private" {
  name      = "private"
  sku       = "Standard_B2s"
  instances = 2
  network_interface {
    name                      = "nic"
    primary                   = true
    network_security_group_id = azurerm_network_security_group.rdp.id
    ip_configuration {
      name      = "ip"
      primary   = true
      subnet_id = azurerm_subnet.a.id
    }
  }
}
