# Apps whose sites admit only what they name: public access off (private
# endpoint), restrictions that end in Deny for both sites, a legacy
# azurerm_app_service whose rules end in an implicit deny, and an allow of
# every address that holds only with Front Door's header.
resource "azurerm_linux_web_app" "internal" {
  name                          = "app-internal"
  resource_group_name           = "rg-apps"
  location                      = "westeurope"
  service_plan_id               = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only                    = true
  public_network_access_enabled = false

  site_config {}
}

resource "azurerm_private_endpoint" "internal" {
  name                = "pe-app-internal"
  location            = "westeurope"
  resource_group_name = "rg-apps"
  subnet_id           = "/subscriptions/0/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/endpoints"

  private_service_connection {
    name                           = "app-internal"
    private_connection_resource_id = azurerm_linux_web_app.internal.id
    subresource_names              = ["sites"]
    is_manual_connection           = false
  }
}

resource "azurerm_windows_web_app" "portal" {
  name                = "app-portal"
  resource_group_name = "rg-apps"
  location            = "westeurope"
  service_plan_id     = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only          = true

  site_config {
    ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction   = true
    ip_restriction {
      name        = "front-door"
      service_tag = "AzureFrontDoor.Backend"
      priority    = 100
      headers {
        x_azure_fdid = ["00000000-0000-0000-0000-000000000001"]
      }
    }
    ip_restriction {
      name       = "anywhere-through-front-door"
      ip_address = "0.0.0.0/0"
      priority   = 200
      headers {
        x_azure_fdid = ["00000000-0000-0000-0000-000000000001"]
      }
    }
  }
}

resource "azurerm_app_service" "legacy" {
  name                = "app-legacy"
  location            = "westeurope"
  resource_group_name = "rg-apps"
  app_service_plan_id = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  https_only          = true

  site_config {
    ftps_state = "Disabled"
    ip_restriction {
      ip_address = "203.0.113.0/24"
    }
    scm_ip_restriction {
      ip_address = "198.51.100.0/24"
    }
  }
}

# Restrictions to a subnet whose ID the caller gives (not known here), as
# modules write them: an entry names a range, a tag or a subnet, and this one
# names a subnet.
variable "apps_subnet_id" {
  type = string
}

resource "azurerm_linux_function_app" "worker" {
  name                       = "func-worker"
  resource_group_name        = "rg-apps"
  location                   = "westeurope"
  service_plan_id            = "/subscriptions/0/resourceGroups/rg-apps/providers/Microsoft.Web/serverFarms/plan"
  storage_account_name       = "stworker"
  storage_account_access_key = "key"
  https_only                 = true

  site_config {
    ip_restriction_default_action     = "Deny"
    scm_ip_restriction_default_action = null
    scm_use_main_ip_restriction       = true
    ip_restriction {
      name                      = "apps"
      ip_address                = null
      service_tag               = null
      virtual_network_subnet_id = var.apps_subnet_id
      priority                  = 100
    }
  }
}
