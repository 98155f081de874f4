resource "azurerm_virtual_network" "v" {
  name = "v"
  location = "westeurope"
  resource_group_name = "rg"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_subnet" "aci" {
  name = "aci"
  resource_group_name = "rg"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefixes = ["10.1.1.0/24"]
  delegation {
    name = "d"
    service_delegation { name = "Microsoft.ContainerInstance/containerGroups" }
  }
}
resource "azurerm_subnet" "vm" {
  name = "vm"
  resource_group_name = "rg"
  virtual_network_name = azurerm_virtual_network.v.name
  address_prefixes = ["10.1.2.0/24"]
}
resource "azurerm_network_profile" "aci" {
  name = "p"
  location = "westeurope"
  resource_group_name = "rg"
  container_network_interface {
    name = "nic"
    ip_configuration {
      name = "ipc"
      subnet_id = azurerm_subnet.aci.id
    }
  }
}
# A private container group of azurerm before 3.16 is placed in a subnet
# through its network profile, not subnet_ids.
resource "azurerm_container_group" "cache" {
  name = "cache"
  location = "westeurope"
  resource_group_name = "rg"
  os_type = "Linux"
  ip_address_type = "Private"
  network_profile_id = azurerm_network_profile.aci.id
  container {
    name = "redis"
    image = "redis"
    cpu = "0.5"
    memory = "1"
    ports {
      port = 6379
      protocol = "TCP"
    }
  }
}

