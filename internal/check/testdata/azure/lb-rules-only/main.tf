# Two machines without public IPs behind a Basic public load balancer:
# "web" only in the backend pool of a rule for 80, "ops" only the target
# of an inbound NAT rule from 50080 to its port 443. Nothing stands in the
# way but the subnet's NSG, which admits the internet on 80 and 443.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.91.0.0/16"]
}
resource "azurerm_subnet" "web" {
  name                 = "web"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.91.1.0/24"]
}
resource "azurerm_network_security_group" "web" {
  name = "web"
  security_rule {
    name                       = "web"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["80", "443"]
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "web" {
  subnet_id                 = azurerm_subnet.web.id
  network_security_group_id = azurerm_network_security_group.web.id
}
resource "azurerm_public_ip" "lb" {
  name              = "lb"
  allocation_method = "Static"
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
resource "azurerm_lb_nat_rule" "ops" {
  name                           = "ops"
  loadbalancer_id                = azurerm_lb.web.id
  protocol                       = "Tcp"
  frontend_port                  = 50080
  backend_port                   = 443
  frontend_ip_configuration_name = "public"
}
resource "azurerm_network_interface" "web" {
  name = "web"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface" "ops" {
  name = "ops"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface_backend_address_pool_association" "web" {
  network_interface_id    = azurerm_network_interface.web.id
  ip_configuration_name   = "ip"
  backend_address_pool_id = azurerm_lb_backend_address_pool.web.id
}
resource "azurerm_network_interface_nat_rule_association" "ops" {
  network_interface_id  = azurerm_network_interface.ops.id
  ip_configuration_name = "ip"
  nat_rule_id           = azurerm_lb_nat_rule.ops.id
}
resource "azurerm_linux_virtual_machine" "web" {
  name                  = "web"
  network_interface_ids = [azurerm_network_interface.web.id]
}
resource "azurerm_linux_virtual_machine" "ops" {
  name                  = "ops"
  network_interface_ids = [azurerm_network_interface.ops.id]
}
