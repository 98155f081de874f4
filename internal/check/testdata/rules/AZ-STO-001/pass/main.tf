resource "azurerm_storage_account" "assets" {
  name                            = "assetsacct"
  allow_nested_items_to_be_public = false
}
# The account forbids public access: the container's setting has no effect.
resource "azurerm_storage_container" "images" {
  name                  = "images"
  storage_account_name  = azurerm_storage_account.assets.name
  container_access_type = "blob"
}
resource "azurerm_storage_account" "legacy" {
  name                     = "legacyacct"
  allow_blob_public_access = false
}
resource "azurerm_storage_container" "legacy" {
  name                  = "legacy"
  storage_account_name  = "legacyacct"
  container_access_type = "container"
}
resource "azurerm_storage_container" "private" {
  name                  = "private"
  storage_account_name  = "elsewhere"
  container_access_type = "private"
}
