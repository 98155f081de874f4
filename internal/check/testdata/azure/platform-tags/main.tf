# An application gateway subnet's NSG, its rules made by a dynamic block:
# the gateway's control plane (GatewayManager) on 65200-65535, the load
# balancer's probes, API Management's control plane (on 3443, and on 3444
# by a regional tag), the web from the internet, and a port for a tag that
# is not modelled.
variable "rules" {
  default = {
    control = { priority = 100, source = "GatewayManager", ports = ["65200-65535"] }
    probes  = { priority = 110, source = "AzureLoadBalancer", ports = ["*"] }
    apim    = { priority = 112, source = "ApiManagement", ports = ["3443"] }
    apimeu  = { priority = 114, source = "ApiManagement.WestEurope", ports = ["3444"] }
    web     = { priority = 120, source = "Internet", ports = ["80", "443"] }
    edge    = { priority = 130, source = "AzureFrontDoor.Backend", ports = ["8080"] }
  }
}
resource "azurerm_virtual_network" "hub" {
  name          = "hub"
  address_space = ["10.80.0.0/16"]
}
resource "azurerm_subnet" "gateway" {
  name                 = "gateway"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.80.0.0/24"]
}
resource "azurerm_network_security_group" "gateway" {
  name = "gateway"
  dynamic "security_rule" {
    for_each = var.rules
    content {
      name                       = security_rule.key
      priority                   = security_rule.value.priority
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_port_range          = "*"
      destination_port_ranges    = security_rule.value.ports
      source_address_prefix      = security_rule.value.source
      destination_address_prefix = "*"
    }
  }
}
resource "azurerm_subnet_network_security_group_association" "gateway" {
  subnet_id                 = azurerm_subnet.gateway.id
  network_security_group_id = azurerm_network_security_group.gateway.id
}
