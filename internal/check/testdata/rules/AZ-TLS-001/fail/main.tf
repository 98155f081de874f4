# Plaintext and TLS below 1.2: a web app without https_only, with FTP and
# TLS 1.0; a legacy app that leaves FTP to the platform's default; a Redis
# cache with its non-TLS port open; a storage account that admits HTTP; an
# Application Gateway that serves HTTP on its public frontend.
resource "azurerm_linux_web_app" "api" {
  name                          = "app-api"
  resource_group_name           = "rg-apps"
  location                      = "westeurope"
  service_plan_id               = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  public_network_access_enabled = false

  site_config {
    ftps_state          = "AllAllowed"
    minimum_tls_version = "1.0"
  }
}

resource "azurerm_app_service" "legacy" {
  name                = "app-legacy"
  location            = "westeurope"
  resource_group_name = "rg-apps"
  app_service_plan_id = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only          = true

  site_config {
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
  enable_non_ssl_port           = true
  minimum_tls_version           = "1.2"
  public_network_access_enabled = false
}

resource "azurerm_storage_account" "exports" {
  name                          = "stexports"
  resource_group_name           = "rg-data"
  location                      = "westeurope"
  account_tier                  = "Standard"
  account_replication_type      = "LRS"
  https_traffic_only_enabled    = false
  min_tls_version               = "TLS1_1"
  public_network_access_enabled = false
}

# Databases that take connections without TLS: a single server with SSL
# enforcement off, a flexible server whose parameter turns it off.
resource "azurerm_postgresql_server" "legacy" {
  name                          = "psql-legacy"
  location                      = "westeurope"
  resource_group_name           = "rg-data"
  sku_name                      = "GP_Gen5_2"
  version                       = "11"
  ssl_enforcement_enabled       = false
  public_network_access_enabled = false
}

resource "azurerm_mysql_flexible_server" "orders" {
  name                = "mysql-orders"
  resource_group_name = "rg-data"
  location            = "westeurope"
  sku_name            = "GP_Standard_D2ds_v4"
}

resource "azurerm_mysql_flexible_server_configuration" "plaintext" {
  name                = "require_secure_transport"
  resource_group_name = "rg-data"
  server_name         = azurerm_mysql_flexible_server.orders.name
  value               = "OFF"
}

# An Application Gateway with an HTTPS listener whose HTTP listener, on the
# same public frontend, still routes to the backend instead of redirecting.
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
  request_routing_rule {
    name                       = "http"
    priority                   = 10
    rule_type                  = "Basic"
    http_listener_name         = "http"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }
  request_routing_rule {
    name                       = "https"
    priority                   = 20
    rule_type                  = "Basic"
    http_listener_name         = "https"
    backend_address_pool_name  = "web"
    backend_http_settings_name = "web"
  }
}
resource "azurerm_container_app" "shop" {
  name          = "shop"
  revision_mode = "Single"
  template {
    container {
      name   = "shop"
      image  = "example/shop:1"
      cpu    = 0.25
      memory = "0.5Gi"
    }
  }
  ingress {
    external_enabled           = true
    target_port                = 3000
    allow_insecure_connections = true
    traffic_weight {
      latest_revision = true
      percentage      = 100
    }
  }
}
