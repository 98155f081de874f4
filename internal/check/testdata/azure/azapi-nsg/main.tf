# NSGs written through the AzAPI provider. "jump" admits RDP from every
# address and is associated with the subnet of a machine on a public IP;
# "legacy" is written as azapi 1.x wrote bodies (jsonencode) and admits
# SSH from every address, associated with nothing; "dynamic" takes its
# rules from a variable without a value.
variable "extra_rules" {
  type = any
}
resource "azapi_resource" "jump" {
  type      = "Microsoft.Network/networkSecurityGroups@2024-05-01"
  name      = "jump"
  parent_id = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/hop"
  location  = "swedencentral"
  body = {
    properties = {
      securityRules = [
        {
          name = "deny-telnet"
          properties = {
            priority                 = 90
            direction                = "Inbound"
            access                   = "Deny"
            protocol                 = "Tcp"
            sourceAddressPrefix      = "*"
            sourcePortRange          = "*"
            destinationAddressPrefix = "*"
            destinationPortRange     = "23"
          }
        },
        {
          name = "desktop"
          properties = {
            priority                 = 110
            direction                = "Inbound"
            access                   = "Allow"
            protocol                 = "Tcp"
            sourceAddressPrefix      = "*"
            sourcePortRange          = "*"
            destinationAddressPrefix = "*"
            destinationPortRanges    = ["3389"]
          }
        },
      ]
    }
  }
}
resource "azapi_resource" "legacy" {
  type      = "Microsoft.Network/networkSecurityGroups@2022-07-01"
  name      = "legacy"
  parent_id = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/hop"
  location  = "swedencentral"
  body = jsonencode({
    properties = {
      securityRules = [{
        name = "shell"
        properties = {
          priority                 = 200
          direction                = "Inbound"
          access                   = "Allow"
          protocol                 = "Tcp"
          sourceAddressPrefixes    = ["0.0.0.0/0"]
          sourcePortRange          = "*"
          destinationAddressPrefix = "*"
          destinationPortRange     = "22"
        }
      }]
    }
  })
}
resource "azapi_resource" "dynamic" {
  type      = "Microsoft.Network/networkSecurityGroups@2024-05-01"
  name      = "dynamic"
  parent_id = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/hop"
  location  = "swedencentral"
  body = {
    properties = {
      securityRules = var.extra_rules
    }
  }
}
resource "azurerm_virtual_network" "hop" {
  name          = "hop"
  address_space = ["10.44.0.0/16"]
}
resource "azurerm_subnet" "hop" {
  name                 = "hop"
  virtual_network_name = azurerm_virtual_network.hop.name
  address_prefixes     = ["10.44.1.0/24"]
}
resource "azurerm_subnet_network_security_group_association" "hop" {
  subnet_id                 = azurerm_subnet.hop.id
  network_security_group_id = azapi_resource.jump.id
}
resource "azurerm_public_ip" "hop" {
  name              = "hop"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_network_interface" "hop" {
  name = "hop"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.hop.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.hop.id
  }
}
resource "azurerm_windows_virtual_machine" "hop" {
  name                  = "hop"
  network_interface_ids = [azurerm_network_interface.hop.id]
}
