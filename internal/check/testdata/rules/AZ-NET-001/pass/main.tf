# An NSG declared for others to associate: RDP from the office range.
resource "azurerm_network_security_group" "rdp" {
  name                = "nsg-rdp"
  location            = "westeurope"
  resource_group_name = "rg"
  security_rule {
    name                       = "rdp"
    priority                   = 110
    direction                  = "Inbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_ranges    = ["3389"]
    source_address_prefix      = "10.20.0.0/16"
    destination_address_prefix = "*"
  }
}
resource "azurerm_network_watcher_flow_log" "rdp" {
  name                      = "fl"
  network_watcher_name      = "nw"
  resource_group_name       = "rg"
  network_security_group_id = azurerm_network_security_group.rdp.id
  storage_account_id        = "sa"
  enabled                   = true
  retention_policy {
    enabled = true
    days    = 30
  }
}
