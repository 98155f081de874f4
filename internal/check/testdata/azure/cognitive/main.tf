# Azure OpenAI accounts: one left with the provider's defaults, one whose
# network ACLs deny by default and admit an office range, one reached
# through a private endpoint alone, and one whose ACLs allow by default.

resource "azurerm_resource_group" "ai" {
  name     = "rg-ai"
  location = "swedencentral"
}

resource "azurerm_cognitive_account" "chat" {
  name                = "oai-chat"
  location            = azurerm_resource_group.ai.location
  resource_group_name = azurerm_resource_group.ai.name
  kind                = "OpenAI"
  sku_name            = "S0"
}

resource "azurerm_cognitive_account" "office" {
  name                  = "oai-office"
  location              = azurerm_resource_group.ai.location
  resource_group_name   = azurerm_resource_group.ai.name
  kind                  = "OpenAI"
  sku_name              = "S0"
  custom_subdomain_name = "oai-office"
  network_acls {
    default_action = "Deny"
    ip_rules       = ["198.51.100.0/24"]
  }
}

resource "azurerm_cognitive_account" "internal" {
  name                          = "oai-internal"
  location                      = azurerm_resource_group.ai.location
  resource_group_name           = azurerm_resource_group.ai.name
  kind                          = "OpenAI"
  sku_name                      = "S0"
  custom_subdomain_name         = "oai-internal"
  public_network_access_enabled = false
}

resource "azurerm_cognitive_account" "lab" {
  name                          = "oai-lab"
  location                      = azurerm_resource_group.ai.location
  resource_group_name           = azurerm_resource_group.ai.name
  kind                          = "OpenAI"
  sku_name                      = "S0"
  custom_subdomain_name         = "oai-lab"
  public_network_access_enabled = true
  network_acls {
    default_action = "Allow"
  }
}
