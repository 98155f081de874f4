resource "azurerm_public_ip" "jump" {
  name                = "pip-jump"
  location            = azurerm_resource_group.net.location
  resource_group_name = azurerm_resource_group.net.name
  allocation_method   = "Static"
}

resource "azurerm_network_interface" "vm" {
  for_each            = local.vnets
  name                = "nic-${each.key}"
  location            = azurerm_resource_group.net.location
  resource_group_name = azurerm_resource_group.net.name
  ip_configuration {
    name                          = "primary"
    subnet_id                     = azurerm_subnet.workload[each.key].id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = each.key == "hub" ? azurerm_public_ip.jump.id : null
  }
}

resource "azurerm_linux_virtual_machine" "vm" {
  for_each              = local.vnets
  name                  = "vm-${each.key}"
  location              = azurerm_resource_group.net.location
  resource_group_name   = azurerm_resource_group.net.name
  size                  = "Standard_B1s"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.vm[each.key].id]
  admin_ssh_key {
    username   = "ops"
    public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH0 ops"
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
  }
  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
    version   = "latest"
  }
}
