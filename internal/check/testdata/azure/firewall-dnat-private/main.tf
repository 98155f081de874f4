# DNAT rules of a firewall policy: one from private clients alone (a
# peered office), which publishes nothing to the internet; one from every
# address to an address no machine of the project holds, over TCP and UDP.
resource "azurerm_firewall_policy" "hub" {
  name                = "hub"
  resource_group_name = "rg"
  location            = "westeurope"
}
resource "azurerm_firewall_policy_rule_collection_group" "dnat" {
  name               = "dnat"
  firewall_policy_id = azurerm_firewall_policy.hub.id
  priority           = 100
  nat_rule_collection {
    name     = "inbound"
    priority = 100
    action   = "Dnat"
    rule {
      name                = "office"
      protocols           = ["TCP", "UDP"]
      source_addresses    = ["10.0.0.1", "192.168.10.0/24"]
      destination_address = "192.168.1.1"
      destination_ports   = ["80"]
      translated_address  = "192.168.0.1"
      translated_port     = "8080"
    }
    rule {
      name                = "world"
      protocols           = ["TCP", "UDP"]
      source_addresses    = ["*"]
      destination_address = "203.0.113.10"
      destination_ports   = ["53"]
      translated_address  = "10.9.9.9"
      translated_port     = "53"
    }
  }
}
