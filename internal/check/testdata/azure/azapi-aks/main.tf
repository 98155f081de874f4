# AKS clusters written through the AzAPI provider: an AKS Automatic
# cluster left with its defaults, a private one, one whose API server
# admits an office range alone, and a legacy one with Kubernetes RBAC off.

resource "azurerm_resource_group" "k8s" {
  name     = "rg-k8s"
  location = "westeurope"
}

resource "azapi_resource" "automatic" {
  type      = "Microsoft.ContainerService/managedClusters@2025-03-01"
  name      = "aks-auto"
  parent_id = azurerm_resource_group.k8s.id
  location  = azurerm_resource_group.k8s.location
  identity {
    type = "SystemAssigned"
  }
  body = {
    sku = { name = "Automatic", tier = "Standard" }
  }
}

resource "azapi_resource" "private" {
  type      = "Microsoft.ContainerService/managedClusters@2025-03-01"
  name      = "aks-private"
  parent_id = azurerm_resource_group.k8s.id
  location  = azurerm_resource_group.k8s.location
  body = {
    properties = {
      dnsPrefix = "private"
      apiServerAccessProfile = {
        enablePrivateCluster = true
      }
      agentPoolProfiles = [{ name = "system", count = 2, vmSize = "Standard_D4s_v5", mode = "System" }]
    }
  }
}

resource "azapi_resource" "office" {
  type      = "Microsoft.ContainerService/managedClusters@2025-03-01"
  name      = "aks-office"
  parent_id = azurerm_resource_group.k8s.id
  location  = azurerm_resource_group.k8s.location
  body = {
    properties = {
      dnsPrefix            = "office"
      disableLocalAccounts = true
      aadProfile = {
        managed         = true
        enableAzureRBAC = true
      }
      apiServerAccessProfile = {
        authorizedIPRanges = ["198.51.100.0/24"]
      }
      agentPoolProfiles = [{ name = "system", count = 2, vmSize = "Standard_D4s_v5", mode = "System" }]
    }
  }
}

resource "azapi_resource" "legacy" {
  type      = "Microsoft.ContainerService/managedClusters@2025-03-01"
  name      = "aks-legacy"
  parent_id = azurerm_resource_group.k8s.id
  location  = azurerm_resource_group.k8s.location
  body = {
    properties = {
      dnsPrefix         = "legacy"
      enableRBAC        = false
      agentPoolProfiles = [{ name = "system", count = 1, vmSize = "Standard_D2s_v5", mode = "System" }]
    }
  }
}
