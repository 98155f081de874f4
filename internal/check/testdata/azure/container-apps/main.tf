# Container apps: one with external ingress and no IP restrictions, one
# restricted to an office, one whose ingress is internal, one in an
# environment behind an internal load balancer, one reached over TCP.
resource "azurerm_container_app_environment" "public" {
  name = "cae-public"
}
resource "azurerm_container_app_environment" "internal" {
  name                           = "cae-internal"
  infrastructure_subnet_id       = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
  internal_load_balancer_enabled = true
}
resource "azurerm_container_app" "open" {
  name                         = "open"
  container_app_environment_id = azurerm_container_app_environment.public.id
  revision_mode                = "Single"
  ingress {
    external_enabled = true
    target_port      = 8080
    traffic_weight {
      percentage      = 100
      latest_revision = true
    }
  }
}
resource "azurerm_container_app" "office" {
  name                         = "office"
  container_app_environment_id = azurerm_container_app_environment.public.id
  revision_mode                = "Single"
  ingress {
    external_enabled = true
    target_port      = 8080
    ip_security_restriction {
      name             = "office"
      action           = "Allow"
      ip_address_range = "198.51.100.0/24"
    }
    traffic_weight {
      percentage      = 100
      latest_revision = true
    }
  }
}
resource "azurerm_container_app" "inside" {
  name                         = "inside"
  container_app_environment_id = azurerm_container_app_environment.public.id
  revision_mode                = "Single"
  ingress {
    external_enabled = false
    target_port      = 8080
    traffic_weight {
      percentage      = 100
      latest_revision = true
    }
  }
}
resource "azurerm_container_app" "ilb" {
  name                         = "ilb"
  container_app_environment_id = azurerm_container_app_environment.internal.id
  revision_mode                = "Single"
  ingress {
    external_enabled = true
    target_port      = 8080
    traffic_weight {
      percentage      = 100
      latest_revision = true
    }
  }
}
resource "azurerm_container_app" "db" {
  name                         = "db"
  container_app_environment_id = azurerm_container_app_environment.public.id
  revision_mode                = "Single"
  ingress {
    external_enabled = true
    transport        = "tcp"
    target_port      = 5432
    exposed_port     = 5432
    ip_security_restriction {
      name             = "not-this-one"
      action           = "Deny"
      ip_address_range = "203.0.113.7/32"
    }
    traffic_weight {
      percentage      = 100
      latest_revision = true
    }
  }
}
