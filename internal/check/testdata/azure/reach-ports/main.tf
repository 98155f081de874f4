# A web machine with a public IP of its own, behind an NSG that admits the
# internet on tcp 8443 and on udp 51820 (a VPN endpoint), and a scale set
# without public IPs behind a Basic public load balancer forwarding tcp
# 9090. None of these ports is an admin or data-store port.
resource "azurerm_virtual_network" "edge" {
  name          = "edge"
  address_space = ["10.77.0.0/16"]
}
resource "azurerm_subnet" "front" {
  name                 = "front"
  virtual_network_name = azurerm_virtual_network.edge.name
  address_prefixes     = ["10.77.1.0/24"]
}
resource "azurerm_public_ip" "web" {
  name              = "web"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_network_security_group" "web" {
  name = "web"
  security_rule {
    name                       = "tls"
    priority                   = 200
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "8443"
    source_address_prefix      = "Internet"
    destination_address_prefix = "*"
  }
  security_rule {
    name                       = "tunnel"
    priority                   = 210
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Udp"
    source_port_range          = "*"
    destination_port_range     = "51820"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_interface" "web" {
  name = "web"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.front.id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.web.id
  }
}
resource "azurerm_network_interface_security_group_association" "web" {
  network_interface_id      = azurerm_network_interface.web.id
  network_security_group_id = azurerm_network_security_group.web.id
}
resource "azurerm_linux_virtual_machine" "web" {
  name                  = "web"
  network_interface_ids = [azurerm_network_interface.web.id]
}
resource "azurerm_public_ip" "pool" {
  name              = "pool"
  allocation_method = "Static"
}
resource "azurerm_lb" "pool" {
  name = "pool"
  frontend_ip_configuration {
    name                 = "front"
    public_ip_address_id = azurerm_public_ip.pool.id
  }
}
resource "azurerm_lb_backend_address_pool" "pool" {
  name            = "pool"
  loadbalancer_id = azurerm_lb.pool.id
}
resource "azurerm_lb_rule" "metrics" {
  name                           = "metrics"
  loadbalancer_id                = azurerm_lb.pool.id
  protocol                       = "Tcp"
  frontend_port                  = 9090
  backend_port                   = 9090
  frontend_ip_configuration_name = "front"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.pool.id]
}
resource "azurerm_linux_virtual_machine_scale_set" "pool" {
  name = "pool"
  network_interface {
    name    = "nic"
    primary = true
    ip_configuration {
      name                                   = "ip"
      primary                                = true
      subnet_id                              = azurerm_subnet.front.id
      load_balancer_backend_address_pool_ids = [azurerm_lb_backend_address_pool.pool.id]
    }
  }
}
