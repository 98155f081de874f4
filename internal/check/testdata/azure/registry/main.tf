# Container registries. Azure takes connections to a registry from every
# network unless its network rules deny them or public access is off.
resource "azurerm_container_registry" "builds" {
  name                = "crbuilds"
  resource_group_name = "rg-ci"
  location            = "westeurope"
  sku                 = "Standard"
}

# Images served to anyone, without credentials.
resource "azurerm_container_registry" "public_images" {
  name                   = "crpublicimages"
  resource_group_name    = "rg-ci"
  location               = "westeurope"
  sku                    = "Standard"
  anonymous_pull_enabled = true
}

resource "azurerm_container_registry" "office" {
  name                = "croffice"
  resource_group_name = "rg-ci"
  location            = "westeurope"
  sku                 = "Premium"
  network_rule_set {
    default_action = "Deny"
    ip_rule {
      action   = "Allow"
      ip_range = "203.0.113.0/24"
    }
  }
}

resource "azurerm_container_registry" "private" {
  name                          = "crprivate"
  resource_group_name           = "rg-ci"
  location                      = "westeurope"
  sku                           = "Premium"
  public_network_access_enabled = false
}
