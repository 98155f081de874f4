# A web machine without a public IP behind an Application Gateway whose
# frontend is public: the listener on 443 routes to the backend pool (the
# machine's interface, by association) on 8080, and the backend's NSG admits
# 8080 and SSH from the gateway's subnet.
resource "azurerm_virtual_network" "net" {
  name          = "net"
  address_space = ["10.2.0.0/16"]
}
resource "azurerm_subnet" "gateway" {
  name                 = "gateway"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.2.0.0/24"]
}
resource "azurerm_subnet" "web" {
  name                 = "web"
  virtual_network_name = azurerm_virtual_network.net.name
  address_prefixes     = ["10.2.1.0/24"]
}
resource "azurerm_network_security_group" "web" {
  name = "web"
  security_rule {
    name                       = "from-gateway"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["22", "8080"]
    source_address_prefix      = "10.2.0.0/24"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "web" {
  subnet_id                 = azurerm_subnet.web.id
  network_security_group_id = azurerm_network_security_group.web.id
}
resource "azurerm_public_ip" "gateway" {
  name              = "gateway"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_application_gateway" "web" {
  name = "web"
  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 2
  }
  gateway_ip_configuration {
    name      = "gateway"
    subnet_id = azurerm_subnet.gateway.id
  }
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.gateway.id
  }
  frontend_port {
    name = "https"
    port = 443
  }
  backend_address_pool {
    name = "web"
  }
  backend_http_settings {
    name                  = "web"
    port                  = 8080
    protocol              = "Http"
    cookie_based_affinity = "Disabled"
  }
  http_listener {
    name                           = "web"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "https"
    protocol                       = "Https"
  }
  request_routing_rule {
    name                       = "web"
    rule_type                  = "Basic"
    priority                   = 100
    http_listener_name         = "web"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }
}
resource "azurerm_network_interface" "web" {
  name = "web"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.web.id
    private_ip_address_allocation = "Dynamic"
  }
}
resource "azurerm_network_interface_application_gateway_backend_address_pool_association" "web" {
  network_interface_id    = azurerm_network_interface.web.id
  ip_configuration_name   = "ip"
  backend_address_pool_id = tolist(azurerm_application_gateway.web.backend_address_pool)[0].id
}
resource "azurerm_linux_virtual_machine" "web" {
  name                  = "web"
  network_interface_ids = [azurerm_network_interface.web.id]
}
