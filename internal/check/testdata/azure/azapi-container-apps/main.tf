# Container apps written through the AzAPI provider: a public storefront
# in an environment that faces the internet, an admin app behind an
# office range, a worker with no external ingress, a broker over TCP that
# also answers plain HTTP, and an app in an internal environment.

resource "azurerm_resource_group" "apps" {
  name     = "rg-apps"
  location = "westeurope"
}

resource "azurerm_container_app_environment" "public" {
  name                = "cae-public"
  location            = azurerm_resource_group.apps.location
  resource_group_name = azurerm_resource_group.apps.name
}

resource "azapi_resource" "internal_env" {
  type      = "Microsoft.App/managedEnvironments@2024-03-01"
  name      = "cae-internal"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      vnetConfiguration = {
        internal               = true
        infrastructureSubnetId = "/subscriptions/0000/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aca"
      }
    }
  }
}

resource "azapi_resource" "storefront" {
  type      = "Microsoft.App/containerApps@2024-03-01"
  name      = "storefront"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      environmentId = azurerm_container_app_environment.public.id
      configuration = {
        ingress = {
          external   = true
          targetPort = 8080
        }
      }
    }
  }
}

resource "azapi_resource" "admin" {
  type      = "Microsoft.App/containerApps@2024-03-01"
  name      = "admin"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      managedEnvironmentId = azurerm_container_app_environment.public.id
      configuration = {
        ingress = {
          external   = true
          targetPort = 8080
          ipSecurityRestrictions = [
            {
              name           = "office"
              ipAddressRange = "198.51.100.0/24"
              action         = "Allow"
            }
          ]
        }
      }
    }
  }
}

resource "azapi_resource" "worker" {
  type      = "Microsoft.App/containerApps@2024-03-01"
  name      = "worker"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      environmentId = azurerm_container_app_environment.public.id
      configuration = {
        ingress = {
          external   = false
          targetPort = 9000
        }
      }
    }
  }
}

resource "azapi_resource" "broker" {
  type      = "Microsoft.App/containerApps@2024-03-01"
  name      = "broker"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      environmentId = azurerm_container_app_environment.public.id
      configuration = {
        ingress = {
          external      = true
          transport     = "tcp"
          targetPort    = 5672
          exposedPort   = 5672
        }
      }
    }
  }
}

resource "azapi_resource" "legacy" {
  type      = "Microsoft.App/containerApps@2024-03-01"
  name      = "legacy"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      environmentId = azurerm_container_app_environment.public.id
      configuration = {
        ingress = {
          external      = true
          targetPort    = 80
          allowInsecure = true
          ipSecurityRestrictions = [
            {
              name           = "partners"
              ipAddressRange = "203.0.113.0/24"
              action         = "Allow"
            }
          ]
        }
      }
    }
  }
}

resource "azapi_resource" "back_office" {
  type      = "Microsoft.App/containerApps@2024-03-01"
  name      = "back-office"
  location  = azurerm_resource_group.apps.location
  parent_id = azurerm_resource_group.apps.id
  body = {
    properties = {
      environmentId = azapi_resource.internal_env.id
      configuration = {
        ingress = {
          external   = true
          targetPort = 8080
        }
      }
    }
  }
}
