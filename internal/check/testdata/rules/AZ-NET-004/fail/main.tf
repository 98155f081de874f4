# Prod's NSG allows SSH from VirtualNetwork, which includes the whole peered dev network.
resource "azurerm_virtual_network" "prod" {
  name                = "vnet-prod"
  address_space       = ["10.0.0.0/16"]
  location            = "westeurope"
  resource_group_name = "rg"
}

resource "azurerm_subnet" "app" {
  name                 = "snet-app"
  resource_group_name  = "rg"
  virtual_network_name = azurerm_virtual_network.prod.name
  address_prefixes     = ["10.0.1.0/24"]
}

resource "azurerm_virtual_network" "dev" {
  name                = "vnet-dev"
  address_space       = ["10.9.0.0/16"]
  location            = "westeurope"
  resource_group_name = "rg"
}

resource "azurerm_virtual_network_peering" "prod_dev" {
  name                      = "prod-to-dev"
  resource_group_name       = "rg"
  virtual_network_name      = azurerm_virtual_network.prod.name
  remote_virtual_network_id = azurerm_virtual_network.dev.id
}

resource "azurerm_virtual_network_peering" "dev_prod" {
  name                      = "dev-to-prod"
  resource_group_name       = "rg"
  virtual_network_name      = azurerm_virtual_network.dev.name
  remote_virtual_network_id = azurerm_virtual_network.prod.id
}

resource "azurerm_network_security_group" "app" {
  name                = "nsg-app"
  location            = "westeurope"
  resource_group_name = "rg"

  security_rule {
    name                       = "in"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "22"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}

resource "azurerm_network_watcher_flow_log" "app" {
  name                      = "fl-app"
  network_watcher_name      = "nw"
  resource_group_name       = "rg"
  network_security_group_id = azurerm_network_security_group.app.id
  storage_account_id        = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/flowlogs"
  enabled                   = true
  retention_policy {
    enabled = true
    days    = 90
  }
}

resource "azurerm_network_interface" "vm" {
  name                = "nic-vm"
  location            = "westeurope"
  resource_group_name = "rg"
  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "vm-app"
  location              = "westeurope"
  resource_group_name   = "rg"
  size                  = "Standard_B1s"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.vm.id]
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
  }
}
