# Subnets made by a count that is not known statically: the interface and
# the scale set name one of them by index, which is one of those subnets
# (behind their NSG, which admits HTTPS alone), not a subnet outside the
# code without an NSG.
variable "tiers" {
  type = list(string)
}

resource "azurerm_virtual_network" "app" {
  name                = "app"
  location            = "northeurope"
  resource_group_name = "app"
  address_space       = ["10.40.0.0/16"]
}

resource "azurerm_subnet" "tier" {
  count                = length(var.tiers)
  name                 = "tier-${count.index}"
  resource_group_name  = "app"
  virtual_network_name = azurerm_virtual_network.app.name
  address_prefixes     = [cidrsubnet("10.40.0.0/16", 8, count.index)]
}

resource "azurerm_network_security_group" "tier" {
  name                = "tier"
  location            = "northeurope"
  resource_group_name = "app"

  security_rule {
    name                       = "https"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "tier" {
  count                     = length(azurerm_subnet.tier)
  subnet_id                 = azurerm_subnet.tier[count.index].id
  network_security_group_id = azurerm_network_security_group.tier.id
}

locals {
  tier_ids = azurerm_subnet.tier[*].id
}

resource "azurerm_public_ip" "web" {
  name                = "web"
  location            = "northeurope"
  resource_group_name = "app"
  allocation_method   = "Static"
  sku                 = "Basic"
}

resource "azurerm_network_interface" "web" {
  name                = "web"
  location            = "northeurope"
  resource_group_name = "app"

  ip_configuration {
    name                          = "primary"
    subnet_id                     = local.tier_ids[0]
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.web.id
  }
}

resource "azurerm_linux_virtual_machine" "web" {
  name                  = "web"
  location              = "northeurope"
  resource_group_name   = "app"
  size                  = "Standard_B2s"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.web.id]

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
}

resource "azurerm_linux_virtual_machine_scale_set" "workers" {
  name                = "workers"
  location            = "northeurope"
  resource_group_name = "app"
  sku                 = "Standard_B2s"
  instances           = 2
  admin_username      = "ops"

  network_interface {
    name    = "workers"
    primary = true

    ip_configuration {
      name      = "primary"
      primary   = true
      subnet_id = azurerm_subnet.tier[1].id

      public_ip_address {
        name = "workers"
      }
    }
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
}
