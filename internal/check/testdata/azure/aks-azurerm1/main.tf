# An AKS cluster under azurerm 1.x, its version constrained in the
# provider block as Terraform 0.12 wrote it, that says nothing of RBAC: the
# provider then creates it with Kubernetes RBAC off.
provider "azurerm" {
  version = "=1.36.1"
}

resource "azurerm_kubernetes_cluster" "legacy" {
  name                = "legacy"
  location            = "uksouth"
  resource_group_name = "rg"
  dns_prefix          = "legacy"

  agent_pool_profile {
    name    = "default"
    count   = 2
    vm_size = "Standard_D2s_v3"
  }
}
