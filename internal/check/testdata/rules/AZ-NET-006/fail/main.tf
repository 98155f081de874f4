# A storage account and a key vault that leave their network rules to Azure's
# default (every network), and an account whose separate rules resource allows
# every network by default.
resource "azurerm_storage_account" "logs" {
  name                            = "stlogs"
  resource_group_name             = "rg"
  location                        = "westeurope"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  allow_nested_items_to_be_public = false
}

resource "azurerm_storage_account" "reports" {
  name                            = "streports"
  resource_group_name             = "rg"
  location                        = "westeurope"
  account_tier                    = "Standard"
  account_replication_type        = "GRS"
  allow_nested_items_to_be_public = false
}

resource "azurerm_storage_account_network_rules" "reports" {
  storage_account_id = azurerm_storage_account.reports.id
  default_action     = "Allow"
  ip_rules           = ["198.51.100.0/24"]
}

resource "azurerm_key_vault" "app" {
  name                = "kv-app"
  location            = "westeurope"
  resource_group_name = "rg"
  tenant_id           = "00000000-0000-0000-0000-000000000000"
  sku_name            = "standard"
}
