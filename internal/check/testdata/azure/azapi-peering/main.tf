# Two virtual networks peered both ways, all written through the AzAPI
# provider; the machine in "data" admits SSH from VirtualNetwork, which
# holds the peered "app" network's space.
resource "azapi_resource" "app" {
  type      = "Microsoft.Network/virtualNetworks@2023-11-01"
  name      = "app"
  parent_id = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/net"
  location  = "swedencentral"
  body = {
    properties = {
      addressSpace = { addressPrefixes = ["10.1.0.0/16"] }
      subnets      = [{ name = "apps", properties = { addressPrefix = "10.1.1.0/24" } }]
    }
  }
}
resource "azapi_resource" "data" {
  type      = "Microsoft.Network/virtualNetworks@2023-11-01"
  name      = "data"
  parent_id = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/net"
  location  = "swedencentral"
  body = {
    properties = {
      addressSpace = { addressPrefixes = ["10.2.0.0/16"] }
    }
  }
}
resource "azapi_resource" "db" {
  type      = "Microsoft.Network/virtualNetworks/subnets@2023-11-01"
  name      = "db"
  parent_id = azapi_resource.data.id
  body = {
    properties = {
      addressPrefix        = "10.2.1.0/24"
      networkSecurityGroup = { id = azurerm_network_security_group.db.id }
    }
  }
}
resource "azapi_resource" "app_data" {
  type      = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings@2023-11-01"
  name      = "app-data"
  parent_id = azapi_resource.app.id
  body = {
    properties = {
      remoteVirtualNetwork      = { id = azapi_resource.data.id }
      allowVirtualNetworkAccess = true
    }
  }
}
resource "azapi_resource" "data_app" {
  type      = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings@2023-11-01"
  name      = "data-app"
  parent_id = azapi_resource.data.id
  body = {
    properties = {
      remoteVirtualNetwork = { id = azapi_resource.app.id }
    }
  }
}
resource "azurerm_network_security_group" "db" {
  name                = "db"
  location            = "swedencentral"
  resource_group_name = "net"
  security_rule {
    name                       = "ssh"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = "VirtualNetwork"
    source_port_range          = "*"
    destination_address_prefix = "*"
    destination_port_range     = "22"
  }
}
resource "azurerm_network_interface" "db" {
  name                = "db"
  location            = "swedencentral"
  resource_group_name = "net"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azapi_resource.db.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_linux_virtual_machine" "db" {
  name                  = "db"
  location              = "swedencentral"
  resource_group_name   = "net"
  size                  = "Standard_B1s"
  admin_username        = "azureuser"
  network_interface_ids = [azurerm_network_interface.db.id]
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
