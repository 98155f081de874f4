# Network rules that deny by default, inline and as their own resource, and a
# key vault with public network access off.
resource "azurerm_storage_account" "logs" {
  name                            = "stlogs"
  resource_group_name             = "rg"
  location                        = "westeurope"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  allow_nested_items_to_be_public = false

  network_rules {
    default_action = "Deny"
    ip_rules       = ["198.51.100.0/24"]
    bypass         = ["AzureServices"]
  }
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
  default_action     = "Deny"
}

resource "azurerm_key_vault" "app" {
  name                          = "kv-app"
  location                      = "westeurope"
  resource_group_name           = "rg"
  tenant_id                     = "00000000-0000-0000-0000-000000000000"
  sku_name                      = "standard"
  public_network_access_enabled = false
}

resource "azurerm_key_vault" "ops" {
  name                = "kv-ops"
  location            = "westeurope"
  resource_group_name = "rg"
  tenant_id           = "00000000-0000-0000-0000-000000000000"
  sku_name            = "standard"

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
  }
}
