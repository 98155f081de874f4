# Caches on Azure Cache for Redis Enterprise: a session cache left with
# the defaults, a queue cache reached through a private endpoint only,
# and a legacy cache that speaks the plaintext protocol and takes TLS 1.0.

provider "azurerm" {
  features {}
}

resource "azurerm_resource_group" "app" {
  name     = "rg-cache"
  location = "northeurope"
}

resource "azurerm_virtual_network" "app" {
  name                = "vnet-cache"
  location            = azurerm_resource_group.app.location
  resource_group_name = azurerm_resource_group.app.name
  address_space       = ["10.30.0.0/16"]
}

resource "azurerm_subnet" "endpoints" {
  name                 = "snet-pe"
  resource_group_name  = azurerm_resource_group.app.name
  virtual_network_name = azurerm_virtual_network.app.name
  address_prefixes     = ["10.30.4.0/24"]
}

resource "azurerm_redis_enterprise_cluster" "sessions" {
  name                = "rec-sessions"
  resource_group_name = azurerm_resource_group.app.name
  location            = azurerm_resource_group.app.location
  sku_name            = "Enterprise_E10-2"
}

resource "azurerm_redis_enterprise_database" "sessions" {
  cluster_id = azurerm_redis_enterprise_cluster.sessions.id
}

resource "azurerm_redis_enterprise_cluster" "queue" {
  name                = "rec-queue"
  resource_group_name = azurerm_resource_group.app.name
  location            = azurerm_resource_group.app.location
  sku_name            = "Enterprise_E10-2"
}

resource "azurerm_redis_enterprise_database" "queue" {
  cluster_id        = azurerm_redis_enterprise_cluster.queue.id
  client_protocol   = "Encrypted"
  clustering_policy = "EnterpriseCluster"
}

resource "azurerm_private_endpoint" "queue" {
  name                = "pe-rec-queue"
  location            = azurerm_resource_group.app.location
  resource_group_name = azurerm_resource_group.app.name
  subnet_id           = azurerm_subnet.endpoints.id

  private_service_connection {
    name                           = "rec-queue"
    private_connection_resource_id = azurerm_redis_enterprise_cluster.queue.id
    subresource_names              = ["redisEnterprise"]
    is_manual_connection           = false
  }
}

resource "azurerm_redis_enterprise_cluster" "legacy" {
  name                = "rec-legacy"
  resource_group_name = azurerm_resource_group.app.name
  location            = azurerm_resource_group.app.location
  sku_name            = "Enterprise_E10-2"
  minimum_tls_version = "1.0"
}

resource "azurerm_redis_enterprise_database" "legacy" {
  cluster_id      = azurerm_redis_enterprise_cluster.legacy.id
  client_protocol = "Plaintext"
}
