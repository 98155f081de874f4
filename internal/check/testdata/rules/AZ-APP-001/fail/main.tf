# Web and function apps whose sites admit every internet address: access
# restrictions left to the provider's default action (Allow), a deployment
# site with none, an allow of every address, and restrictions built from a
# variable the scanned code does not give.
variable "allowed_ranges" {
  type = list(string)
}

resource "azurerm_service_plan" "main" {
  name                = "plan-main"
  resource_group_name = "rg-apps"
  location            = "westeurope"
  os_type             = "Linux"
  sku_name            = "P1v3"
}

resource "azurerm_linux_web_app" "api" {
  name                = "app-api"
  resource_group_name = "rg-apps"
  location            = "westeurope"
  service_plan_id     = azurerm_service_plan.main.id
  https_only          = true

  site_config {
    ip_restriction {
      name       = "office"
      ip_address = "203.0.113.0/24"
      priority   = 100
      action     = "Allow"
    }
  }
}

resource "azurerm_linux_web_app" "shop" {
  name                = "app-shop"
  resource_group_name = "rg-apps"
  location            = "westeurope"
  service_plan_id     = azurerm_service_plan.main.id
  https_only          = true

  site_config {
    scm_ip_restriction_default_action = "Deny"
    scm_ip_restriction {
      name       = "build-agents"
      ip_address = "198.51.100.0/24"
      priority   = 100
    }
  }
}

resource "azurerm_windows_function_app" "jobs" {
  name                       = "func-jobs"
  resource_group_name        = "rg-apps"
  location                   = "westeurope"
  service_plan_id            = azurerm_service_plan.main.id
  storage_account_name       = "stjobs"
  storage_account_access_key = "key"
  https_only                 = true

  site_config {
    ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction   = true
    ip_restriction {
      name       = "anywhere"
      ip_address = "0.0.0.0/0"
      priority   = 100
    }
  }
}

resource "azurerm_linux_function_app" "events" {
  name                       = "func-events"
  resource_group_name        = "rg-apps"
  location                   = "westeurope"
  service_plan_id            = azurerm_service_plan.main.id
  storage_account_name       = "stevents"
  storage_account_access_key = "key"
  https_only                 = true

  site_config {
    ip_restriction_default_action     = "Deny"
    scm_ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction       = true
    dynamic "ip_restriction" {
      for_each = var.allowed_ranges
      content {
        ip_address = ip_restriction.value
      }
    }
  }
}

# A private endpoint beside a public endpoint left open.
resource "azurerm_windows_web_app" "intranet" {
  name                = "app-intranet"
  resource_group_name = "rg-apps"
  location            = "westeurope"
  service_plan_id     = azurerm_service_plan.main.id
  https_only          = true

  site_config {}
}

resource "azurerm_private_endpoint" "intranet" {
  name                = "pe-app-intranet"
  location            = "westeurope"
  resource_group_name = "rg-apps"
  subnet_id           = "/subscriptions/0/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/endpoints"

  private_service_connection {
    name                           = "app-intranet"
    private_connection_resource_id = azurerm_windows_web_app.intranet.id
    subresource_names              = ["sites"]
    is_manual_connection           = false
  }
}
