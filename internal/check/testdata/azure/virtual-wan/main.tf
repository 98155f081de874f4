# Two spokes connected to hubs of one Virtual WAN, and a branch office
# behind the hub's VPN gateway. The database machine's NSG admits SSH and
# PostgreSQL from the VirtualNetwork tag alone: through the hubs, the
# other spoke and the branch are in it.
resource "azurerm_virtual_wan" "corp" {
  name                = "corp"
  resource_group_name = "net"
  location            = "swedencentral"
}

resource "azurerm_virtual_hub" "north" {
  name                = "north"
  resource_group_name = "net"
  location            = "swedencentral"
  virtual_wan_id      = azurerm_virtual_wan.corp.id
  address_prefix      = "10.100.0.0/23"
}

resource "azurerm_virtual_hub" "west" {
  name                = "west"
  resource_group_name = "net"
  location            = "westeurope"
  virtual_wan_id      = azurerm_virtual_wan.corp.id
  address_prefix      = "10.101.0.0/23"
}

resource "azurerm_virtual_network" "apps" {
  name                = "apps"
  resource_group_name = "apps"
  location            = "swedencentral"
  address_space       = ["10.1.0.0/16"]
}

resource "azurerm_virtual_network" "data" {
  name                = "data"
  resource_group_name = "data"
  location            = "westeurope"
  address_space       = ["10.2.0.0/16"]
}

resource "azurerm_virtual_network" "lab" {
  name                = "lab"
  resource_group_name = "lab"
  location            = "westeurope"
  address_space       = ["10.3.0.0/16"]
}

resource "azurerm_virtual_hub_connection" "apps" {
  name                      = "apps"
  virtual_hub_id            = azurerm_virtual_hub.north.id
  remote_virtual_network_id = azurerm_virtual_network.apps.id
}

resource "azurerm_virtual_hub_connection" "data" {
  name                      = "data"
  virtual_hub_id            = azurerm_virtual_hub.west.id
  remote_virtual_network_id = azurerm_virtual_network.data.id
}

resource "azurerm_vpn_gateway" "north" {
  name                = "north"
  resource_group_name = "net"
  location            = "swedencentral"
  virtual_hub_id      = azurerm_virtual_hub.north.id
}

resource "azurerm_vpn_site" "office" {
  name                = "office"
  resource_group_name = "net"
  location            = "swedencentral"
  virtual_wan_id      = azurerm_virtual_wan.corp.id
  address_cidrs       = ["192.168.40.0/24"]

  link {
    name       = "isp"
    ip_address = "203.0.113.10"
  }
}

resource "azurerm_vpn_gateway_connection" "office" {
  name               = "office"
  vpn_gateway_id     = azurerm_vpn_gateway.north.id
  remote_vpn_site_id = azurerm_vpn_site.office.id

  vpn_link {
    name             = "isp"
    vpn_site_link_id = azurerm_vpn_site.office.link[0].id
  }
}

resource "azurerm_subnet" "db" {
  name                 = "db"
  resource_group_name  = "data"
  virtual_network_name = azurerm_virtual_network.data.name
  address_prefixes     = ["10.2.1.0/24"]
}

resource "azurerm_network_security_group" "db" {
  name                = "db"
  location            = "westeurope"
  resource_group_name = "data"

  security_rule {
    name                       = "from-the-network"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["22", "5432"]
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "*"
  }
}

resource "azurerm_subnet_network_security_group_association" "db" {
  subnet_id                 = azurerm_subnet.db.id
  network_security_group_id = azurerm_network_security_group.db.id
}

resource "azurerm_network_interface" "db" {
  name                = "db"
  location            = "westeurope"
  resource_group_name = "data"

  ip_configuration {
    name                          = "db"
    subnet_id                     = azurerm_subnet.db.id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_linux_virtual_machine" "db" {
  name                  = "db"
  location              = "westeurope"
  resource_group_name   = "data"
  size                  = "Standard_E4s_v5"
  admin_username        = "ops"
  network_interface_ids = [azurerm_network_interface.db.id]

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
  }
}
