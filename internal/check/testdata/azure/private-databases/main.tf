# Databases with no public endpoint: PostgreSQL and MySQL flexible servers
# in subnets delegated to them, and an Azure SQL server reached through a
# private endpoint. No NSG guards their subnets, so Azure's default
# AllowVnetInBound admits the whole peered partner network to each.
resource "azurerm_virtual_network" "data" {
  name                = "vnet-data"
  location            = "westeurope"
  resource_group_name = "rg-data"
  address_space       = ["10.40.0.0/16"]
}
resource "azurerm_subnet" "pg" {
  name                 = "snet-pg"
  resource_group_name  = "rg-data"
  virtual_network_name = azurerm_virtual_network.data.name
  address_prefixes     = ["10.40.1.0/24"]
  delegation {
    name = "pg"
    service_delegation {
      name = "Microsoft.DBforPostgreSQL/flexibleServers"
    }
  }
}
resource "azurerm_subnet" "mysql" {
  name                 = "snet-mysql"
  resource_group_name  = "rg-data"
  virtual_network_name = azurerm_virtual_network.data.name
  address_prefixes     = ["10.40.2.0/24"]
  delegation {
    name = "mysql"
    service_delegation {
      name = "Microsoft.DBforMySQL/flexibleServers"
    }
  }
}
resource "azurerm_subnet" "links" {
  name                 = "snet-links"
  resource_group_name  = "rg-data"
  virtual_network_name = azurerm_virtual_network.data.name
  address_prefixes     = ["10.40.3.0/24"]
}
resource "azurerm_virtual_network" "partner" {
  name                = "vnet-partner"
  location            = "westeurope"
  resource_group_name = "rg-data"
  address_space       = ["10.60.0.0/16"]
}
resource "azurerm_virtual_network_peering" "data_partner" {
  name                      = "data-partner"
  resource_group_name       = "rg-data"
  virtual_network_name      = azurerm_virtual_network.data.name
  remote_virtual_network_id = azurerm_virtual_network.partner.id
}
resource "azurerm_virtual_network_peering" "partner_data" {
  name                      = "partner-data"
  resource_group_name       = "rg-data"
  virtual_network_name      = azurerm_virtual_network.partner.name
  remote_virtual_network_id = azurerm_virtual_network.data.id
}
resource "azurerm_postgresql_flexible_server" "orders" {
  name                          = "pg-orders"
  resource_group_name           = "rg-data"
  location                      = "westeurope"
  version                       = "16"
  delegated_subnet_id           = azurerm_subnet.pg.id
  public_network_access_enabled = false
  sku_name                      = "GP_Standard_D2s_v3"
}
resource "azurerm_mysql_flexible_server" "billing" {
  name                = "mysql-billing"
  resource_group_name = "rg-data"
  location            = "westeurope"
  delegated_subnet_id = azurerm_subnet.mysql.id
  sku_name            = "GP_Standard_D2ds_v4"
}
resource "azurerm_mssql_server" "ledger" {
  name                          = "sql-ledger"
  resource_group_name           = "rg-data"
  location                      = "westeurope"
  version                       = "12.0"
  public_network_access_enabled = false
}
resource "azurerm_private_endpoint" "ledger" {
  name                = "pe-ledger"
  resource_group_name = "rg-data"
  location            = "westeurope"
  subnet_id           = azurerm_subnet.links.id
  private_service_connection {
    name                           = "ledger"
    private_connection_resource_id = azurerm_mssql_server.ledger.id
    subresource_names              = ["sqlServer"]
    is_manual_connection           = false
  }
}
