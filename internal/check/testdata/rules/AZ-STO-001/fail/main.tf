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
# Network rules that deny by default narrow the anonymous readers to the
# ranges they admit: still reported, at medium.
resource "azurerm_storage_account" "media" {
  name                     = "mediaacct"
  account_tier             = "Standard"
  account_replication_type = "LRS"
  network_rules {
    default_action = "Deny"
    ip_rules       = ["203.0.113.0/24"]
  }
}
resource "azurerm_storage_container" "media" {
  name                  = "media"
  storage_account_id    = azurerm_storage_account.media.id
  container_access_type = "blob"
}
