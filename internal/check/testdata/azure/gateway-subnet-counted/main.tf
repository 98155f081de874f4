# An application gateway in a subnet of a resource whose count is not
# known statically; those subnets' NSG admits HTTPS from the office alone
# (and the gateway's infrastructure ports).
variable "edges" {
  type = list(string)
}

resource "azurerm_virtual_network" "edge" {
  name                = "edge"
  location            = "italynorth"
  resource_group_name = "edge"
  address_space       = ["10.70.0.0/16"]
}

resource "azurerm_subnet" "edge" {
  count                = length(var.edges)
  name                 = var.edges[count.index]
  resource_group_name  = "edge"
  virtual_network_name = azurerm_virtual_network.edge.name
  address_prefixes     = [cidrsubnet("10.70.0.0/16", 8, count.index)]
}

resource "azurerm_network_security_group" "edge" {
  name                = "edge"
  location            = "italynorth"
  resource_group_name = "edge"

  security_rule {
    name                       = "office-https"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "203.0.113.0/24"
    destination_address_prefix = "*"
  }

  security_rule {
    name                       = "gateway-manager"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "65200-65535"
    source_address_prefix      = "GatewayManager"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "edge" {
  count                     = length(var.edges)
  subnet_id                 = azurerm_subnet.edge[count.index].id
  network_security_group_id = azurerm_network_security_group.edge.id
}

resource "azurerm_public_ip" "edge" {
  name                = "edge"
  location            = "italynorth"
  resource_group_name = "edge"
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_application_gateway" "edge" {
  name                = "edge"
  location            = "italynorth"
  resource_group_name = "edge"

  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 1
  }

  gateway_ip_configuration {
    name      = "edge"
    subnet_id = azurerm_subnet.edge[0].id
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
    name  = "intranet"
    fqdns = ["intranet.internal.example"]
  }

  backend_http_settings {
    name                  = "intranet"
    cookie_based_affinity = "Disabled"
    port                  = 443
    protocol              = "Https"
    request_timeout       = 30
  }

  http_listener {
    name                           = "https"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "https"
    protocol                       = "Https"
    ssl_certificate_name           = "intranet"
  }

  ssl_certificate {
    name                = "intranet"
    key_vault_secret_id = "https://edge.vault.azure.net/secrets/intranet"
  }

  request_routing_rule {
    name                       = "intranet"
    priority                   = 10
    rule_type                  = "Basic"
    http_listener_name         = "https"
    backend_address_pool_name  = "intranet"
    backend_http_settings_name = "intranet"
  }
}
