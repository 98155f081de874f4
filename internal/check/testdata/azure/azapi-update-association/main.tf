# An NSG written through AzAPI and put on an azurerm subnet by an
# azapi_update_resource of the subnet, as modules that keep the subnet's
# other settings do; the machine there has a Standard public IP, which
# admits only what an NSG allows.
resource "azurerm_virtual_network" "edge" {
  name                = "edge"
  location            = "norwayeast"
  resource_group_name = "edge"
  address_space       = ["10.60.0.0/16"]
}

resource "azurerm_subnet" "jump" {
  name                 = "jump"
  resource_group_name  = "edge"
  virtual_network_name = azurerm_virtual_network.edge.name
  address_prefixes     = ["10.60.1.0/24"]
}

resource "azapi_resource" "jump" {
  type      = "Microsoft.Network/networkSecurityGroups@2024-05-01"
  name      = "jump"
  parent_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/edge"
  location  = "norwayeast"

  body = {
    properties = {
      securityRules = [
        {
          name = "ssh-anywhere"
          properties = {
            priority                 = 300
            direction                = "Inbound"
            access                   = "Allow"
            protocol                 = "Tcp"
            sourcePortRange          = "*"
            destinationPortRange     = "22"
            sourceAddressPrefix      = "*"
            destinationAddressPrefix = "*"
          }
        },
      ]
    }
  }
}

resource "azapi_update_resource" "jump_nsg" {
  type        = "Microsoft.Network/virtualNetworks/subnets@2024-05-01"
  resource_id = azurerm_subnet.jump.id

  body = {
    properties = {
      networkSecurityGroup = {
        id = azapi_resource.jump.id
      }
    }
  }
}

resource "azurerm_public_ip" "jump" {
  name                = "jump"
  location            = "norwayeast"
  resource_group_name = "edge"
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_network_interface" "jump" {
  name                = "jump"
  location            = "norwayeast"
  resource_group_name = "edge"

  ip_configuration {
    name                          = "jump"
    subnet_id                     = azurerm_subnet.jump.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.jump.id
  }
}

resource "azurerm_linux_virtual_machine" "jump" {
  name                  = "jump"
  location              = "norwayeast"
  resource_group_name   = "edge"
  size                  = "Standard_B2s"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.jump.id]

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
}
