# A flexible server, a private endpoint and a container group whose
# subnets come from variables: each may be in any subnet here, the
# application subnet's neighbour included.
variable "db_subnet_id" {}
variable "pe_subnet_id" {}
variable "aci_subnet_id" {}

resource "azurerm_virtual_network" "main" {
  name          = "vnet-main"
  address_space = ["10.1.0.0/16"]
}
resource "azurerm_subnet" "app" {
  name                 = "snet-app"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.1.1.0/24"]
}
resource "azurerm_subnet" "data" {
  name                 = "snet-data"
  virtual_network_name = azurerm_virtual_network.main.name
  address_prefixes     = ["10.1.2.0/24"]
}
resource "azurerm_postgresql_flexible_server" "orders" {
  name                = "pg-orders"
  delegated_subnet_id = var.db_subnet_id
}
resource "azurerm_mssql_server" "ledger" {
  name = "sql-ledger"
}
resource "azurerm_private_endpoint" "ledger" {
  name      = "pe-ledger"
  subnet_id = var.pe_subnet_id
  private_service_connection {
    name                           = "ledger"
    private_connection_resource_id = azurerm_mssql_server.ledger.id
    is_manual_connection           = false
  }
}
resource "azurerm_container_group" "jobs" {
  name            = "jobs"
  os_type         = "Linux"
  ip_address_type = "Private"
  subnet_ids      = [var.aci_subnet_id]
  container {
    name   = "worker"
    image  = "example.org/worker:1"
    cpu    = "0.5"
    memory = "1.0"
    ports {
      port = 22
    }
  }
}
