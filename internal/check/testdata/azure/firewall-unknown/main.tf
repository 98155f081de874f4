# The firewall's addresses come from a variable the project does not set.
variable "allowed_start" { type = string }
variable "allowed_end" { type = string }
resource "azurerm_mysql_flexible_server" "shop" {
  name = "shop-mysql"
}
resource "azurerm_mysql_flexible_server_firewall_rule" "clients" {
  name             = "clients"
  server_name      = azurerm_mysql_flexible_server.shop.name
  start_ip_address = var.allowed_start
  end_ip_address   = var.allowed_end
}
