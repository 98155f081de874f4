# A network whose address space, and its subnets' ranges, are inputs
# without a value: the gateway's subnet is still in the network, so the
# application subnet's NSG, which admits the VirtualNetwork tag, admits
# the gateway's connections to the machine it publishes.
variable "space" {
  type = string
}

variable "edge_prefix" {
  type = string
}

variable "app_prefix" {
  type = string
}

resource "azurerm_virtual_network" "shop" {
  name                = "shop"
  location            = "uksouth"
  resource_group_name = "shop"
  address_space       = [var.space]
}

resource "azurerm_subnet" "edge" {
  name                 = "edge"
  resource_group_name  = "shop"
  virtual_network_name = azurerm_virtual_network.shop.name
  address_prefixes     = [var.edge_prefix]
}

resource "azurerm_subnet" "app" {
  name                 = "app"
  resource_group_name  = "shop"
  virtual_network_name = azurerm_virtual_network.shop.name
  address_prefixes     = [var.app_prefix]
}

resource "azurerm_network_security_group" "app" {
  name                = "app"
  location            = "uksouth"
  resource_group_name = "shop"

  security_rule {
    name                       = "from-the-network"
    priority                   = 200
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "8443"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "nothing-else"
    priority                   = 4000
    direction                  = "Inbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "app" {
  subnet_id                 = azurerm_subnet.app.id
  network_security_group_id = azurerm_network_security_group.app.id
}

resource "azurerm_public_ip" "edge" {
  name                = "edge"
  location            = "uksouth"
  resource_group_name = "shop"
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_application_gateway" "edge" {
  name                = "edge"
  location            = "uksouth"
  resource_group_name = "shop"

  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 2
  }

  gateway_ip_configuration {
    name      = "edge"
    subnet_id = azurerm_subnet.edge.id
  }

  frontend_port {
    name = "https"
    port = 443
  }

  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.edge.id
  }

  backend_address_pool {
    name = "app"
  }

  backend_http_settings {
    name                  = "app"
    cookie_based_affinity = "Disabled"
    port                  = 8443
    protocol              = "Https"
    request_timeout       = 30
  }

  http_listener {
    name                           = "https"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "https"
    protocol                       = "Https"
    ssl_certificate_name           = "shop"
  }

  ssl_certificate {
    name                = "shop"
    key_vault_secret_id = "https://shop.vault.azure.net/secrets/tls"
  }

  request_routing_rule {
    name                       = "app"
    priority                   = 10
    rule_type                  = "Basic"
    http_listener_name         = "https"
    backend_address_pool_name  = "app"
    backend_http_settings_name = "app"
  }
}

resource "azurerm_network_interface" "app" {
  name                = "app"
  location            = "uksouth"
  resource_group_name = "shop"

  ip_configuration {
    name                          = "app"
    subnet_id                     = azurerm_subnet.app.id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_network_interface_application_gateway_backend_address_pool_association" "app" {
  network_interface_id    = azurerm_network_interface.app.id
  ip_configuration_name   = "app"
  backend_address_pool_id = one(azurerm_application_gateway.edge.backend_address_pool).id
}

resource "azurerm_linux_virtual_machine" "app" {
  name                  = "app"
  location              = "uksouth"
  resource_group_name   = "shop"
  size                  = "Standard_D2s_v5"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.app.id]

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
  }
}
