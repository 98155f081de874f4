# A virtual network and its subnet written through the AzAPI provider; the
# subnet names an NSG that admits SSH from every address, and a machine on
# a public IP sits in it.
resource "azurerm_resource_group" "rg" {
  name     = "rg"
  location = "swedencentral"
}
resource "azapi_resource" "vnet" {
  type      = "Microsoft.Network/virtualNetworks@2023-11-01"
  name      = "vnet"
  parent_id = azurerm_resource_group.rg.id
  location  = "swedencentral"
  body = {
    properties = {
      addressSpace = { addressPrefixes = ["10.20.0.0/16"] }
    }
  }
}
resource "azurerm_network_security_group" "ssh" {
  name                = "ssh"
  location            = "swedencentral"
  resource_group_name = azurerm_resource_group.rg.name
  security_rule {
    name                       = "ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = "*"
    source_port_range          = "*"
    destination_address_prefix = "*"
    destination_port_range     = "22"
  }
}
resource "azapi_resource" "subnet" {
  type      = "Microsoft.Network/virtualNetworks/subnets@2023-11-01"
  name      = "app"
  parent_id = azapi_resource.vnet.id
  body = {
    properties = {
      addressPrefix        = "10.20.1.0/24"
      networkSecurityGroup = { id = azurerm_network_security_group.ssh.id }
    }
  }
}
resource "azurerm_public_ip" "vm" {
  name                = "vm"
  location            = "swedencentral"
  resource_group_name = azurerm_resource_group.rg.name
  allocation_method   = "Static"
  sku                 = "Standard"
}
resource "azurerm_network_interface" "vm" {
  name                = "vm"
  location            = "swedencentral"
  resource_group_name = azurerm_resource_group.rg.name
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azapi_resource.subnet.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.vm.id
  }
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm"
  location              = "swedencentral"
  resource_group_name   = azurerm_resource_group.rg.name
  size                  = "Standard_B1s"
  admin_username        = "azureuser"
  network_interface_ids = [azurerm_network_interface.vm.id]
  admin_ssh_key {
    username   = "azureuser"
    public_key = "ssh-ed25519 AAAA"
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
    version   = "latest"
  }
}
