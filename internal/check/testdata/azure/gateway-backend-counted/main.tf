# A machine published by an application gateway on 8080, in a subnet of a
# resource whose count is not known statically, whose NSG admits only
# 443 from the gateway's subnet: the gateway's connections to 8080 are
# turned away there.
variable "backends" {
  type = list(string)
}

resource "azurerm_virtual_network" "hub" {
  name                = "hub"
  location            = "francecentral"
  resource_group_name = "hub"
  address_space       = ["172.20.0.0/16"]
}

resource "azurerm_subnet" "gateway" {
  name                 = "gateway"
  resource_group_name  = "hub"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["172.20.0.0/24"]
}

resource "azurerm_subnet" "backend" {
  count                = length(var.backends)
  name                 = var.backends[count.index]
  resource_group_name  = "hub"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = [cidrsubnet("172.20.0.0/16", 8, count.index + 1)]
}

resource "azurerm_network_security_group" "backend" {
  name                = "backend"
  location            = "francecentral"
  resource_group_name = "hub"

  security_rule {
    name                       = "gateway-https"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "172.20.0.0/24"
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "deny-rest"
    priority                   = 4096
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "backend" {
  count                     = length(var.backends)
  subnet_id                 = azurerm_subnet.backend[count.index].id
  network_security_group_id = azurerm_network_security_group.backend.id
}

resource "azurerm_public_ip" "gateway" {
  name                = "gateway"
  location            = "francecentral"
  resource_group_name = "hub"
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_application_gateway" "front" {
  name                = "front"
  location            = "francecentral"
  resource_group_name = "hub"

  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 1
  }

  gateway_ip_configuration {
    name      = "gateway"
    subnet_id = azurerm_subnet.gateway.id
  }

  frontend_port {
    name = "http"
    port = 80
  }

  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.gateway.id
  }

  backend_address_pool {
    name = "api"
  }

  backend_http_settings {
    name                  = "api"
    cookie_based_affinity = "Disabled"
    port                  = 8080
    protocol              = "Http"
    request_timeout       = 30
  }

  http_listener {
    name                           = "http"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }

  request_routing_rule {
    name                       = "api"
    priority                   = 10
    rule_type                  = "Basic"
    http_listener_name         = "http"
    backend_address_pool_name  = "api"
    backend_http_settings_name = "api"
  }
}

resource "azurerm_network_interface" "api" {
  name                = "api"
  location            = "francecentral"
  resource_group_name = "hub"

  ip_configuration {
    name                          = "api"
    subnet_id                     = azurerm_subnet.backend[0].id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_network_interface_application_gateway_backend_address_pool_association" "api" {
  network_interface_id    = azurerm_network_interface.api.id
  ip_configuration_name   = "api"
  backend_address_pool_id = one(azurerm_application_gateway.front.backend_address_pool).id
}

resource "azurerm_linux_virtual_machine" "api" {
  name                  = "api"
  location              = "francecentral"
  resource_group_name   = "hub"
  size                  = "Standard_D2s_v5"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.api.id]

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
  }
}
