# A hub and spoke: the spoke's machines have no public IP; the hub's
# firewall publishes them. A classic DNAT rule collection sends RDP on the
# firewall's public IP to the jump host (a static address); a firewall
# policy's NAT rule collection sends 2222 from an office's /24 to SSH on the
# app machine. The spoke's NSG
# admits RDP and SSH from the firewall's subnet only.
resource "azurerm_virtual_network" "hub" {
  name          = "hub"
  address_space = ["10.0.0.0/16"]
}
resource "azurerm_subnet" "firewall" {
  name                 = "AzureFirewallSubnet"
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = ["10.0.1.0/26"]
}
resource "azurerm_virtual_network" "spoke" {
  name          = "spoke"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_subnet" "workload" {
  name                 = "workload"
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = ["10.1.1.0/24"]
}
resource "azurerm_virtual_network_peering" "hub_spoke" {
  name                      = "hub-spoke"
  virtual_network_name      = azurerm_virtual_network.hub.name
  remote_virtual_network_id = azurerm_virtual_network.spoke.id
}
resource "azurerm_virtual_network_peering" "spoke_hub" {
  name                      = "spoke-hub"
  virtual_network_name      = azurerm_virtual_network.spoke.name
  remote_virtual_network_id = azurerm_virtual_network.hub.id
}
resource "azurerm_network_security_group" "workload" {
  name = "workload"
  security_rule {
    name                       = "from-firewall"
    priority                   = 100
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["22", "3389"]
    source_address_prefix      = "10.0.1.0/26"
    destination_address_prefix = "*"
  }
}
resource "azurerm_subnet_network_security_group_association" "workload" {
  subnet_id                 = azurerm_subnet.workload.id
  network_security_group_id = azurerm_network_security_group.workload.id
}
resource "azurerm_network_interface" "jump" {
  name = "jump"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.workload.id
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.1.1.4"
  }
}
resource "azurerm_windows_virtual_machine" "jump" {
  name                  = "jump"
  network_interface_ids = [azurerm_network_interface.jump.id]
}
resource "azurerm_network_interface" "app" {
  name = "app"
  ip_configuration {
    name                          = "ip"
    subnet_id                     = azurerm_subnet.workload.id
    private_ip_address_allocation = "Static"
    private_ip_address            = "10.1.1.5"
  }
}
resource "azurerm_linux_virtual_machine" "app" {
  name                  = "app"
  network_interface_ids = [azurerm_network_interface.app.id]
}
resource "azurerm_public_ip" "firewall" {
  name              = "firewall"
  allocation_method = "Static"
  sku               = "Standard"
}
resource "azurerm_firewall_policy" "hub" {
  name = "hub"
}
resource "azurerm_firewall" "hub" {
  name               = "hub"
  sku_name           = "AZFW_VNet"
  sku_tier           = "Standard"
  firewall_policy_id = azurerm_firewall_policy.hub.id
  ip_configuration {
    name                 = "ip"
    subnet_id            = azurerm_subnet.firewall.id
    public_ip_address_id = azurerm_public_ip.firewall.id
  }
}
resource "azurerm_firewall_nat_rule_collection" "inbound" {
  name                = "inbound"
  azure_firewall_name = azurerm_firewall.hub.name
  priority            = 100
  action              = "Dnat"
  rule {
    name                  = "rdp-jump"
    source_addresses      = ["*"]
    destination_ports     = ["3389"]
    destination_addresses = [azurerm_public_ip.firewall.ip_address]
    translated_port       = 3389
    translated_address    = "10.1.1.4"
    protocols             = ["TCP"]
  }
}
resource "azurerm_firewall_policy_rule_collection_group" "inbound" {
  name               = "inbound"
  firewall_policy_id = azurerm_firewall_policy.hub.id
  priority           = 100
  nat_rule_collection {
    name     = "office"
    priority = 100
    action   = "Dnat"
    rule {
      name                = "ssh-app"
      protocols           = ["TCP"]
      source_addresses    = ["203.0.113.0/24"]
      destination_address = azurerm_public_ip.firewall.ip_address
      destination_ports   = ["2222"]
      translated_address  = "10.1.1.5"
      translated_port     = "22"
    }
  }
}
