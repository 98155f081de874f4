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
# Public network access off: the container is reached through private
# endpoints only, never by anonymous readers on the internet.
resource "azurerm_storage_account" "private" {
  name                          = "privateacct"
  account_tier                  = "Standard"
  account_replication_type      = "LRS"
  public_network_access_enabled = false
}
resource "azurerm_private_endpoint" "private_blob" {
  name      = "pe-private-blob"
  subnet_id = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/endpoints"
  private_service_connection {
    name                           = "private-blob"
    private_connection_resource_id = azurerm_storage_account.private.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }
}
resource "azurerm_storage_container" "downloads" {
  name                  = "downloads"
  storage_account_name  = azurerm_storage_account.private.name
  container_access_type = "blob"
}
