# Web apps under azurerm 3.x before 3.95, which sends no default action:
# App Service then ends a site's access restrictions in an implicit deny.
# A site with rules admits only what they allow; one without admits all.
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "= 3.90.0"
    }
  }
}

resource "azurerm_linux_web_app" "office" {
  name                = "office"
  resource_group_name = "rg"
  location            = "westeurope"
  service_plan_id     = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/serverFarms/plan"
  https_only          = true
  site_config {
    ftps_state          = "Disabled"
    minimum_tls_version = "1.2"
    ip_restriction {
      action     = "Allow"
      ip_address = "198.51.100.0/24"
    }
    scm_ip_restriction {
      action     = "Allow"
      ip_address = "198.51.100.0/24"
    }
  }
}

resource "azurerm_linux_web_app" "open" {
  name                = "open"
  resource_group_name = "rg"
  location            = "westeurope"
  service_plan_id     = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Web/serverFarms/plan"
  https_only          = true
  site_config {
    ftps_state          = "Disabled"
    minimum_tls_version = "1.2"
  }
}
