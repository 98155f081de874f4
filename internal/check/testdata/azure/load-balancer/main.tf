# Two machines without public IPs behind a Basic public load balancer:
# both in the backend pool of a rule for 80, the first also the target of
# an inbound NAT rule from 50001 to SSH. No NSG stands in the way.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.90.0.0/16"]
}
resource "azurerm_subnet" "web" {
  name                 = "web"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.90.1.0/24"]
}
resource "azurerm_public_ip" "lb" {
  name              = "lb"
  allocation_method = "Static"
  sku               = "Basic"
}
resource "azurerm_lb" "web" {
  name = "web"
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.lb.id
  }
}
resource "azurerm_lb_backend_address_pool" "web" {
  name            = "web"
  loadbalancer_id = azurerm_lb.web.id
}
resource "azurerm_lb_rule" "http" {
  name                           = "http"
  loadbalancer_id                = azurerm_lb.web.id
  protocol                       = "Tcp"
  frontend_port                  = 80
  backend_port                   = 80
  frontend_ip_configuration_name = "public"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.web.id]
}
resource "azurerm_lb_nat_rule" "ssh" {
  name                           = "ssh"
  loadbalancer_id                = azurerm_lb.web.id
  protocol                       = "Tcp"
  frontend_port                  = 50001
  backend_port                   = 22
  frontend_ip_configuration_name = "public"
}
resource "azurerm_network_interface" "vm" {
  count = 2
  name  = "vm-${count.index}"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface_backend_address_pool_association" "vm" {
  count                   = 2
  network_interface_id    = azurerm_network_interface.vm[count.index].id
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.web.id
}
resource "azurerm_network_interface_nat_rule_association" "ssh" {
  network_interface_id  = azurerm_network_interface.vm[0].id
  ip_configuration_name = "ip"
  nat_rule_id           = azurerm_lb_nat_rule.ssh.id
}
resource "azurerm_linux_virtual_machine" "vm" {
  count                 = 2
  name                  = "vm-${count.index}"
  network_interface_ids = [azurerm_network_interface.vm[count.index].id]
}
