# Storage accounts and key vaults written through the AzAPI provider: an
# account left with ARM's defaults, one whose network rules deny by
# default but admit half the internet, one closed to public networks, a
# vault whose network ACLs allow by default and one that denies with an
# office range.

resource "azurerm_resource_group" "data" {
  name     = "rg-data"
  location = "westeurope"
}

resource "azapi_resource" "logs" {
  type      = "Microsoft.Storage/storageAccounts@2023-05-01"
  name      = "stlogs"
  location  = azurerm_resource_group.data.location
  parent_id = azurerm_resource_group.data.id
  body = {
    kind = "StorageV2"
    sku  = { name = "Standard_LRS" }
    properties = {
      minimumTlsVersion = "TLS1_2"
    }
  }
}

resource "azapi_resource" "exports" {
  type      = "Microsoft.Storage/storageAccounts@2023-05-01"
  name      = "stexports"
  location  = azurerm_resource_group.data.location
  parent_id = azurerm_resource_group.data.id
  body = {
    kind = "StorageV2"
    sku  = { name = "Standard_LRS" }
    properties = {
      networkAcls = {
        defaultAction = "Deny"
        bypass        = "AzureServices"
        ipRules = [
          { value = "0.0.0.0/1", action = "Allow" }
        ]
      }
    }
  }
}

resource "azapi_resource" "private" {
  type      = "Microsoft.Storage/storageAccounts@2023-05-01"
  name      = "stprivate"
  location  = azurerm_resource_group.data.location
  parent_id = azurerm_resource_group.data.id
  body = {
    kind = "StorageV2"
    sku  = { name = "Standard_LRS" }
    properties = {
      publicNetworkAccess = "Disabled"
    }
  }
}

resource "azapi_resource" "vault_open" {
  type      = "Microsoft.KeyVault/vaults@2023-07-01"
  name      = "kv-open"
  location  = azurerm_resource_group.data.location
  parent_id = azurerm_resource_group.data.id
  body = {
    properties = {
      tenantId = "00000000-0000-0000-0000-000000000000"
      sku      = { family = "A", name = "standard" }
      networkAcls = {
        defaultAction = "Allow"
        bypass        = "AzureServices"
      }
    }
  }
}

resource "azapi_resource" "vault_office" {
  type      = "Microsoft.KeyVault/vaults@2023-07-01"
  name      = "kv-office"
  location  = azurerm_resource_group.data.location
  parent_id = azurerm_resource_group.data.id
  body = {
    properties = {
      tenantId = "00000000-0000-0000-0000-000000000000"
      sku      = { family = "A", name = "standard" }
      networkAcls = {
        defaultAction = "Deny"
        bypass        = "None"
        ipRules       = [{ value = "198.51.100.0/24" }]
      }
    }
  }
}
