# TLS only, at 1.2 or above: https_only with the provider's defaults for FTP
# (Disabled) and TLS (1.2), FTPS only on a legacy app, Redis with the non-TLS
# port off (azurerm 4.x name) and a storage account on its defaults.
resource "azurerm_windows_web_app" "portal" {
  name                          = "app-portal"
  resource_group_name           = "rg-apps"
  location                      = "westeurope"
  service_plan_id               = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only                    = true
  public_network_access_enabled = false

  site_config {}
}

resource "azurerm_function_app" "legacy" {
  name                       = "func-legacy"
  location                   = "westeurope"
  resource_group_name        = "rg-apps"
  app_service_plan_id        = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  storage_account_name       = "stlegacy"
  storage_account_access_key = "key"
  https_only                 = true

  site_config {
    ftps_state      = "FtpsOnly"
    min_tls_version = "1.2"
    ip_restriction {
      ip_address = "203.0.113.0/24"
    }
    scm_use_main_ip_restriction = true
  }
}

resource "azurerm_redis_cache" "sessions" {
  name                          = "redis-sessions"
  location                      = "westeurope"
  resource_group_name           = "rg-data"
  capacity                      = 1
  family                        = "C"
  sku_name                      = "Standard"
  non_ssl_port_enabled          = false
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
}

resource "azurerm_storage_account" "exports" {
  name                          = "stexports"
  resource_group_name           = "rg-data"
  location                      = "westeurope"
  account_tier                  = "Standard"
  account_replication_type      = "LRS"
  public_network_access_enabled = false
}

resource "azurerm_postgresql_server" "legacy" {
  name                             = "psql-legacy"
  location                         = "westeurope"
  resource_group_name              = "rg-data"
  sku_name                         = "GP_Gen5_2"
  version                          = "11"
  ssl_enforcement_enabled          = true
  ssl_minimal_tls_version_enforced = "TLS1_2"
  public_network_access_enabled    = false
}

resource "azurerm_postgresql_flexible_server_configuration" "pgaudit" {
  name      = "shared_preload_libraries"
  server_id = "/subscriptions/0/resourceGroups/rg-data/providers/Microsoft.DBforPostgreSQL/flexibleServers/psql"
  value     = "pgaudit"
}

# An Application Gateway whose public HTTP listener redirects to its HTTPS
# listener; the HTTP listener of its private frontend serves the VNet.
resource "azurerm_public_ip" "gw" {
  name                = "pip-gw"
  resource_group_name = "rg-apps"
  location            = "westeurope"
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_application_gateway" "web" {
  name                = "agw-web"
  resource_group_name = "rg-apps"
  location            = "westeurope"

  sku {
    name     = "Standard_v2"
    tier     = "Standard_v2"
    capacity = 1
  }
  gateway_ip_configuration {
    name      = "gw"
    subnet_id = "/subscriptions/0/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/agw"
  }
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.gw.id
  }
  frontend_ip_configuration {
    name                          = "private"
    subnet_id                     = "/subscriptions/0/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/agw"
    private_ip_address            = "10.20.0.10"
    private_ip_address_allocation = "Static"
  }
  frontend_port {
    name = "http"
    port = 80
  }
  frontend_port {
    name = "https"
    port = 443
  }
  ssl_certificate {
    name                = "web"
    key_vault_secret_id = "https://kv-web.vault.azure.net/secrets/web"
  }
  http_listener {
    name                           = "http"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }
  http_listener {
    name                           = "https"
    frontend_ip_configuration_name = "public"
    frontend_port_name             = "https"
    protocol                       = "Https"
    ssl_certificate_name           = "web"
  }
  http_listener {
    name                           = "internal"
    frontend_ip_configuration_name = "private"
    frontend_port_name             = "http"
    protocol                       = "Http"
  }
  backend_address_pool {
    name  = "web"
    fqdns = ["web.internal.example"]
  }
  backend_http_settings {
    name                  = "web"
    cookie_based_affinity = "Disabled"
    port                  = 8080
    protocol              = "Http"
  }
  redirect_configuration {
    name                 = "to-https"
    redirect_type        = "Permanent"
    target_listener_name = "https"
    include_path         = true
    include_query_string = true
  }
  request_routing_rule {
    name                        = "http"
    priority                    = 10
    rule_type                   = "Basic"
    http_listener_name          = "http"
    redirect_configuration_name = "to-https"
  }
  request_routing_rule {
    name                       = "https"
    priority                   = 20
    rule_type                  = "Basic"
    http_listener_name         = "https"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }
  request_routing_rule {
    name                       = "internal"
    priority                   = 30
    rule_type                  = "Basic"
    http_listener_name         = "internal"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }
}
# External ingress redirects HTTP to HTTPS; plaintext is allowed only on an
# ingress that answers the environment alone, or carries TCP.
resource "azurerm_container_app" "shop" {
  name          = "shop"
  revision_mode = "Single"
  ingress {
    external_enabled = true
    target_port      = 3000
    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }
}
resource "azurerm_container_app" "backend" {
  name          = "backend"
  revision_mode = "Single"
  ingress {
    external_enabled           = false
    target_port                = 8080
    allow_insecure_connections = true
    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }
}
resource "azurerm_container_app" "broker" {
  name          = "broker"
  revision_mode = "Single"
  ingress {
    external_enabled           = true
    transport                  = "tcp"
    target_port                = 5672
    exposed_port               = 5672
    allow_insecure_connections = true
    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }
}
