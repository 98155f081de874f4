resource "azurerm_storage_account" "assets" {
  name                     = "assetsacct"
  account_tier             = "Standard"
  account_replication_type = "LRS"
}
resource "azurerm_storage_container" "images" {
  name                  = "images"
  storage_account_name  = azurerm_storage_account.assets.name
  container_access_type = "blob"
}
resource "azurerm_storage_account" "reports" {
  name                            = "reportsacct"
  allow_nested_items_to_be_public = true
}
resource "azurerm_storage_container" "reports" {
  name                  = "reports"
  storage_account_id    = azurerm_storage_account.reports.id
  container_access_type = "container"
}
