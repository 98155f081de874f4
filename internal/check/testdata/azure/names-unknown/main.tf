# Every name is made from a variable given at apply time (no default, no
# tfvars), as the quickstarts that name things "${var.prefix}-..." or with
# random_pet do. The subnet still belongs to the network its
# virtual_network_name refers to, and the rule to the NSG its
# network_security_group_name refers to.
variable "prefix" {}

resource "azurerm_virtual_network" "app" {
  name          = "${var.prefix}-vnet"
  address_space = ["10.40.0.0/16"]
}
resource "azurerm_subnet" "app" {
  name                 = "${var.prefix}-app"
  virtual_network_name = azurerm_virtual_network.app.name
  address_prefixes     = ["10.40.1.0/24"]
}
resource "azurerm_network_security_group" "app" {
  name = "${var.prefix}-nsg"
}
resource "azurerm_network_security_rule" "ssh" {
  name                        = "ssh"
  priority                    = 100
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "22"
  source_address_prefix       = "*"
  destination_address_prefix  = "*"
  network_security_group_name = azurerm_network_security_group.app.name
}
resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}
resource "azurerm_public_ip" "vm" {
  name              = "${var.prefix}-ip"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_network_interface" "vm" {
  name = "${var.prefix}-nic"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.vm.id
  }
}
resource "azurerm_linux_virtual_machine" "vm" {
  name                  = "${var.prefix}-vm"
  network_interface_ids = [azurerm_network_interface.vm.id]
}
