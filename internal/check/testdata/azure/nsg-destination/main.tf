# One subnet NSG admitting SSH from the internet to the bastion's address
# alone. The bastion (static 10.0.1.10) is reached; the app (static
# 10.0.1.20) is not; the worker, whose address Azure assigns, may be the
# bastion's for all the code says, and is read as reached.
resource "azurerm_virtual_network" "main" {
  name          = "vnet"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "vms" {
  name                 = "vms"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.0.1.0/24"]
}
resource "azurerm_network_security_group" "vms" {
  name = "nsg-vms"
  security_rule {
    name                       = "ssh-to-bastion"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "Internet"
    destination_address_prefix = "10.0.1.10"
  }
}
resource "azurerm_subnet_network_security_group_association" "vms" {
  subnet_id                 = azurerm_subnet.vms.id
  network_security_group_id = azurerm_network_security_group.vms.id
}
resource "azurerm_public_ip" "bastion" {
  name              = "pip-bastion"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_public_ip" "app" {
  name              = "pip-app"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_public_ip" "worker" {
  name              = "pip-worker"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_network_interface" "bastion" {
  name = "nic-bastion"
  ip_configuration {
    name                          = "ipc"
    subnet_id                     = azurerm_subnet.vms.id
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.0.1.10"
    public_ip_address_id          = azurerm_public_ip.bastion.id
  }
}
resource "azurerm_network_interface" "app" {
  name = "nic-app"
  ip_configuration {
    name                          = "ipc"
    subnet_id                     = azurerm_subnet.vms.id
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.0.1.20"
    public_ip_address_id          = azurerm_public_ip.app.id
  }
}
resource "azurerm_network_interface" "worker" {
  name = "nic-worker"
  ip_configuration {
    name                          = "ipc"
    subnet_id                     = azurerm_subnet.vms.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.worker.id
  }
}
resource "azurerm_linux_virtual_machine" "bastion" {
  name                  = "bastion"
  network_interface_ids = [azurerm_network_interface.bastion.id]
}
resource "azurerm_linux_virtual_machine" "app" {
  name                  = "app"
  network_interface_ids = [azurerm_network_interface.app.id]
}
resource "azurerm_linux_virtual_machine" "worker" {
  name                  = "worker"
  network_interface_ids = [azurerm_network_interface.worker.id]
}
