# azurerm pinned before 3.95, in a module that declares a provider alias:
# the provider sends no default action, so the site's one allow ends in
# Azure's implicit deny.
terraform {
  required_providers {
    azurerm = {
      source                = "hashicorp/azurerm"
      version               = "3.60.0"
      configuration_aliases = [azurerm.apps]
    }
  }
}

resource "azurerm_linux_web_app" "portal" {
  provider            = azurerm.apps
  name                = "portal"
  location            = "francecentral"
  resource_group_name = "portal"
  service_plan_id     = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/portal/providers/Microsoft.Web/serverFarms/portal"
  https_only          = true

  site_config {
    ftps_state                  = "Disabled"
    scm_use_main_ip_restriction = true

    ip_restriction {
      name       = "office"
      ip_address = "198.51.100.0/24"
      action     = "Allow"
    }
  }
}
