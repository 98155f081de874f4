# AKS clusters under azurerm 2.x, which writes RBAC as a block: one turns
# it off, one on, one says nothing (off before azurerm 3.0).
terraform {
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 2.90"
    }
  }
}

resource "azurerm_kubernetes_cluster" "off" {
  name                = "off"
  location            = "westeurope"
  resource_group_name = "rg"
  dns_prefix          = "off"
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
  role_based_access_control {
    enabled = false
  }
}

resource "azurerm_kubernetes_cluster" "on" {
  name                = "on"
  location            = "westeurope"
  resource_group_name = "rg"
  dns_prefix          = "on"
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
  role_based_access_control {
    enabled = true
  }
}

resource "azurerm_kubernetes_cluster" "unset" {
  name                = "unset"
  location            = "westeurope"
  resource_group_name = "rg"
  dns_prefix          = "unset"
  default_node_pool {
    name       = "system"
    node_count = 1
    vm_size    = "Standard_D2s_v3"
  }
}
