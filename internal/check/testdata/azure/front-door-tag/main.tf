# Web apps meant to be reached through Front Door alone. The service tag
# is every tenant's Front Door: only the X-Azure-FDID header of the
# site's own profile keeps other profiles out.
variable "profile_guid" {
  type = string
}

# The tag alone: any Front Door profile forwards to it.
resource "azurerm_linux_web_app" "tag_only" {
  name                = "app-tag-only"
  resource_group_name = "rg-web"
  location            = "westeurope"
  service_plan_id     = "plan"
  https_only          = true
  site_config {
    ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction   = true
    ip_restriction {
      name        = "front-door"
      service_tag = "AzureFrontDoor.Backend"
      priority    = 100
    }
  }
}

# A headers block whose lists are all empty filters nothing.
resource "azurerm_linux_web_app" "empty_headers" {
  name                = "app-empty-headers"
  resource_group_name = "rg-web"
  location            = "westeurope"
  service_plan_id     = "plan"
  https_only          = true
  site_config {
    ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction   = true
    ip_restriction {
      name        = "front-door"
      service_tag = "AzureFrontDoor.Backend"
      priority    = 100
      headers {
        x_azure_fdid      = []
        x_fd_health_probe = []
        x_forwarded_for   = []
        x_forwarded_host  = []
      }
    }
  }
}

# The profile's own ID, known only after apply: only that profile passes.
resource "azurerm_linux_web_app" "own_profile" {
  name                = "app-own-profile"
  resource_group_name = "rg-web"
  location            = "westeurope"
  service_plan_id     = "plan"
  https_only          = true
  site_config {
    ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction   = true
    ip_restriction {
      name        = "front-door"
      service_tag = "AzureFrontDoor.Backend"
      priority    = 100
      headers {
        x_azure_fdid = [var.profile_guid]
      }
    }
  }
}

# Another service's tag is its own addresses.
resource "azurerm_linux_web_app" "monitor" {
  name                = "app-monitor"
  resource_group_name = "rg-web"
  location            = "westeurope"
  service_plan_id     = "plan"
  https_only          = true
  site_config {
    ip_restriction_default_action = "Deny"
    scm_use_main_ip_restriction   = true
    ip_restriction {
      name        = "probes"
      service_tag = "AzureTrafficManager"
      priority    = 100
    }
  }
}
