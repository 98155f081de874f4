# Two machines with public IPs and no NSG anywhere: the Standard SKU
# address admits nothing from the internet, the Basic one everything.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.40.0.0/16"]
}
resource "azurerm_subnet" "a" {
  name                 = "a"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.40.1.0/24"]
}
resource "azurerm_public_ip" "standard" {
  name              = "standard"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_public_ip" "basic" {
  name              = "basic"
  allocation_method = "Dynamic"
  sku               = "Basic"
}
resource "azurerm_network_interface" "standard" {
  name = "standard"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.standard.id
  }
}
resource "azurerm_network_interface" "basic" {
  name = "basic"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.a.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.basic.id
  }
}
resource "azurerm_linux_virtual_machine" "standard" {
  name                  = "standard"
  network_interface_ids = [azurerm_network_interface.standard.id]
}
resource "azurerm_linux_virtual_machine" "basic" {
  name                  = "basic"
  network_interface_ids = [azurerm_network_interface.basic.id]
}
