# Firewall rules admitting the whole internet: to a workspace outside the
# scanned code, and to a server whose public network access is not known
# statically. Neither is proven to take connections from the internet.
variable "public" {}
resource "azurerm_synapse_firewall_rule" "elsewhere" {
  name                 = "AllowAll"
  synapse_workspace_id = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Synapse/workspaces/test"
  start_ip_address     = "0.0.0.0"
  end_ip_address       = "255.255.255.255"
}
resource "azurerm_mssql_server" "maybe" {
  name                          = "sql-maybe"
  resource_group_name           = "rg"
  location                      = "westeurope"
  version                       = "12.0"
  minimum_tls_version           = "1.2"
  public_network_access_enabled = var.public
}
resource "azurerm_mssql_firewall_rule" "maybe" {
  name             = "AllowAll"
  server_id        = azurerm_mssql_server.maybe.id
  start_ip_address = "0.0.0.0"
  end_ip_address   = "255.255.255.255"
}
