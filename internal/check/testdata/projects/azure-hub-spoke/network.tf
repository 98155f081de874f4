# Hub-and-spoke: the hub holds a jump host; two spokes peer with the hub
# only (peering is not transitive).
resource "azurerm_resource_group" "net" {
  name     = "net"
  location = "westeurope"
}

locals {
  vnets = {
    hub    = "10.0.0.0/16"
    spoke1 = "10.1.0.0/16"
    spoke2 = "10.2.0.0/16"
  }
}

resource "azurerm_virtual_network" "this" {
  for_each            = local.vnets
  name                = "vnet-${each.key}"
  address_space       = [each.value]
  location            = azurerm_resource_group.net.location
  resource_group_name = azurerm_resource_group.net.name
}

resource "azurerm_subnet" "workload" {
  for_each             = local.vnets
  name                 = "snet-${each.key}"
  resource_group_name  = azurerm_resource_group.net.name
  virtual_network_name = azurerm_virtual_network.this[each.key].name
  address_prefixes     = [cidrsubnet(each.value, 8, 1)]
}

resource "azurerm_virtual_network_peering" "to_hub" {
  for_each                  = toset(["spoke1", "spoke2"])
  name                      = "${each.key}-to-hub"
  resource_group_name       = azurerm_resource_group.net.name
  virtual_network_name      = azurerm_virtual_network.this[each.key].name
  remote_virtual_network_id = azurerm_virtual_network.this["hub"].id
}

resource "azurerm_virtual_network_peering" "from_hub" {
  for_each                  = toset(["spoke1", "spoke2"])
  name                      = "hub-to-${each.key}"
  resource_group_name       = azurerm_resource_group.net.name
  virtual_network_name      = azurerm_virtual_network.this["hub"].name
  remote_virtual_network_id = azurerm_virtual_network.this[each.key].id
}
