# A Standard Bastion on a public IP hands out shareable links: whoever
# holds one reaches the machines' login without signing in to Azure.
resource "azurerm_virtual_network" "ops" {
  name          = "ops"
  address_space = ["10.70.0.0/16"]
}

resource "azurerm_subnet" "bastion" {
  name                 = "AzureBastionSubnet"
  virtual_network_name = azurerm_virtual_network.ops.name
  address_prefixes     = ["10.70.1.0/26"]
}

resource "azurerm_public_ip" "bastion" {
  name              = "bastion"
  allocation_method = "Static"
  sku               = "Standard"
}

resource "azurerm_bastion_host" "ops" {
  name                   = "ops"
  sku                    = "Standard"
  shareable_link_enabled = true

  ip_configuration {
    name                 = "ipc"
    subnet_id            = azurerm_subnet.bastion.id
    public_ip_address_id = azurerm_public_ip.bastion.id
  }
}
